//go:build unix

package watch_test

import (
	"errors"
	"fmt"
	"os"
	"syscall"
	"testing"

	"github.com/filecast/filecast/events"
	"github.com/filecast/filecast/events/watch"
)

// TestWatcher_SpecialFiles neither reports nor lists fifos and sockets,
// whether present at the start, made while watching or found by a
// rescan, and goes on reporting regular files.
func TestWatcher_SpecialFiles(t *testing.T) {
	e := newEnv(t)
	if err := syscall.Mkfifo(e.path("old-pipe"), 0o644); err != nil {
		t.Fatal(err)
	}
	w := e.start(watch.Options{})
	if err := syscall.Mkfifo(e.path("pipe"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("pipe", e.path("to-pipe")); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mknod(e.path("sock"), syscall.S_IFSOCK|0o644, 0); err != nil {
		t.Fatal(err)
	}
	e.write("after.txt", "regular")
	e.waitEvents("after.txt", func(evs []events.Event) bool { return len(evs) >= 1 })
	if err := w.InjectError(t.Context(), errors.New("lost")); err != nil {
		t.Fatal(err)
	}
	e.write("last.txt", "regular too")
	evs := e.waitEvents("last.txt", func(evs []events.Event) bool { return len(evs) >= 2 })
	if got := fmt.Sprint(brief(evs[0]), ", ", brief(evs[1])); len(evs) != 2 || got != "file.created after.txt, file.created last.txt" {
		t.Fatalf("events:\n%s", dump(evs))
	}
	files, _ := w.Files("")
	if len(files) != 2 {
		t.Fatalf("listed %v", files)
	}
	e.checkIndex()
}
