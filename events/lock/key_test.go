package lock_test

import (
	"regexp"
	"strings"
	"testing"

	"github.com/filecast/filecast/events/lock"
)

var validKey = regexp.MustCompile(`^[-/_=.a-zA-Z0-9]+$`)

// checkKey checks that the key of (ws, path) is a valid KV key of two
// tokens and that it decodes back.
func checkKey(t *testing.T, ws, path string) string {
	t.Helper()
	k := lock.KeyFor(ws, path)
	if !validKey.MatchString(k) || strings.Count(k, ".") != 1 || strings.HasPrefix(k, ".") || strings.HasSuffix(k, ".") {
		t.Fatalf("KeyFor(%q, %q) = %q: not a valid two-token KV key", ws, path, k)
	}
	if len(ws) <= 64 && len(k) > 3*64+1+lock.MaxKeyPathLen {
		t.Fatalf("KeyFor(%q, %q) is %d bytes long", ws, path, len(k))
	}
	gotWS, gotPath, hashed, err := lock.ParseKey(k)
	if err != nil {
		t.Fatalf("ParseKey(%q): %v", k, err)
	}
	if gotWS != ws || (!hashed && gotPath != path) {
		t.Fatalf("ParseKey(KeyFor(%q, %q)) = %q, %q, %v", ws, path, gotWS, gotPath, hashed)
	}
	return k
}

func TestKeyFor(t *testing.T) {
	tests := []struct{ ws, path, want string }{
		{"docs", "reports/q3.md", "docs.reports/q3=2emd"},
		{"my.ws", "a b/c=d", "my=2ews.a=20b/c=3dd"},
		{"docs", "..hidden/x.", "docs.=2e=2ehidden/x=2e"},
		{"docs", "*>", "docs.=2a=3e"},
		{"docs", "ü", "docs.=c3=bc"},
	}
	for _, tt := range tests {
		if got := checkKey(t, tt.ws, tt.path); got != tt.want {
			t.Errorf("KeyFor(%q, %q) = %q, want %q", tt.ws, tt.path, got, tt.want)
		}
	}
	long := strings.Repeat("é", 4000)
	k := checkKey(t, "docs", long)
	if !strings.HasPrefix(k, "docs.=h") || k == checkKey(t, "docs", long+"x") {
		t.Errorf("long path key %q", k)
	}
	for _, bad := range []string{"", "docs", "docs.", "docs.=zz", "docs.=6", "docs.=61", "docs.a.b", "docs.=h12"} {
		if _, _, _, err := lock.ParseKey(bad); err == nil {
			t.Errorf("ParseKey(%q) succeeded", bad)
		}
	}
}

func FuzzKeyFor(f *testing.F) {
	f.Add("docs", "a.md", "docs", "a=2emd")
	f.Add("a.b", "c", "a", "b.c")
	f.Add("ws", "x/y", "ws", "x=2fy")
	f.Add("w", strings.Repeat("=", 400), "w", strings.Repeat("=3d", 400))
	f.Fuzz(func(t *testing.T, ws1, p1, ws2, p2 string) {
		if ws1 == "" || p1 == "" || ws2 == "" || p2 == "" {
			t.Skip()
		}
		k1, k2 := checkKey(t, ws1, p1), checkKey(t, ws2, p2)
		if (k1 == k2) != (ws1 == ws2 && p1 == p2) {
			t.Fatalf("KeyFor(%q, %q) = %q and KeyFor(%q, %q) = %q", ws1, p1, k1, ws2, p2, k2)
		}
		// A workspace's filter selects exactly its own keys.
		if strings.HasPrefix(k2, strings.SplitN(k1, ".", 2)[0]+".") != (ws1 == ws2) {
			t.Fatalf("workspace prefix of %q and %q disagrees with %q == %q", k1, k2, ws1, ws2)
		}
	})
}
