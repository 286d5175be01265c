package events_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/bmatcuk/doublestar/v4"

	"github.com/filecast/filecast/events"
)

func TestGlob_Match(t *testing.T) {
	tests := []struct {
		pattern string
		path    string
		want    bool
	}{
		{"*.md", "a.md", true},
		{"*.md", "docs/deep/a.md", true},
		{"*.md", "a.mdx", false},
		{"docs/", "docs/a.txt", true},
		{"docs/", "docs/x/y/z", true},
		{"docs/", "docsx/a", false},
		{"docs/*.md", "docs/a.md", true},
		{"docs/*.md", "docs/x/a.md", false},
		{"docs/**/*.md", "docs/x/y/a.md", true},
		{"docs/**", "docs/a", true},
		{"**", "any/thing", true},
		{"src/{a,b}.go", "src/b.go", true},
		{"src/[a-c].go", "src/d.go", false},
		{"reports/q?.md", "reports/q3.md", true},
		{"README.md", "sub/README.md", true},
		{"sub/README.md", "README.md", false},
	}
	for _, tt := range tests {
		g, err := events.CompileGlob(tt.pattern)
		if err != nil {
			t.Fatalf("CompileGlob(%q): %v", tt.pattern, err)
		}
		if got := g.Match(tt.path); got != tt.want {
			t.Errorf("%q.Match(%q) = %v, want %v", tt.pattern, tt.path, got, tt.want)
		}
	}
}

func TestCompileGlob_Invalid(t *testing.T) {
	for _, p := range []string{"", "/abs/*.md", "../x", "a/../b", "a/./b", "src/[a-", "{a,b", "a\x00b", "a\\b", "\xff", strings.Repeat("a", events.MaxGlobLen+1)} {
		_, err := events.CompileGlob(p)
		if err == nil {
			t.Errorf("CompileGlob(%q) succeeded, want error", p)
			continue
		}
		if !errors.Is(err, events.ErrBadGlob) {
			t.Errorf("CompileGlob(%q) error %v does not wrap ErrBadGlob", p, err)
		}
	}
}

func TestFilter_Match(t *testing.T) {
	mk := func(typ events.Type, path, old string) events.Event {
		return events.Event{Type: typ, Workspace: "docs", Path: path, OldPath: old}
	}
	tests := []struct {
		name  string
		ws    string
		globs []string
		kinds []string
		ev    events.Event
		want  bool
	}{
		{"default selects file events", "", nil, nil, mk(events.FileUpdated, "a", ""), true},
		{"default skips lock events", "", nil, nil, mk(events.LockAcquired, "a", ""), false},
		{"locked selects acquired", "", nil, []string{"locked"}, mk(events.LockAcquired, "a", ""), true},
		{"locked selects expiring", "", nil, []string{"locked"}, mk(events.LockExpiring, "a", ""), true},
		{"unlocked selects expired", "", nil, []string{"unlocked"}, mk(events.LockExpired, "a", ""), true},
		{"unlocked skips acquired", "", nil, []string{"unlocked"}, mk(events.LockAcquired, "a", ""), false},
		{"short type", "", nil, []string{"deleted"}, mk(events.FileDeleted, "a", ""), true},
		{"full type", "", nil, []string{"file.deleted"}, mk(events.FileCreated, "a", ""), false},
		{"glob", "", []string{"*.md"}, nil, mk(events.FileCreated, "x/a.md", ""), true},
		{"glob miss", "", []string{"*.md"}, nil, mk(events.FileCreated, "x/a.txt", ""), false},
		{"move matches old path", "", []string{"drafts/"}, nil, mk(events.FileMoved, "final/a", "drafts/a"), true},
		{"workspace mismatch", "src", nil, nil, mk(events.FileCreated, "a", ""), false},
	}
	for _, tt := range tests {
		f, err := events.NewFilter(tt.ws, tt.globs, tt.kinds)
		if err != nil {
			t.Fatalf("%s: NewFilter: %v", tt.name, err)
		}
		if got := f.Match(tt.ev); got != tt.want {
			t.Errorf("%s: Match = %v, want %v", tt.name, got, tt.want)
		}
	}
}

func TestNewFilter_BadType(t *testing.T) {
	_, err := events.NewFilter("", nil, []string{"renamed"})
	if !errors.Is(err, events.ErrBadType) || !strings.Contains(err.Error(), "created, updated") {
		t.Fatalf("NewFilter(renamed) = %v", err)
	}
}

func FuzzCompileGlob(f *testing.F) {
	for _, s := range []string{"*.md", "docs/", "a/**/b", "{a,b}", "[a-", "../x", "/a", "\x00", "**", "a**b", "*"} {
		f.Add(s, "docs/a.md")
	}
	f.Add("*.md", "a/b/c/.md")
	f.Add("{a,b}*", "x/b")
	f.Fuzz(func(t *testing.T, pattern, path string) {
		g, err := events.CompileGlob(pattern)
		if err != nil {
			if !errors.Is(err, events.ErrBadGlob) {
				t.Fatalf("error %v does not wrap ErrBadGlob", err)
			}
			return
		}
		got := g.Match(path) // must not panic
		// A pattern with no "/" is matched against the base name alone;
		// on a clean path that must agree with "**/" + pattern.
		if strings.Contains(pattern, "/") || path == "" || strings.HasPrefix(path, "/") || strings.HasSuffix(path, "/") || strings.Contains(path, "//") {
			return
		}
		if want, _ := doublestar.Match("**/"+pattern, path); got != want {
			t.Fatalf("%q.Match(%q) = %v, but **/%s matches: %v", pattern, path, got, pattern, want)
		}
	})
}

func BenchmarkFilter_Match(b *testing.B) {
	f, err := events.NewFilter("", []string{"src/**/*.go", "*.md", "docs/"}, nil)
	if err != nil {
		b.Fatal(err)
	}
	ev := events.Event{Type: events.FileUpdated, Workspace: "w", Path: "src/pkg/sub/file.go"}
	b.ReportAllocs()
	for b.Loop() {
		if !f.Match(ev) {
			b.Fatal("no match")
		}
	}
}
