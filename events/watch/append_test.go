package watch

import (
	"context"
	"testing"
	"testing/synctest"

	"github.com/filecast/filecast/events"
	"github.com/filecast/filecast/events/workspace"
)

// heldLog publishes a batch (as the hub does, to its subscribers) and then
// holds it until released, as a log slow to acknowledge would.
type heldLog struct {
	published chan struct{}
	release   chan struct{}
}

func (l *heldLog) Append(_ context.Context, ev events.Event) (events.Event, error) {
	close(l.published)
	<-l.release
	ev.Seq = 1
	return ev, nil
}

// heldBatchLog is heldLog that takes batches.
type heldBatchLog struct{ *heldLog }

func (l heldBatchLog) AppendBatch(ctx context.Context, evs []events.Event) ([]events.Event, error) {
	out := append([]events.Event(nil), evs...)
	for i := range out {
		var err error
		if out[i], err = l.Append(ctx, out[i]); err != nil {
			return nil, err
		}
		out[i].Seq = uint64(i + 1)
	}
	return out, nil
}

// TestFiles_AwaitsTheAppendUnderWay: a listing asked for once the log has
// published a change, but before the watcher has put it in its index,
// waits for it, so an agent that lists right after an event finds the
// file — a change appended alone (a move, a link, a log without batches)
// as one of a batch; a log that never acknowledges holds the listing up
// for appendWait at most.
func TestFiles_AwaitsTheAppendUnderWay(t *testing.T) {
	for _, tc := range []struct {
		name         string
		batch, acked bool
	}{{"batch", true, true}, {"batch not acknowledged", true, false}, {"alone", false, true}, {"alone not acknowledged", false, false}} {
		t.Run(tc.name, func(t *testing.T) { awaitsTheAppend(t, tc.batch, tc.acked) })
	}
}

func awaitsTheAppend(t *testing.T, batch, acked bool) {
	synctest.Test(t, func(t *testing.T) {
		log := &heldLog{published: make(chan struct{}), release: make(chan struct{})}
		var app Appender = log
		if batch {
			app = heldBatchLog{log}
		}
		w, err := New(Options{Workspace: workspace.Workspace{Name: "w", Dir: t.TempDir()}}, app)
		if err != nil {
			t.Fatal(err)
		}
		w.st = newState(t.Context(), notifier{})
		e := &entry{Size: 1, SHA256: "aa"}
		flushed := make(chan error, 1)
		if batch {
			w.st.queued = []queuedEvent{{ev: events.Event{Type: events.FileCreated, Workspace: "w", Path: "a.txt", Size: 1, SHA256: "aa"}, rel: "a.txt", e: e}}
			go func() { flushed <- w.flush(t.Context()) }()
		} else {
			go func() { flushed <- w.emit(t.Context(), events.FileCreated, "a.txt", "", e) }()
		}
		<-log.published
		listed := make(chan []events.FileInfo, 1)
		go func() {
			files, _ := w.Files("")
			listed <- files
		}()
		synctest.Wait()
		select {
		case files := <-listed:
			t.Fatalf("listed %v while the change was still being appended", files)
		default:
		}
		if !acked {
			files := <-listed // after appendWait of the bubble's clock
			if len(files) != 0 {
				t.Errorf("listing without the acknowledgement = %v, want none yet", files)
			}
			close(log.release)
			if err := <-flushed; err != nil {
				t.Fatal(err)
			}
			return
		}
		close(log.release)
		if files := <-listed; len(files) != 1 || files[0].Path != "a.txt" || files[0].Version != 1 {
			t.Errorf("listing = %+v, want a.txt at version 1", files)
		}
		if err := <-flushed; err != nil {
			t.Fatal(err)
		}
	})
}
