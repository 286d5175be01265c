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

func (l *heldLog) Append(ctx context.Context, ev events.Event) (events.Event, error) {
	evs, err := l.AppendBatch(ctx, []events.Event{ev})
	if err != nil {
		return events.Event{}, err
	}
	return evs[0], nil
}

func (l *heldLog) AppendBatch(_ context.Context, evs []events.Event) ([]events.Event, error) {
	close(l.published)
	<-l.release
	out := append([]events.Event(nil), evs...)
	for i := range out {
		out[i].Seq = uint64(i + 1)
	}
	return out, nil
}

// TestFiles_AwaitsTheBatchUnderWay: a listing asked for once the log has
// published a batch, but before the watcher has put it in its index,
// waits for it, so an agent that lists right after an event finds the
// file; a log that never acknowledges holds it up for flushWait at most.
func TestFiles_AwaitsTheBatchUnderWay(t *testing.T) {
	for _, acked := range []bool{true, false} {
		synctest.Test(t, func(t *testing.T) {
			log := &heldLog{published: make(chan struct{}), release: make(chan struct{})}
			w, err := New(Options{Workspace: workspace.Workspace{Name: "w", Dir: t.TempDir()}}, log)
			if err != nil {
				t.Fatal(err)
			}
			w.st = newState(t.Context(), notifier{})
			e := &entry{Size: 1, SHA256: "aa"}
			w.st.queued = []queuedEvent{{ev: events.Event{Type: events.FileCreated, Workspace: "w", Path: "a.txt", Size: 1, SHA256: "aa"}, rel: "a.txt", e: e}}
			flushed := make(chan error, 1)
			go func() { flushed <- w.flush(t.Context()) }()
			<-log.published
			listed := make(chan []events.FileInfo, 1)
			go func() {
				files, _ := w.Files("")
				listed <- files
			}()
			synctest.Wait()
			select {
			case files := <-listed:
				t.Fatalf("listed %v while the batch was still being appended", files)
			default:
			}
			if !acked {
				files := <-listed // after flushWait of the bubble's clock
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
}
