//go:build unix

package main_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/filecast/filecast/events"
	"github.com/filecast/filecast/events/delta"
	"github.com/filecast/filecast/events/eventstest"
	"github.com/filecast/filecast/events/remote"
)

// nextChange waits for the event that gives rel the content data.
func nextChange(t *testing.T, c *remote.Client, ws, rel, data string, after uint64) events.Event {
	t.Helper()
	var found events.Event
	eventstest.Eventually(t, "the change of "+rel, func() bool {
		page, err := c.Changes(context.Background(), ws, after, 1000, 0)
		if err != nil {
			return false
		}
		for _, ev := range page.Events {
			if ev.Path == rel && ev.SHA256 == sha(data) {
				found = ev
				return true
			}
		}
		return false
	})
	return found
}

// TestDiff_HubKilled: the contents a hub keeps for diffs outlive a kill
// -9 of the process: the diffs of the changes made before it are still
// given after a restart, and so are those of the first changes after it.
func TestDiff_HubKilled(t *testing.T) {
	root, data := t.TempDir(), t.TempDir()
	main := "package main\n\nfunc main() {\n\tprintln(\"hello\")\n}\n"
	writeFile(t, filepath.Join(root, "main.go"), main) // there at the first start
	addr := freeAddr(t)
	base := "http://" + addr
	args := []string{"hub", "--root", "w=" + root, "--listen", addr, "--data", data}
	hub := startProc(t, args...)
	waitHTTP(t, base+"/healthz")
	c, err := remote.New(base, remote.Options{})
	if err != nil {
		t.Fatal(err)
	}
	eventstest.Eventually(t, "the files there at the first start kept", func() bool {
		_, err := c.Content(context.Background(), "w", sha(main))
		return err == nil
	})

	edited := strings.Replace(main, "hello", "hello, world", 1)
	writeFile(t, filepath.Join(root, "main.go"), edited)
	ev := nextChange(t, c, "w", "main.go", edited, 0)
	want := delta.Diff{Text: "@@ -1,5 +1,5 @@\n package main\n \n func main() {\n-\tprintln(\"hello\")\n+\tprintln(\"hello, world\")\n }\n"}
	d, err := delta.Events(t.Context(), c, []events.Event{ev}, delta.Options{})
	if err != nil || d[0] != want {
		t.Fatalf("diff before the kill = %+v, %v; want %+v", d, err, want)
	}

	if err := hub.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-hub.done
	startProc(t, args...)
	waitHTTP(t, base+"/healthz")
	d, err = delta.Events(t.Context(), c, []events.Event{ev}, delta.Options{})
	if err != nil || d[0] != want {
		t.Fatalf("diff after kill -9 and a restart = %+v, %v; want %+v", d, err, want)
	}
	again := edited + "\n// more\n"
	writeFile(t, filepath.Join(root, "main.go"), again)
	ev = nextChange(t, c, "w", "main.go", again, ev.Seq)
	d, err = delta.Events(t.Context(), c, []events.Event{ev}, delta.Options{})
	if err != nil || d[0].Text != "@@ -3,3 +3,5 @@\n func main() {\n \tprintln(\"hello, world\")\n }\n+\n+// more\n" {
		t.Fatalf("diff of the first change after the restart = %+v, %v", d, err)
	}
}

// TestDiff_ContentCapOff: --content-cap 0 keeps no contents: every
// content is not stored, and nothing else changes.
func TestDiff_ContentCapOff(t *testing.T) {
	root, data := t.TempDir(), t.TempDir()
	addr := freeAddr(t)
	base := "http://" + addr
	startProc(t, "hub", "--root", "w="+root, "--listen", addr, "--data", data, "--content-cap", "0")
	waitHTTP(t, base+"/healthz")
	c, err := remote.New(base, remote.Options{})
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(root, "a.txt"), "a\n")
	ev := nextChange(t, c, "w", "a.txt", "a\n", 0)
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	if _, err := c.Content(ctx, "w", ev.SHA256); !errors.Is(err, events.ErrNotStored) {
		t.Fatalf("Content with --content-cap 0 = %v, want not stored", err)
	}
	if _, err := os.Stat(filepath.Join(data, "jetstream", "$G", "streams", "FILECAST_FILE_CONTENT")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the content stream exists with --content-cap 0: %v", err)
	}
}
