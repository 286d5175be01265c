package watch_test

import (
	"os"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/filecast/filecast/events"
	"github.com/filecast/filecast/events/hub"
	"github.com/filecast/filecast/events/watch"
)

// TestWatcher_RemovesLeftoverTempFiles starts on a folder holding a
// temporary file of a write that was killed: it is removed before the
// folder is indexed and never reported, while user files that only look
// like one, and a temporary file changed after the start (a write in
// progress), are left alone.
func TestWatcher_RemovesLeftoverTempFiles(t *testing.T) {
	e := newEnv(t)
	e.write("a.txt", "a")
	e.start(watch.Options{Leftover: hub.IsTempName})
	e.stop()

	if err := os.Mkdir(e.path("sub"), 0o755); err != nil {
		t.Fatal(err)
	}
	leftovers := []string{".a.txt.filecast-0123456789abcdef.tmp", "sub/.b.md.filecast-fedcba9876543210.tmp"}
	lookAlikes := []string{
		"a.txt.filecast-0123456789abcdef.tmp",  // not hidden: a user's file
		".a.txt.filecast-0123456789ABCDEF.tmp", // upper case
		".a.txt.filecast-0123456789abcde.tmp",  // 15 digits
		".a.txt.filecast-backup.tmp",
		".filecast-0123456789abcdef.tmp",
	}
	before := time.Now().Add(-time.Minute)
	for _, p := range append(append([]string{}, leftovers...), lookAlikes...) {
		e.write(p, "partial content of "+p)
		if err := os.Chtimes(e.path(p), before, before); err != nil {
			t.Fatal(err)
		}
	}
	inProgress := ".c.txt.filecast-00112233445566ff.tmp"
	since := time.Now().Add(-time.Second) // file times may lag the clock by a tick
	e.write(inProgress, "being written")  // changed after the start: a write in progress

	e.start(watch.Options{Leftover: hub.IsTempName, Since: since})
	for _, p := range leftovers {
		if _, err := os.Lstat(e.path(p)); !os.IsNotExist(err) {
			t.Errorf("%s: still there (err %v), want removed", p, err)
		}
	}
	for _, p := range append(lookAlikes, inProgress) {
		if _, err := os.Lstat(e.path(p)); err != nil {
			t.Errorf("%s: %v, want it left alone", p, err)
		}
	}
	// The one look-alike that is not hidden is a user's file like any
	// other: new since the last start, so reported.
	evs := e.waitEvents("the user's file", func(evs []events.Event) bool { return len(evs) >= 1 })
	if diff := cmp.Diff([]string{"file.created a.txt.filecast-0123456789abcdef.tmp"}, sortedShorts(evs)); diff != "" {
		t.Errorf("events (-want +got):\n%s", diff)
	}
	e.checkIndex()
}
