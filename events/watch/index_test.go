package watch

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// FuzzLoadIndex feeds arbitrary bytes to the persisted-index reader: it
// must fail cleanly or give an index that saves and loads back unchanged.
func FuzzLoadIndex(f *testing.F) {
	f.Add([]byte(`{"format":1,"workspace":"w","seq":3,"files":{"a.txt":{"size":1,"sha256":"ab","mtime":"2026-01-02T03:04:05Z","version":3,"ino":7}}}`))
	f.Add([]byte(`{"format":1,"files":null}`))
	f.Add([]byte(`{"format":2}`))
	f.Add([]byte(`{"format":1,"files":{"x":null}}`))
	f.Add([]byte(``))
	f.Fuzz(func(t *testing.T, data []byte) {
		dir := t.TempDir()
		path := filepath.Join(dir, "index.json")
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
		idx, ok, err := loadIndex(path)
		if err != nil {
			if ok {
				t.Fatal("loadIndex reported an index and an error")
			}
			return
		}
		if !ok || idx.Files == nil {
			t.Fatalf("loadIndex ok=%v files=%v for an existing file", ok, idx.Files)
		}
		if err := saveIndex(path, &idx); err != nil {
			t.Fatal(err)
		}
		again, ok, err := loadIndex(path)
		if err != nil || !ok {
			t.Fatalf("reload: ok=%v err=%v", ok, err)
		}
		if diff := cmp.Diff(idx, again); diff != "" {
			t.Errorf("index changed by a save and load (-first +second):\n%s", diff)
		}
	})
}

func TestLoadIndex_Missing(t *testing.T) {
	for _, p := range []string{"", filepath.Join(t.TempDir(), "none.json")} {
		if _, ok, err := loadIndex(p); ok || err != nil {
			t.Errorf("loadIndex(%q) = ok %v, err %v; want not found and no error", p, ok, err)
		}
	}
}

func TestStat_SameAs(t *testing.T) {
	mtime := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	s := stat{kind: kindFile, id: fileID{1, 2}, size: 5, mtime: mtime}
	base := entry{Size: 5, ModTime: mtime, Dev: 1, Ino: 2, Hashed: mtime.Add(time.Hour)}
	tests := []struct {
		name string
		edit func(*entry)
		want bool
	}{
		{"same", func(*entry) {}, true},
		{"size", func(e *entry) { e.Size = 6 }, false},
		{"mtime", func(e *entry) { e.ModTime = mtime.Add(time.Nanosecond) }, false},
		{"inode", func(e *entry) { e.Ino = 3 }, false},
		{"link target", func(e *entry) { e.Link = "t.txt" }, false},
		{"hashed within the racy window", func(e *entry) { e.Hashed = mtime.Add(10 * time.Millisecond) }, false},
	}
	for _, tt := range tests {
		e := base
		tt.edit(&e)
		if got := s.sameAs(&e); got != tt.want {
			t.Errorf("%s: sameAs = %v, want %v", tt.name, got, tt.want)
		}
	}
	if s.sameAs(nil) {
		t.Error("sameAs(nil) = true")
	}
}
