package hub_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/filecast/filecast/events"
	"github.com/filecast/filecast/events/content"
	"github.com/filecast/filecast/events/delta"
	"github.com/filecast/filecast/events/eventstest"
	"github.com/filecast/filecast/events/hub/hubtest"
	"github.com/filecast/filecast/events/watch"
)

func sum(b string) string {
	s := sha256.Sum256([]byte(b))
	return hex.EncodeToString(s[:])
}

// change writes data to rel in ws (on disk, as an editor would) and
// returns the event that reports it.
func change(t testing.TB, st *hubtest.Stack, ws, rel, data string) events.Event {
	t.Helper()
	head := st.Head(t, ws)
	p := st.Path(ws, rel)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
	for {
		ev := st.Next(t, ws, head)
		if ev.Path == rel && (ev.SHA256 == sum(data) || ev.Type == events.FileDeleted) {
			return ev
		}
		head = ev.Seq
	}
}

// diffOf is the diff delta gives ev through the hub.
func diffOf(t *testing.T, src delta.Getter, ev events.Event) delta.Diff {
	t.Helper()
	d, err := delta.Events(t.Context(), src, []events.Event{ev}, delta.Options{})
	if err != nil {
		t.Fatalf("diff of %s %s: %v", ev.Type, ev.Path, err)
	}
	return d[0]
}

// kept waits until the hub has the content of data in ws.
func kept(t *testing.T, st *hubtest.Stack, ws, data string) {
	t.Helper()
	eventstest.Eventually(t, "the content of a file kept", func() bool {
		_, err := st.Hub.Content(t.Context(), ws, sum(data))
		return err == nil
	})
}

// TestHub_Diffs: every change the hub reports, seen on disk or written
// through it, has its diff, the first change of a file that was there at
// the first start included; binary files and files over the limit say
// why they have none.
func TestHub_Diffs(t *testing.T) {
	dir := t.TempDir()
	ten := ""
	for i := range 10 {
		ten += "line " + string(rune('a'+i)) + "\n"
	}
	big := strings.Repeat("0123456789abcdef\n", 300) // 5100 bytes
	before := map[string]string{
		"src/old.go":  ten,
		"win.txt":     "one\r\ntwo\r\nthree\r\n",
		"logo.png":    "\x89PNG\x00\x00\x00\x0dIHDR",
		"big.txt":     big,
		"notes/a.txt": "a\nb\nc\n",
	}
	for rel, data := range before {
		p := filepath.Join(dir, filepath.FromSlash(rel))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	st := hubtest.Start(t, hubtest.Options{Dirs: []string{dir}, Contents: &content.Options{MaxFileSize: 4096}})
	for _, rel := range []string{"src/old.go", "win.txt", "notes/a.txt"} {
		kept(t, st, "docs", before[rel])
	}
	eventstest.Eventually(t, "the store filled once", func() bool {
		return st.Contents.Stats().Binary == 1 && st.Contents.Stats().TooLarge == 1
	})

	tests := []struct {
		name, rel, data string
		want            delta.Diff
	}{
		{"first change of a file there at the first start", "src/old.go", strings.Replace(ten, "line e", "line E", 1),
			delta.Diff{Text: "@@ -2,7 +2,7 @@\n line b\n line c\n line d\n-line e\n+line E\n line f\n line g\n line h\n"}},
		{"edit again", "src/old.go", strings.Replace(ten, "line e", "line ee", 1),
			delta.Diff{Text: "@@ -2,7 +2,7 @@\n line b\n line c\n line d\n-line E\n+line ee\n line f\n line g\n line h\n"}},
		{"append", "notes/a.txt", "a\nb\nc\nd\n", delta.Diff{Text: "@@ -1,3 +1,4 @@\n a\n b\n c\n+d\n"}},
		{"truncation", "notes/a.txt", "a\n", delta.Diff{Text: "@@ -1,4 +1 @@\n a\n-b\n-c\n-d\n"}},
		{"CRLF", "win.txt", "one\r\n2\r\nthree\r\n", delta.Diff{Text: "@@ -1,3 +1,3 @@\n one\n-two\n+2\n three\n"}},
		{"binary", "logo.png", "\x89PNG\x00\x00\x00\x0dIHDR2", delta.Diff{Unavailable: delta.Binary}},
		{"over the limit", "big.txt", big + "more\n", delta.Diff{Unavailable: delta.TooLarge}},
		{"created", "new/file.md", "# Title\n\nText.\n", delta.Diff{Text: "@@ -0,0 +1,3 @@\n+# Title\n+\n+Text.\n"}},
		{"shrunk under the limit", "big.txt", "short now\n", delta.Diff{Unavailable: delta.TooLarge}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ev := change(t, st, "docs", tt.rel, tt.data)
			if ev.Type == events.FileUpdated && ev.PrevSHA256 == "" {
				t.Fatalf("%s of %s has no prev_sha256", ev.Type, ev.Path)
			}
			if d := cmp.Diff(tt.want, diffOf(t, st.Hub, ev)); d != "" {
				t.Errorf("diff (-want +got):\n%s", d)
			}
		})
	}

	t.Run("written through the hub", func(t *testing.T) {
		ev, err := st.Hub.WriteFile(t.Context(), events.WriteRequest{Workspace: "docs", Path: "notes/a.txt", Content: []byte("a\nz\n"), Actor: "api:ci"})
		if err != nil {
			t.Fatal(err)
		}
		if ev.PrevSHA256 != sum("a\n") {
			t.Fatalf("prev_sha256 %q, want the sha256 of the file before", ev.PrevSHA256)
		}
		if d := cmp.Diff(delta.Diff{Text: "@@ -1 +1,2 @@\n a\n+z\n"}, diffOf(t, st.Hub, ev)); d != "" {
			t.Errorf("diff (-want +got):\n%s", d)
		}
		// And the watcher's change after it has its diff against it.
		ev = change(t, st, "docs", "notes/a.txt", "a\nzz\n")
		if d := cmp.Diff(delta.Diff{Text: "@@ -1,2 +1,2 @@\n a\n-z\n+zz\n"}, diffOf(t, st.Hub, ev)); d != "" {
			t.Errorf("diff after the hub's write (-want +got):\n%s", d)
		}
	})

	t.Run("moved and changed", func(t *testing.T) {
		head := st.Head(t, "docs")
		if err := os.Rename(st.Path("docs", "notes/a.txt"), st.Path("docs", "notes/b.txt")); err != nil {
			t.Fatal(err)
		}
		ev := st.Next(t, "docs", head)
		if ev.Type != events.FileMoved || ev.PrevSHA256 != "" {
			t.Fatalf("rename = %s with prev_sha256 %q, want file.moved without", ev.Type, ev.PrevSHA256)
		}
		if d := diffOf(t, st.Hub, ev); d != (delta.Diff{}) {
			t.Errorf("diff of a move = %+v, want none", d)
		}
	})

	t.Run("the same page twice", func(t *testing.T) {
		page, err := st.Hub.Changes(t.Context(), "docs", 0, 100, 0)
		if err != nil {
			t.Fatal(err)
		}
		first, err := delta.Events(t.Context(), st.Hub, page.Events, delta.Options{})
		if err != nil {
			t.Fatal(err)
		}
		again, err := delta.Events(t.Context(), st.Hub, page.Events, delta.Options{})
		if err != nil {
			t.Fatal(err)
		}
		if d := cmp.Diff(first, again); d != "" {
			t.Errorf("the diffs of a page differ on a second read (-first +again):\n%s", d)
		}
	})
}

// TestHub_ContentEvicted: a store over its cap drops its oldest contents
// first; the change whose earlier content went says not_stored.
func TestHub_ContentEvicted(t *testing.T) {
	st := hubtest.Start(t, hubtest.Options{Contents: &content.Options{MaxBytes: 256 << 10}})
	change(t, st, "docs", "a.txt", "first version\n")
	ev := change(t, st, "docs", "a.txt", "second version\n")
	if d := diffOf(t, st.Hub, ev); d.Text == "" {
		t.Fatalf("diff before the store filled up = %+v", d)
	}
	// Fill the store: 40 incompressible files of 16 KiB.
	r := rand.New(rand.NewPCG(1, 2))
	for i := range 40 {
		var b strings.Builder
		for range 16 << 10 {
			b.WriteByte(byte(' ' + r.IntN(95)))
		}
		change(t, st, "docs", fmt.Sprintf("fill/%02d.txt", i), b.String())
	}
	if err := st.Contents.Flush(t.Context()); err != nil {
		t.Fatal(err)
	}
	if d := diffOf(t, st.Hub, ev); d != (delta.Diff{Unavailable: delta.NotStored}) {
		t.Errorf("diff once the earlier content was dropped = %+v, want not_stored", d)
	}
	if _, err := st.Hub.Content(t.Context(), "docs", ev.PrevSHA256); !errors.Is(err, events.ErrNotStored) {
		t.Errorf("Content of a dropped content = %v, want ErrNotStored", err)
	}
}

// TestHub_ContentRestart: contents survive a restart, and a restart with
// nothing changed writes nothing to the store: it is filled once.
func TestHub_ContentRestart(t *testing.T) {
	data, dir := t.TempDir(), t.TempDir()
	for i := range 20 {
		if err := os.WriteFile(filepath.Join(dir, string(rune('a'+i))+".txt"), []byte(strings.Repeat("x", i)+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	opts := hubtest.Options{Data: data, Dirs: []string{dir}, Contents: &content.Options{}}
	st := hubtest.Start(t, opts)
	kept(t, st, "docs", strings.Repeat("x", 19)+"\n")
	ev := change(t, st, "docs", "a.txt", "changed\n")
	want := delta.Diff{Text: "@@ -1 +1 @@\n-\n+changed\n"}
	if d := cmp.Diff(want, diffOf(t, st.Hub, ev)); d != "" {
		t.Fatalf("diff (-want +got):\n%s", d)
	}
	eventstest.Eventually(t, "the index saved as kept", func() bool {
		b, err := os.ReadFile(filepath.Join(data, "index", "docs.json"))
		return err == nil && strings.Contains(string(b), `"kept":`)
	})
	st.Stop()

	st = hubtest.Start(t, opts)
	if d := cmp.Diff(want, diffOf(t, st.Hub, ev)); d != "" {
		t.Errorf("diff after a restart (-want +got):\n%s", d)
	}
	ev = change(t, st, "docs", "b.txt", "b\n")
	if d := cmp.Diff(delta.Diff{Text: "@@ -1 +1 @@\n-x\n+b\n"}, diffOf(t, st.Hub, ev)); d != "" {
		t.Errorf("diff of a change after the restart (-want +got):\n%s", d)
	}
	if err := st.Contents.Flush(t.Context()); err != nil {
		t.Fatal(err)
	}
	if s := st.Contents.Stats(); s.Stored != 1 {
		t.Errorf("after a restart the store wrote %d contents, want only the change's", s.Stored)
	}
}

// TestHub_ContentWorkspaces: a sha256 of a file in one workspace reads
// nothing in another, though the hub keeps that content.
func TestHub_ContentWorkspaces(t *testing.T) {
	st := hubtest.Start(t, hubtest.Options{Names: []string{"a", "b"}, Contents: &content.Options{}})
	ev := change(t, st, "a", "secret.txt", "the password is swordfish\n")
	if _, err := st.Hub.Content(t.Context(), "a", ev.SHA256); err != nil {
		t.Fatalf("Content in its workspace: %v", err)
	}
	if _, err := st.Hub.Content(t.Context(), "b", ev.SHA256); !errors.Is(err, events.ErrNotStored) {
		t.Fatalf("Content in another workspace = %v, want ErrNotStored", err)
	}
	for _, bad := range []string{"", "abc", strings.ToUpper(ev.SHA256), "../" + ev.SHA256[3:]} {
		if _, err := st.Hub.Content(t.Context(), "a", bad); !errors.Is(err, events.ErrBadPath) {
			t.Errorf("Content(%q) = %v, want ErrBadPath", bad, err)
		}
	}
	if _, err := st.Hub.Content(t.Context(), "c", ev.SHA256); !errors.Is(err, events.ErrUnknownWorkspace) {
		t.Errorf("Content in an unknown workspace = %v", err)
	}
}

// TestHub_ContentRetired: the content a file no longer has is dropped
// once the retention has passed; one another file still has is not.
func TestHub_ContentRetired(t *testing.T) {
	st := hubtest.Start(t, hubtest.Options{Contents: &content.Options{MaxAge: time.Second}})
	change(t, st, "docs", "a.txt", "shared\n")
	change(t, st, "docs", "b.txt", "shared\n")
	change(t, st, "docs", "c.txt", "alone\n")
	change(t, st, "docs", "a.txt", "a changed\n")
	ev := change(t, st, "docs", "c.txt", "c changed\n")
	eventstest.Eventually(t, "the content no file has dropped", func() bool {
		_, err := st.Hub.Content(context.Background(), "docs", ev.PrevSHA256)
		return errors.Is(err, events.ErrNotStored)
	})
	for _, data := range []string{"shared\n", "a changed\n", "c changed\n"} {
		if _, err := st.Hub.Content(t.Context(), "docs", sum(data)); err != nil {
			t.Errorf("Content of %q, which a file has: %v", data, err)
		}
	}
}

// TestHub_ContentWithoutStore: a hub without a content store answers
// not stored, the empty content excepted.
func TestHub_ContentWithoutStore(t *testing.T) {
	st := hubtest.Start(t, hubtest.Options{})
	ev := change(t, st, "docs", "a.txt", "x\n")
	if _, err := st.Hub.Content(t.Context(), "docs", ev.SHA256); !errors.Is(err, events.ErrNotStored) {
		t.Errorf("Content without a store = %v, want ErrNotStored", err)
	}
	if b, err := st.Hub.Content(t.Context(), "docs", content.EmptySHA256); err != nil || len(b) != 0 {
		t.Errorf("Content of nothing = %q, %v", b, err)
	}
	if ev.PrevSHA256 != "" {
		t.Errorf("a created file has prev_sha256 %q", ev.PrevSHA256)
	}
	ev = change(t, st, "docs", "a.txt", "y\n")
	if ev.PrevSHA256 != sum("x\n") {
		t.Errorf("prev_sha256 = %q without a store, want the sha256 before", ev.PrevSHA256)
	}
}

// TestHub_DiffsPolled: a workspace watched by polling (a share, or
// --watch poll) keeps contents too: the first change of a file there at
// the first start, and the next, have their diffs.
func TestHub_DiffsPolled(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "a.txt"), []byte("a\nb\nc\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	st := hubtest.Start(t, hubtest.Options{Dirs: []string{dir}, Contents: &content.Options{},
		Watch: watch.Poll, PollInterval: 20 * time.Millisecond})
	if x, ok := st.Watchers["docs"].Watching(); !ok || x.Kind != watch.Poll {
		t.Fatalf("watching %+v, %v; want polling", x, ok)
	}
	kept(t, st, "docs", "a\nb\nc\n")
	ev := change(t, st, "docs", "a.txt", "a\nB\nc\n")
	if d := cmp.Diff(delta.Diff{Text: "@@ -1,3 +1,3 @@\n a\n-b\n+B\n c\n"}, diffOf(t, st.Hub, ev)); d != "" {
		t.Errorf("first change (-want +got):\n%s", d)
	}
	ev = change(t, st, "docs", "a.txt", "a\nB\nc\nd\n")
	if d := cmp.Diff(delta.Diff{Text: "@@ -1,3 +1,4 @@\n a\n B\n c\n+d\n"}, diffOf(t, st.Hub, ev)); d != "" {
		t.Errorf("second change (-want +got):\n%s", d)
	}
}
