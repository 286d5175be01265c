package feed_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/filecast/filecast/events"
	"github.com/filecast/filecast/events/feed"
	"github.com/filecast/filecast/events/feed/feedtest"
)

// The handlers' timing — heartbeats, long polls — is tested here under
// testing/synctest: the handlers run in the bubble over an in-memory source
// and write to an in-memory response, so the bubble's clock is the only
// clock, and every write's instant is exact. The tests over real HTTP
// check what is written, not when.

// flushWriter is an http.ResponseWriter that keeps what is flushed, each
// flush with the bubble's time since it was made.
type flushWriter struct {
	start  time.Time
	header http.Header

	mu      sync.Mutex
	pending bytes.Buffer
	flushes []string // "+<duration> <first line of what was flushed>"
}

func newFlushWriter() *flushWriter {
	return &flushWriter{start: time.Now(), header: http.Header{}}
}

func (w *flushWriter) Header() http.Header { return w.header }
func (w *flushWriter) WriteHeader(int)     {}

func (w *flushWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.pending.Write(p)
}

func (w *flushWriter) Flush() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.pending.Len() == 0 {
		return
	}
	for msg := range strings.SplitSeq(strings.TrimSpace(w.pending.String()), "\n\n") {
		first, _, _ := strings.Cut(msg, "\n")
		w.flushes = append(w.flushes, fmt.Sprintf("+%v %s", time.Since(w.start), first))
	}
	w.pending.Reset()
}

// SetWriteDeadline lets the handler set its write deadlines, as
// http.ResponseController does on a real connection.
func (w *flushWriter) SetWriteDeadline(time.Time) error { return nil }

func (w *flushWriter) take() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	out := w.flushes
	w.flushes = nil
	return out
}

func request(ctx context.Context, target string) *http.Request {
	r := httptest.NewRequestWithContext(ctx, http.MethodGet, target, nil)
	r.SetPathValue("ws", "docs")
	return r
}

// TestFeed_Events_Heartbeats: an idle stream gets a heartbeat once it has
// been silent for three quarters of the interval (the ticker looks every
// quarter), so it is never silent for longer than the interval; an event
// counts as a write and puts the next heartbeat off. The ticker stops with
// the last stream: the bubble ends with no goroutine left.
func TestFeed_Events_Heartbeats(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		src := feedtest.New()
		src.AddWorkspace("docs", "")
		f := feed.New(src, feed.Options{Heartbeat: time.Second})
		defer f.Close()
		ctx, cancel := context.WithCancel(t.Context())
		w := newFlushWriter()
		done := make(chan struct{})
		go func() {
			defer close(done)
			f.Events(w, request(ctx, "/v1/workspaces/docs/events"))
		}()
		synctest.Wait()
		if got, want := w.take(), []string{"+0s id: 0"}; !slices.Equal(got, want) {
			t.Fatalf("start: %q, want %q", got, want)
		}
		time.Sleep(3*time.Second + 100*time.Millisecond)
		src.Append("docs", events.Event{Type: events.FileCreated, Path: "a.md"})
		time.Sleep(time.Second)
		synctest.Wait()
		want := []string{
			"+750ms : heartbeat", "+1.5s : heartbeat", "+2.25s : heartbeat", "+3s : heartbeat",
			"+3.1s id: 1",
			"+4s : heartbeat",
		}
		if got := w.take(); !slices.Equal(got, want) {
			t.Errorf("writes %q, want %q", got, want)
		}
		if n := f.Subscribers(); n != 1 {
			t.Errorf("Subscribers() = %d, want 1", n)
		}
		cancel()
		<-done
		if n := f.Subscribers(); n != 0 {
			t.Errorf("Subscribers() = %d after the client went, want 0", n)
		}
	})
}

// TestFeed_Changes_Wait: a long poll with nothing to return answers an
// empty page when its wait runs out, not before; one that is waiting
// answers as soon as an event arrives.
func TestFeed_Changes_Wait(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		src := feedtest.New()
		src.AddWorkspace("docs", "")
		src.Append("docs", events.Event{Type: events.FileCreated, Path: "a.md"}, events.Event{Type: events.FileCreated, Path: "b.md"})
		f := feed.New(src, feed.Options{})
		defer f.Close()

		poll := func(query string) (chan *httptest.ResponseRecorder, time.Time) {
			rec := httptest.NewRecorder()
			done := make(chan *httptest.ResponseRecorder, 1)
			go func() {
				f.Changes(rec, request(t.Context(), "/v1/workspaces/docs/changes?"+query))
				done <- rec
			}()
			return done, time.Now()
		}
		page := func(rec *httptest.ResponseRecorder) events.Page {
			t.Helper()
			var p events.Page
			if rec.Code != http.StatusOK {
				t.Fatalf("status %d: %s", rec.Code, rec.Body)
			}
			if err := json.Unmarshal(rec.Body.Bytes(), &p); err != nil {
				t.Fatal(err)
			}
			return p
		}

		done, start := poll("cursor=2&wait=150ms")
		time.Sleep(150*time.Millisecond - time.Nanosecond)
		synctest.Wait()
		select {
		case <-done:
			t.Fatal("the empty long poll answered before its wait ran out")
		default:
		}
		rec := <-done
		if took := time.Since(start); took != 150*time.Millisecond {
			t.Errorf("empty long poll answered after %v, want 150ms", took)
		}
		if p := page(rec); len(p.Events) != 0 || p.Next != 2 {
			t.Errorf("empty long poll: %+v, want no events and next 2", p)
		}

		done, start = poll("cursor=2&wait=5000")
		time.Sleep(time.Second)
		synctest.Wait()
		select {
		case <-done:
			t.Fatal("the long poll answered without an event")
		default:
		}
		src.Append("docs", events.Event{Type: events.FileCreated, Path: "c.md"})
		synctest.Wait()
		select {
		case rec = <-done:
		default:
			t.Fatal("the long poll did not answer when an event arrived")
		}
		if took := time.Since(start); took != time.Second {
			t.Errorf("long poll answered after %v, want 1s (when the event came)", took)
		}
		if p := page(rec); len(p.Events) != 1 || p.Events[0].Seq != 3 {
			t.Errorf("long poll returned %+v, want event 3", p)
		}
	})
}
