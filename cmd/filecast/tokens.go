package main

import (
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"

	"github.com/filecast/filecast/events/api"
)

// tokenConfig is the --token and --token-file flags of a server.
type tokenConfig struct {
	specs listFlag
	file  string
}

func (c *tokenConfig) flags(fs *flag.FlagSet, usage string) {
	fs.Var(&c.specs, "token", usage)
	fs.StringVar(&c.file, "token-file", "", "read --token specs from this file, one a line; # starts a comment")
}

// given reports whether any token flag was used.
func (c *tokenConfig) given() bool { return len(c.specs) > 0 || c.file != "" }

// maxTokenFile bounds a --token-file.
const maxTokenFile = 1 << 20

// tokens parses the specs of --token, then those of --token-file; a token
// without a name is named token<N> after its position. It warns on log
// when the file can be read by others.
func (c *tokenConfig) tokens(log *slog.Logger) ([]api.Token, error) {
	var specs []tokenSpec
	for _, v := range c.specs {
		specs = append(specs, tokenSpec{"--token", v})
	}
	if c.file != "" {
		f, err := os.Open(c.file)
		if err != nil {
			return nil, fmt.Errorf("--token-file: %w", err)
		}
		defer f.Close()
		if fi, err := f.Stat(); err == nil && fi.Mode().Perm()&0o077 != 0 {
			log.Warn("the token file can be read by other users; chmod 600 it", "path", c.file, "mode", fi.Mode().Perm().String())
		}
		b, err := io.ReadAll(io.LimitReader(f, maxTokenFile+1))
		if err != nil {
			return nil, fmt.Errorf("--token-file: %w", err)
		}
		if len(b) > maxTokenFile {
			return nil, fmt.Errorf("--token-file %s: larger than %d bytes", c.file, maxTokenFile)
		}
		for i, line := range strings.Split(string(b), "\n") {
			line = strings.TrimSpace(line)
			if line == "" || strings.HasPrefix(line, "#") {
				continue
			}
			specs = append(specs, tokenSpec{fmt.Sprintf("--token-file %s:%d", c.file, i+1), line})
		}
		if len(specs) == len(c.specs) {
			return nil, fmt.Errorf("--token-file %s: no tokens in it", c.file)
		}
	}
	return parseTokens(specs)
}

// tokenSpec is a token spec and where it was given, for errors.
type tokenSpec struct{ where, text string }

// parseTokens parses token specs; names and secrets must be unique.
func parseTokens(specs []tokenSpec) ([]api.Token, error) {
	var out []api.Token
	names, secrets := map[string]bool{}, map[string]bool{}
	for i, s := range specs {
		where := s.where
		t, err := api.ParseToken(s.text)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", where, err)
		}
		if t.Name == "" {
			t.Name = fmt.Sprintf("token%d", i+1)
		}
		switch {
		case names[t.Name]:
			return nil, fmt.Errorf("%s: two tokens named %q; give each its own NAME=", where, t.Name)
		case secrets[t.Secret]:
			return nil, fmt.Errorf("%s: token %q has the secret of another token", where, t.Name)
		}
		names[t.Name], secrets[t.Secret] = true, true
		out = append(out, t)
	}
	return out, nil
}
