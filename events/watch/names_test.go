package watch_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/filecast/filecast/events"
	"github.com/filecast/filecast/events/watch"
)

// TestWatcher_UnreportableNames: files whose names are invalid UTF-8 or
// contain control characters are skipped with a warning, at start and
// live; the watch goes on.
func TestWatcher_UnreportableNames(t *testing.T) {
	e := newEnv(t)
	e.write("inv\xffalid-at-start.txt", "x")
	e.start(watch.Options{})
	e.stop()
	e.write("offline\nname.txt", "x")
	e.start(watch.Options{})
	for _, name := range []string{"bad\nname.txt", "inv\xffalid.txt", "tab\there"} {
		e.write(name, "x")
	}
	if err := os.Mkdir(filepath.Join(e.root, "dir\xfe"), 0o755); err != nil {
		t.Fatal(err)
	}
	e.write("dir\xfe/inside.txt", "x")
	e.write("good.txt", "ok")
	got := e.waitEvents("good.txt", func(evs []events.Event) bool { return len(evs) > 0 })
	if len(got) != 1 || got[0].Path != "good.txt" {
		t.Fatalf("events %s, want only good.txt", dump(got))
	}
}
