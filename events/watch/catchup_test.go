package watch_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/filecast/filecast/events"
	"github.com/filecast/filecast/events/eventstest"
	"github.com/filecast/filecast/events/journal"
	"github.com/filecast/filecast/events/watch"
)

var _ watch.Log = (*journal.Journal)(nil)

// A change appended to the log just before a kill, with the index saved
// before it, is not reported a second time at the next start.
func TestWatcher_CrashAfterAppendBeforeSave(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	opts := watch.Options{Log: e.log}
	e.write("a.txt", "one")
	e.write("b.txt", "b")
	e.start(opts) // the first start: indexed silently
	e.stop()
	before, err := os.ReadFile(e.index)
	if err != nil {
		t.Fatal(err)
	}

	e.start(opts)
	e.write("a.txt", "two")
	evs := e.waitEvents("a.txt updated", atLeast(1))
	want := short{Type: events.FileUpdated, Path: "a.txt", SHA256: sum("two"), Size: 3}
	if diff := cmp.Diff([]short{want}, shorts(evs)); diff != "" {
		t.Fatalf("events (-want +got):\n%s", diff)
	}
	e.stop()
	// As if the process had been killed before the index was saved.
	if err := os.WriteFile(e.index, before, 0o600); err != nil {
		t.Fatal(err)
	}

	w := e.start(opts)
	if fi, ok := w.Stat("a.txt"); !ok || fi.SHA256 != sum("two") || fi.Version != evs[0].Seq {
		t.Errorf("a.txt in the index = %+v, %v; want the logged content with version %d", fi, ok, evs[0].Seq)
	}
	e.write("m.txt", "m")
	evs = e.waitEvents("the marker", atLeast(2))
	marker := short{Type: events.FileCreated, Path: "m.txt", SHA256: sum("m"), Size: 1}
	if diff := cmp.Diff([]short{want, marker}, shorts(evs)); diff != "" {
		t.Errorf("events (-want +got):\n%s", diff)
	}
	e.checkIndex()
}

// Without an index file, a log that holds events rebuilds the index: only
// what the log does not describe is reported.
func TestWatcher_NoIndexButLog(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	opts := watch.Options{Log: e.log}
	e.start(opts)
	e.write("a.txt", "a1")
	e.write("b.txt", "b")
	e.write("c.txt", "c")
	e.waitEvents("three files created", atLeast(3))
	e.write("a.txt", "a2")
	e.waitEvents("a.txt updated", atLeast(4))
	if err := os.Rename(e.path("b.txt"), e.path("d.txt")); err != nil {
		t.Fatal(err)
	}
	e.waitEvents("b.txt moved", atLeast(5))
	if err := os.Remove(e.path("c.txt")); err != nil {
		t.Fatal(err)
	}
	e.waitEvents("c.txt deleted", atLeast(6))
	e.stop()
	if err := os.Remove(e.index); err != nil {
		t.Fatal(err)
	}
	e.write("a.txt", "a3") // while stopped

	e.start(opts)
	e.write("m.txt", "m")
	evs := e.waitEvents("the marker", atLeast(8))
	want := []short{
		{Type: events.FileUpdated, Path: "a.txt", SHA256: sum("a3"), Size: 2},
		{Type: events.FileCreated, Path: "m.txt", SHA256: sum("m"), Size: 1},
	}
	if diff := cmp.Diff(want, shorts(evs[6:])); diff != "" {
		t.Errorf("events after the restart (-want +got):\n%s", diff)
	}
	e.checkIndex()
}

// The very first start with a Log that holds no event of the workspace is
// silent, and saves the index before Ready, so that a process killed right
// after is not taken for a first start again.
func TestWatcher_FirstStartWithLog(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.write("a.txt", "a")
	lock := events.Event{ID: "lock-1", Type: events.LockAcquired, Workspace: "test", Path: "a.txt", Time: time.Now()}
	if _, err := e.log.Append(context.Background(), lock); err != nil {
		t.Fatal(err)
	}
	e.start(watch.Options{Log: e.log})
	if _, err := os.Stat(e.index); err != nil {
		t.Errorf("index not saved by a first start: %v", err)
	}
	e.write("m.txt", "m")
	evs := e.waitEvents("the marker", atLeast(2))
	if got := brief(evs[1]); got.Path != "m.txt" || len(evs) != 2 {
		t.Errorf("events %v, want the lock event and the marker", shorts(evs))
	}
}

// readOnly is a Log that cannot tell the oldest event it holds.
type readOnly struct{ l watch.Log }

func (r readOnly) Read(ctx context.Context, ws string, after uint64, limit int) ([]events.Event, error) {
	return r.l.Read(ctx, ws, after, limit)
}

// When retention dropped events after the saved index, what the log still
// holds is folded on top of it; changes among the dropped events are
// reported again. A Log without First leaves the saved index as it is.
func TestWatcher_CursorExpired(t *testing.T) {
	tests := []struct {
		name string
		log  func(*journal.Journal) watch.Log
		want []short
	}{
		{"first held", func(j *journal.Journal) watch.Log { return j }, []short{
			{Type: events.FileUpdated, Path: "x.txt"},
			{Type: events.FileCreated, Path: "y.txt"},
		}},
		{"no First", func(j *journal.Journal) watch.Log { return readOnly{j} }, []short{
			{Type: events.FileUpdated, Path: "x.txt"},
			{Type: events.FileCreated, Path: "y.txt"},
			{Type: events.FileCreated, Path: "z.txt"},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t)
			opts := watch.Options{Log: tt.log(e.log)}
			e.start(opts)
			e.write("x.txt", "x1")
			e.waitEvents("x.txt", atLeast(1))
			e.stop()
			before, err := os.ReadFile(e.index)
			if err != nil {
				t.Fatal(err)
			}
			e.start(opts)
			e.write("y.txt", "y")
			e.waitEvents("y.txt", atLeast(2))
			e.write("x.txt", "x2")
			e.waitEvents("x.txt", atLeast(3))
			e.write("z.txt", "z")
			e.waitEvents("z.txt", atLeast(4))
			e.stop()
			if err := os.WriteFile(e.index, before, 0o600); err != nil {
				t.Fatal(err)
			}
			// Retention drops events 1-3 (the index reflects only 1): the
			// log's limit is lowered to one event, then set back.
			ctx := t.Context()
			if err := openJournalOn(t, e.nats, journal.Options{MaxEvents: 1}).Ensure(ctx, "test"); err != nil {
				t.Fatal(err)
			}
			if err := e.log.Ensure(ctx, "test"); err != nil {
				t.Fatal(err)
			}
			if _, err := e.log.Read(ctx, "test", 0, 10); !errors.Is(err, events.ErrCursorExpired) {
				t.Fatalf("read from the start after retention: %v, want the cursor expired", err)
			}

			e.start(opts)
			e.write("m.txt", "m")
			want := append(tt.want, short{Type: events.FileCreated, Path: "m.txt"})
			var evs []events.Event
			if !eventstest.Poll(eventstest.Timeout, func() bool { evs = readAfter(t, e.log, "test", 4); return len(evs) >= len(want) }) {
				t.Fatalf("timed out waiting for the marker; events after the restart:\n%s", dump(evs))
			}
			if diff := cmp.Diff(want, shorts(evs), cmpopts.IgnoreFields(short{}, "SHA256", "Size")); diff != "" {
				t.Errorf("events after the restart (-want +got):\n%s", diff)
			}
		})
	}
}

// failingLog fails every Read.
type failingLog struct{ err error }

func (f failingLog) Read(context.Context, string, uint64, int) ([]events.Event, error) {
	return nil, f.err
}

func TestWatcher_LogReadFails(t *testing.T) {
	e := newEnv(t)
	down := errors.New("log unavailable")
	w, err := watch.New(watch.Options{Workspace: e.ws, Log: failingLog{down}}, e.log)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := w.Run(ctx); !errors.Is(err, down) {
		t.Errorf("Run = %v, want the Read error", err)
	}
	select {
	case <-w.Ready():
		t.Error("Ready closed although the log could not be read")
	default:
	}
}

// BenchmarkWatcher_StartFromLog measures a start that rebuilds the index
// of 1,000 files from 10,000 logged events (no index file) and finds
// nothing to report.
func BenchmarkWatcher_StartFromLog(b *testing.B) {
	e := newEnv(b)
	const files, rounds = 1000, 10
	for r := range rounds {
		for i := range files {
			content := fmt.Sprintf("file %d round %d", i, r)
			ev := events.Event{Type: events.FileUpdated, Workspace: "test", Path: fmt.Sprintf("f%04d", i), Size: int64(len(content)), SHA256: sum(content)}
			if r == 0 {
				ev.Type = events.FileCreated
			}
			if r == rounds-1 {
				e.write(ev.Path, content)
			}
			ev.ID = fmt.Sprintf("start-%d-%d", r, i)
			if _, err := e.log.Append(context.Background(), ev); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		w, err := watch.New(watch.Options{Workspace: e.ws, Log: e.log}, e.log)
		if err != nil {
			b.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- w.Run(ctx) }()
		select {
		case <-w.Ready():
		case err := <-done:
			b.Fatal(err)
		}
		cancel()
		<-done
	}
	b.StopTimer()
	if n := len(e.events()); n != files*rounds {
		b.Fatalf("%d events appended at start, want none", n-files*rounds)
	}
}
