package watch

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/filecast/filecast/events"
	"github.com/filecast/filecast/events/workspace"
)

// BenchmarkVCSBusy measures what deciding whether a removal may be
// reported at once costs, three folders deep in a workspace that is a
// git repository: with what was found remembered (the lstat of the lock
// alone), and looked for afresh each time (a .git and a .hg per folder
// up to the workspace folder, then the lock).
func BenchmarkVCSBusy(b *testing.B) {
	root := filepath.Join(b.TempDir(), "ws")
	if err := os.MkdirAll(filepath.Join(root, "a", "b", "c"), 0o755); err != nil {
		b.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(root, ".git"), 0o755); err != nil {
		b.Fatal(err)
	}
	ws, err := workspace.Parse("bench=" + root)
	if err != nil {
		b.Fatal(err)
	}
	w, err := New(Options{Workspace: ws}, nopAppender{})
	if err != nil {
		b.Fatal(err)
	}
	w.st = newState(context.Background(), notifier{})
	const rel = "a/b/c/file.txt"
	b.Run("remembered", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if w.vcsBusy(rel, time.Now()) {
				b.Fatal("busy")
			}
		}
	})
	b.Run("afresh", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			w.vcsForget("")
			if w.vcsBusy(rel, time.Now()) {
				b.Fatal("busy")
			}
		}
	})
}

// nopAppender keeps no event.
type nopAppender struct{}

func (nopAppender) Append(_ context.Context, ev events.Event) (events.Event, error) { return ev, nil }
