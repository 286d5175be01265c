package main_test

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/filecast/filecast/events/eventstest"
)

// burst writes n changes over files files in root, in the background.
func burst(t *testing.T, root string, n, files int) (done <-chan struct{}) {
	t.Helper()
	writes.Store(0)
	ch := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		defer close(ch)
		for i := range n {
			p := filepath.Join(root, fmt.Sprintf("d%d/f%03d.txt", i%7, i%files))
			if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
				t.Error(err)
				return
			}
			if err := os.WriteFile(p, []byte(fmt.Sprintf("change %d", i)), 0o644); err != nil {
				t.Error(err)
				return
			}
			writes.Add(1)
			if i%3 == 0 {
				time.Sleep(time.Millisecond)
			}
		}
	}()
	t.Cleanup(wg.Wait)
	return ch
}

// writes counts the changes burst made so far.
var writes atomic.Int64

// checkLog reads the whole log of workspace w and checks it against the
// folder: ids and seqs are unique, every file's last event matches its
// content, and no change is reported twice in a row.
func checkLog(t *testing.T, base, root string) int {
	t.Helper()
	all := logOf(t, base)
	ids := map[string]bool{}
	var prev uint64
	for _, e := range all {
		if ids[e.ID] || e.Seq <= prev {
			t.Fatalf("event %s seq %d repeated or out of order", e.ID, e.Seq)
		}
		ids[e.ID], prev = true, e.Seq
	}
	last, dups := lastContents(all)
	if dups > 0 {
		t.Errorf("%d changes reported twice", dups)
	}
	for _, rel := range stale(t, root, last) {
		t.Errorf("%s: the log's last event does not describe its content", rel)
	}
	return len(all)
}

// lastContents returns the sha256 the log's last file event gives each
// file that exists, and how many events repeat the content before them.
func lastContents(evs []wsEvent) (last map[string]string, dups int) {
	last = map[string]string{}
	for _, e := range evs {
		switch {
		case !strings.HasPrefix(e.Type, "file."):
			// lock events describe no content
		case e.Type == "file.deleted":
			delete(last, e.Path)
		default:
			if last[e.Path] == e.SHA256 {
				dups++
			}
			last[e.Path] = e.SHA256
		}
	}
	return last, dups
}

// stale lists the files under root whose content is not the one last
// gives them.
func stale(t *testing.T, root string, last map[string]string) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		if sum := sha256.Sum256(b); last[filepath.ToSlash(rel)] != hex.EncodeToString(sum[:]) {
			out = append(out, rel)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// settle waits until the log stops growing.
func settle(t *testing.T, base string) {
	t.Helper()
	var last uint64
	stable := 0
	eventstest.Eventually(t, "the log to settle", func() bool {
		var page struct {
			Workspaces []struct {
				Head uint64 `json:"head"`
			} `json:"workspaces"`
		}
		getJSON(t, base+"/v1/workspaces", &page)
		head := page.Workspaces[0].Head
		if head == last {
			stable++
		} else {
			stable, last = 0, head
		}
		return stable >= 30 // 300 ms without a new event
	})
}
