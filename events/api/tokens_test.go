package api_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/filecast/filecast/events/api"
)

func TestReadTokenFile(t *testing.T) {
	dir := t.TempDir()
	write := func(name, text string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	p := write("tokens", "# readers\nci=s3cret-ci-token-000,ro\n\n  plain-secret-0000000  \n")
	specs, err := api.ReadTokenFile(p, nil)
	if err != nil {
		t.Fatal(err)
	}
	want := []api.TokenSpec{{p + ":2", "ci=s3cret-ci-token-000,ro"}, {p + ":4", "plain-secret-0000000"}}
	if len(specs) != len(want) || specs[0] != want[0] || specs[1] != want[1] {
		t.Errorf("specs = %q, want %q", specs, want)
	}
	for name, text := range map[string]string{"empty": "", "comments": "# none\n\n"} {
		if _, err := api.ReadTokenFile(write(name, text), nil); err == nil || !strings.Contains(err.Error(), "no tokens") {
			t.Errorf("%s: err = %v, want no tokens", name, err)
		}
	}
	if _, err := api.ReadTokenFile(write("big", strings.Repeat("x", api.MaxTokenFile+1)), nil); err == nil || !strings.Contains(err.Error(), "larger than") {
		t.Errorf("big: err = %v, want larger than", err)
	}
	if _, err := api.ReadTokenFile(filepath.Join(dir, "missing"), nil); err == nil {
		t.Error("missing file: no error")
	}
}

func TestParseTokens(t *testing.T) {
	got, err := api.ParseTokens([]api.TokenSpec{{"--token", "a=secret-number-one-000"}, {"f:3", "secret-number-two-000"}})
	if err != nil {
		t.Fatal(err)
	}
	if got[0].Name != "a" || got[1].Name != "token2" {
		t.Errorf("names = %q, %q; want a, token2 (named after its position)", got[0].Name, got[1].Name)
	}
	for _, tc := range []struct {
		specs []api.TokenSpec
		want  string
	}{
		{[]api.TokenSpec{{"--token", "a=secret-number-one-000"}, {"f:2", "a=secret-number-two-000"}}, `f:2: two tokens named "a"`},
		{[]api.TokenSpec{{"--token", "a=secret-number-one-000"}, {"f:2", "b=secret-number-one-000"}}, `f:2: token "b" has the secret of another`},
		{[]api.TokenSpec{{"f:9", "a=,ro"}}, "f:9: "},
	} {
		if _, err := api.ParseTokens(tc.specs); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("ParseTokens(%q) = %v, want an error with %q", tc.specs, err, tc.want)
		}
	}
}
