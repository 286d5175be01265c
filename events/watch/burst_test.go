package watch_test

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/filecast/filecast/events/eventstest"
	"github.com/filecast/filecast/events/hub/hubtest"
)

// TestWatcher_BurstIndexed checks that a burst of changes appended in
// batches reaches the log in full and that the index holds each file's
// seq as its version.
func TestWatcher_BurstIndexed(t *testing.T) {
	dir := t.TempDir()
	const n = 300
	for i := range n {
		if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("f%03d", i)), []byte("0000"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	st := hubtest.Start(t, hubtest.Options{Dirs: []string{dir}, NoLock: true})
	w := st.Watchers["docs"]
	for i := range n {
		f, err := os.OpenFile(filepath.Join(dir, fmt.Sprintf("f%03d", i)), os.O_WRONLY, 0)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.WriteAt([]byte("1111"), 0); err != nil {
			t.Fatal(err)
		}
		f.Close()
	}
	eventstest.Eventually(t, "every file's change in the index, with its seq as its version", func() bool {
		files, seq := w.Files("")
		changed := 0
		seen := map[uint64]bool{}
		for _, f := range files {
			if f.Version != 0 {
				changed++
				if seen[f.Version] || f.Version > seq {
					t.Fatalf("version %d of %s repeated or beyond seq %d", f.Version, f.Path, seq)
				}
				seen[f.Version] = true
			}
		}
		return changed == n && seq == n
	})
}
