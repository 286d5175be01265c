package api

import (
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
)

// TokenSpec is the text of a token ([NAME=]SECRET[,ro][,ws=…][,rate=N])
// and where it was given, for errors: a flag, a file and line.
type TokenSpec struct{ Where, Text string }

// MaxTokenFile bounds a token file.
const MaxTokenFile = 1 << 20

// ReadTokenFile reads the token specs of a file, one a line; blank lines
// and lines starting with # are skipped. It warns on log when others can
// read the file, and fails when it holds no token.
func ReadTokenFile(path string, log *slog.Logger) ([]TokenSpec, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	if fi, err := f.Stat(); err == nil && fi.Mode().Perm()&0o077 != 0 && log != nil {
		log.Warn("the token file can be read by other users; chmod 600 it", "path", path, "mode", fi.Mode().Perm().String())
	}
	b, err := io.ReadAll(io.LimitReader(f, MaxTokenFile+1))
	if err != nil {
		return nil, err
	}
	if len(b) > MaxTokenFile {
		return nil, fmt.Errorf("%s: larger than %d bytes", path, MaxTokenFile)
	}
	var specs []TokenSpec
	for i, line := range strings.Split(string(b), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		specs = append(specs, TokenSpec{fmt.Sprintf("%s:%d", path, i+1), line})
	}
	if len(specs) == 0 {
		return nil, fmt.Errorf("%s: no tokens in it", path)
	}
	return specs, nil
}

// ParseTokens parses token specs (ParseToken); a token without a name is
// named token<N> after its position. Names and secrets must be unique.
func ParseTokens(specs []TokenSpec) ([]Token, error) {
	var out []Token
	names, secrets := map[string]bool{}, map[string]bool{}
	for i, s := range specs {
		t, err := ParseToken(s.Text)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", s.Where, err)
		}
		if t.Name == "" {
			t.Name = fmt.Sprintf("token%d", i+1)
		}
		switch {
		case names[t.Name]:
			return nil, fmt.Errorf("%s: two tokens named %q; give each its own NAME=", s.Where, t.Name)
		case secrets[t.Secret]:
			return nil, fmt.Errorf("%s: token %q has the secret of another token", s.Where, t.Name)
		}
		names[t.Name], secrets[t.Secret] = true, true
		out = append(out, t)
	}
	return out, nil
}
