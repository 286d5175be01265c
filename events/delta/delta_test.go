package delta_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/filecast/filecast/events"
	"github.com/filecast/filecast/events/delta"
	"github.com/filecast/filecast/events/feed/feedtest"
)

const ws = "docs"

func source(t testing.TB) *feedtest.Source {
	t.Helper()
	src := feedtest.New()
	src.AddWorkspace(ws, t.TempDir())
	return src
}

// update is the file.updated event of a change from old to cur, both kept.
func update(src *feedtest.Source, old, cur string) events.Event {
	return events.Event{Workspace: ws, Type: events.FileUpdated, Path: "a.txt", Size: int64(len(cur)),
		PrevSHA256: src.PutContent(ws, []byte(old)), SHA256: src.PutContent(ws, []byte(cur))}
}

func lines(n int, format func(i int) string) string {
	var b strings.Builder
	for i := range n {
		b.WriteString(format(i))
	}
	return b.String()
}

func TestEvents(t *testing.T) {
	src := source(t)
	ten := lines(10, func(i int) string { return "line " + string(rune('a'+i)) + "\n" })
	big := lines(500, func(i int) string { return "a long line of text that makes the diff long\n" })
	binPrev, binCur := update(src, "\x00\x01png", "\x00\x02png"), update(src, "x", "y")
	src.MarkContent(ws, binPrev.PrevSHA256, events.ErrBinary)
	src.MarkContent(ws, binPrev.SHA256, events.ErrBinary)
	src.MarkContent(ws, binCur.SHA256, events.ErrBinary)
	large := update(src, "small\n", "huge\n")
	src.MarkContent(ws, large.SHA256, events.ErrTooLarge)
	gone := update(src, "dropped\n", "kept\n")
	src.DropContent(ws, gone.PrevSHA256)
	noPrev := update(src, "", "something\n")
	noPrev.PrevSHA256 = ""
	moved := update(src, "one\n", "two\n")
	moved.Type, moved.OldPath = events.FileMoved, "old.txt"
	plainMove := events.Event{Workspace: ws, Type: events.FileMoved, Path: "b.txt", OldPath: "a.txt", SHA256: src.PutContent(ws, []byte("x"))}

	tests := []struct {
		name string
		ev   events.Event
		want delta.Diff
	}{
		{"edit", update(src, ten, strings.Replace(ten, "line e", "line E", 1)), delta.Diff{
			Text: "@@ -2,7 +2,7 @@\n line b\n line c\n line d\n-line e\n+line E\n line f\n line g\n line h\n"}},
		{"append", update(src, "a\nb\n", "a\nb\nc\n"), delta.Diff{Text: "@@ -1,2 +1,3 @@\n a\n b\n+c\n"}},
		{"truncation", update(src, "a\nb\nc\n", "a\n"), delta.Diff{Text: "@@ -1,3 +1 @@\n a\n-b\n-c\n"}},
		{"emptied", update(src, "a\n", ""), delta.Diff{Text: "@@ -1 +0,0 @@\n-a\n"}},
		{"no newline at the end", update(src, "a\n", "a\nb"), delta.Diff{Text: "@@ -1 +1,2 @@\n a\n+b\n\\ No newline at end of file\n"}},
		{"CRLF", update(src, "a\r\nb\r\n", "a\r\nB\r\n"), delta.Diff{Text: "@@ -1,2 +1,2 @@\n a\n-b\n+B\n"}},
		{"to CRLF", update(src, "a\n", "a\r\n"), delta.Diff{Text: "@@ -1 +1 @@\n-a\n+a\r\n"}},
		{"binary before and after", binPrev, delta.Diff{Unavailable: delta.Binary}},
		{"binary now", binCur, delta.Diff{Unavailable: delta.Binary}},
		{"binary by its bytes", update(src, "text\n", "te\x00xt\n"), delta.Diff{Unavailable: delta.Binary}},
		{"too large", large, delta.Diff{Unavailable: delta.TooLarge}},
		{"previous content not stored", gone, delta.Diff{Unavailable: delta.NotStored}},
		{"no previous sha256", noPrev, delta.Diff{Unavailable: delta.NotStored}},
		{"created", events.Event{Workspace: ws, Type: events.FileCreated, Path: "n.txt", SHA256: src.PutContent(ws, []byte("new\nfile\n"))},
			delta.Diff{Text: "@@ -0,0 +1,2 @@\n+new\n+file\n"}},
		{"created empty", events.Event{Workspace: ws, Type: events.FileCreated, Path: "e.txt", SHA256: src.PutContent(ws, nil)}, delta.Diff{}},
		{"moved and changed", moved, delta.Diff{Text: "@@ -1 +1 @@\n-one\n+two\n"}},
		{"moved", plainMove, delta.Diff{}},
		{"deleted", events.Event{Workspace: ws, Type: events.FileDeleted, Path: "a.txt"}, delta.Diff{}},
		{"lock", events.Event{Workspace: ws, Type: events.LockAcquired, Path: "a.txt"}, delta.Diff{}},
	}
	evs := make([]events.Event, len(tests))
	for i, tt := range tests {
		evs[i] = tt.ev
	}
	got, err := delta.Events(t.Context(), src, evs, delta.Options{})
	if err != nil {
		t.Fatalf("Events: %v", err)
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if d := cmp.Diff(tt.want, got[i]); d != "" {
				t.Errorf("Diff (-want +got):\n%s", d)
			}
		})
	}
	t.Run("bounded", func(t *testing.T) {
		ev := update(src, big, strings.ReplaceAll(big, "long", "LONG"))
		d, err := delta.Events(t.Context(), src, []events.Event{ev}, delta.Options{MaxBytes: 512})
		if err != nil || len(d[0].Text) > 512 || !d[0].Truncated || !strings.HasPrefix(d[0].Text, "@@ -1,") {
			t.Fatalf("Events = %+v, %v; want at most 512 bytes, truncated", d, err)
		}
		created := events.Event{Workspace: ws, Type: events.FileCreated, Path: "big.txt", SHA256: src.PutContent(ws, []byte(big)), Size: int64(len(big))}
		d, err = delta.Events(t.Context(), src, []events.Event{created}, delta.Options{})
		if err != nil || len(d[0].Text) > delta.DefaultMaxBytes || !d[0].Truncated || !strings.HasPrefix(d[0].Text, "@@ -0,0 +1,") || !strings.Contains(d[0].Text, "\n+a long line") {
			t.Fatalf("Events of a big created file = %q truncated %v, %v", d[0].Text, d[0].Truncated, err)
		}
	})
}

// TestEvents_Deterministic: the same events give the same diffs, whatever
// was asked before, and a call that would read too much cuts off at the
// same event each time.
func TestEvents_Deterministic(t *testing.T) {
	src := source(t)
	var evs []events.Event
	for i := range 20 {
		old := strings.Repeat("x", 1000) + "\n" + string(rune('a'+i)) + "\n"
		evs = append(evs, update(src, old, old+"more\n"))
	}
	opts := delta.Options{MaxFetch: 10 * 2 * evs[0].Size}
	first, err := delta.Events(t.Context(), src, evs, opts)
	if err != nil {
		t.Fatal(err)
	}
	for i, d := range first {
		want := ""
		if i >= 10 {
			want = delta.TooLarge
		}
		if d.Unavailable != want {
			t.Errorf("event %d: Unavailable %q, want %q", i, d.Unavailable, want)
		}
	}
	again, err := delta.Events(t.Context(), src, evs, opts)
	if err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff(first, again); d != "" {
		t.Errorf("a second read differs (-first +again):\n%s", d)
	}
}

// failing is a Getter whose reads fail as a hub out of reach does.
type failing struct{ err error }

func (f failing) Content(context.Context, string, string) ([]byte, error) { return nil, f.err }

func TestEvents_Failure(t *testing.T) {
	src := source(t)
	ev := update(src, "a\n", "b\n")
	broken := errors.New("connection reset")
	d, err := delta.Events(t.Context(), failing{broken}, []events.Event{ev}, delta.Options{})
	if !errors.Is(err, broken) || d[0].Unavailable != delta.NotStored {
		t.Fatalf("Events with a failing getter = %+v, %v; want not_stored and the failure", d, err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if _, err := delta.Events(ctx, src, []events.Event{ev}, delta.Options{}); !errors.Is(err, context.Canceled) {
		t.Fatalf("Events after cancel = %v", err)
	}
}

func TestSince(t *testing.T) {
	src := source(t)
	old := src.PutContent(ws, []byte("a\nb\n"))
	d, err := delta.Since(t.Context(), src, ws, old, []byte("a\nc\n"), delta.Options{})
	if err != nil || d.Text != "@@ -1,2 +1,2 @@\n a\n-b\n+c\n" {
		t.Fatalf("Since = %+v, %v", d, err)
	}
	if d, err := delta.Since(t.Context(), src, ws, old, []byte("a\nb\n"), delta.Options{}); err != nil || d != (delta.Diff{}) {
		t.Fatalf("Since of the same content = %+v, %v; want no diff", d, err)
	}
	src.DropContent(ws, old)
	if d, err := delta.Since(t.Context(), src, ws, old, []byte("a\nc\n"), delta.Options{}); err != nil || d.Unavailable != delta.NotStored {
		t.Fatalf("Since of a content dropped = %+v, %v", d, err)
	}
	if d, _ := delta.Since(t.Context(), src, "other", old, []byte("x"), delta.Options{}); d.Unavailable != delta.NotStored {
		t.Fatalf("Since in another workspace = %+v", d)
	}
}

// TestEvents_MaxTotal: the diffs of one call stay within MaxTotal
// together; from the first that would go past it on, the events say
// too_large, the same each time.
func TestEvents_MaxTotal(t *testing.T) {
	src := source(t)
	var evs []events.Event
	for i := range 10 {
		old := lines(5, func(j int) string { return strings.Repeat(string(rune('a'+i)), 20) + "\n" })
		evs = append(evs, update(src, old, old+"one more line\n"))
	}
	one, err := delta.Events(t.Context(), src, evs[:1], delta.Options{})
	if err != nil || one[0].Text == "" {
		t.Fatalf("Events of one = %+v, %v", one, err)
	}
	opts := delta.Options{MaxTotal: 3*len(one[0].Text) + 1}
	for range 2 {
		d, err := delta.Events(t.Context(), src, evs, opts)
		if err != nil {
			t.Fatal(err)
		}
		total := 0
		for i, d := range d {
			total += len(d.Text)
			if got, want := d.Text != "", i < 3; got != want || !want && d.Unavailable != delta.TooLarge {
				t.Errorf("event %d: %+v; want a diff for the first three only, too_large after", i, d)
			}
		}
		if total > opts.MaxTotal {
			t.Errorf("the diffs take %d bytes together, over MaxTotal %d", total, opts.MaxTotal)
		}
	}
	d, err := delta.Events(t.Context(), src, evs, delta.Options{})
	if err != nil || d[9].Text == "" {
		t.Errorf("with the default bound the tenth small diff = %+v, %v; want it", d[9], err)
	}
}
