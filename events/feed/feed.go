// Package feed serves a workspace's events over HTTP: a Server-Sent Events
// stream that resumes by Last-Event-ID, and the JSON routes an agent or a
// remote hub client reconciles with (/changes, /files, /files/{path}). It is
// the only server-side user of go-sse; it reads everything through an
// [events.Source] and keeps no state of its own beside the open streams.
//
//	f := feed.New(src, feed.Options{Logger: log})
//	mux.HandleFunc("GET /v1/workspaces/{ws}/events", f.Events)
//	mux.HandleFunc("GET /v1/workspaces/{ws}/changes", f.Changes)
//	...
//	defer f.Close() // ends every open stream
//
// On the stream, "id:" is the event's seq, "event:" its type and "data:" its
// JSON on one line; paths only ever appear inside the JSON. A client that
// sends no position starts at the head (live events only); "Last-Event-ID: 0"
// starts at the beginning of the log.
//
// An idle stream costs the handler's goroutine (blocked in the Source's
// Subscribe) and net/http's connection state, nothing more: its writer
// goroutine and queue exist only while there is something to send, and
// one ticker per Feed sends the heartbeats of all streams.
package feed

import (
	"context"
	"log/slog"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/filecast/filecast/events"
	"github.com/filecast/filecast/events/wire"
)

// Defaults of [Options].
const (
	DefaultHeartbeat    = 15 * time.Second
	DefaultWriteTimeout = 10 * time.Second
)

// queueLen bounds the events waiting for a stream's writer.
const queueLen = 256

// retryHint is the reconnection delay suggested to clients.
const retryHint = 2 * time.Second

// Options configures a [Feed]; the zero value means the defaults.
type Options struct {
	// Heartbeat is the longest a stream stays silent: a stream that has
	// sent nothing for three quarters of it gets a comment line, which
	// keeps it open through proxies. One ticker serves every stream.
	// Default 15s.
	Heartbeat time.Duration
	// WriteTimeout bounds every write to a stream; a client that does not
	// read for that long is dropped. Default 10s.
	WriteTimeout time.Duration
	// Logger receives the feed's logs; nil discards them.
	Logger *slog.Logger
}

// Feed holds the HTTP handlers of one event source. Its methods are safe
// for concurrent use; every handler blocks for the life of its request.
type Feed struct {
	src          events.Source
	heartbeat    time.Duration
	writeTimeout time.Duration
	log          *slog.Logger
	subscribers  atomic.Int64
	frames       frameCache
	beats        beats
	born         time.Time // origin of clock

	closeCtx context.Context
	close    context.CancelFunc
}

// New returns a Feed reading from src.
func New(src events.Source, opts Options) *Feed {
	if opts.Heartbeat <= 0 {
		opts.Heartbeat = DefaultHeartbeat
	}
	if opts.WriteTimeout <= 0 {
		opts.WriteTimeout = DefaultWriteTimeout
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	ctx, cancel := context.WithCancel(context.Background())
	f := &Feed{
		src:          src,
		heartbeat:    opts.Heartbeat,
		writeTimeout: opts.WriteTimeout,
		log:          log.With("component", "feed"),
		closeCtx:     ctx,
		close:        cancel,
		born:         time.Now(),
	}
	f.beats.f = f
	return f
}

// clock returns the monotonic time since New, in nanoseconds.
func (f *Feed) clock() int64 { return int64(time.Since(f.born)) }

// Close ends every open event stream and makes new ones fail with 503;
// the JSON routes keep working. It does not wait for the handlers to
// return: an http.Server's Shutdown does that.
func (f *Feed) Close() { f.close() }

// Subscribers returns the number of event streams currently open.
func (f *Feed) Subscribers() int { return int(f.subscribers.Load()) }

// fail writes err as a JSON error, logging the ones the client cannot fix.
// A request whose client has gone gets no answer.
func (f *Feed) fail(w http.ResponseWriter, r *http.Request, err error) {
	if r.Context().Err() != nil {
		return
	}
	if status, _ := wire.ErrorCode(err); status >= 500 && !wire.Degraded(err) {
		f.log.Error("request failed", "method", r.Method, "path", r.URL.Path, "err", err)
	}
	wire.WriteError(w, err)
}

// Workspaces answers GET /v1/workspaces with {"workspaces": [{"name", "head"}]}.
func (f *Feed) Workspaces(w http.ResponseWriter, r *http.Request) {
	list, err := f.src.Workspaces(r.Context())
	if err != nil {
		f.fail(w, r, err)
		return
	}
	if list == nil {
		list = []events.WorkspaceInfo{}
	}
	wire.WriteJSON(w, http.StatusOK, wire.WorkspaceList{Workspaces: list})
}

// head returns the seq of the newest event of ws, or ErrUnknownWorkspace.
func (f *Feed) head(ctx context.Context, ws string) (uint64, error) {
	if err := events.ValidWorkspaceName(ws); err != nil {
		return 0, err
	}
	list, err := f.src.Workspaces(ctx)
	if err != nil {
		return 0, err
	}
	for _, info := range list {
		if info.Name == ws {
			return info.Head, nil
		}
	}
	return 0, &events.Error{Kind: events.ErrUnknownWorkspace, Value: ws}
}

// Changes answers GET /v1/workspaces/{ws}/changes?cursor=&limit=&wait= with
// an [events.Page]. cursor is a seq or a cursor's text form (absent: the
// start of the log); limit defaults to 100 and is clamped to 1000; wait is
// a duration ("5s") or milliseconds, at most 30s, to long-poll for the
// first event.
func (f *Feed) Changes(w http.ResponseWriter, r *http.Request) {
	ws := r.PathValue("ws")
	q := r.URL.Query()
	after, err := parsePosition(ws, q.Get("cursor"))
	if err != nil {
		f.fail(w, r, err)
		return
	}
	limit, err := parseLimit(q.Get("limit"))
	if err != nil {
		f.fail(w, r, err)
		return
	}
	wait, err := parseWait(q.Get("wait"))
	if err != nil {
		f.fail(w, r, err)
		return
	}
	if err := events.ValidWorkspaceName(ws); err != nil {
		f.fail(w, r, err)
		return
	}
	page, err := f.src.Changes(r.Context(), ws, after, limit, wait)
	if err != nil {
		f.fail(w, r, err)
		return
	}
	if page.Events == nil {
		page.Events = []events.Event{}
	}
	wire.WriteJSON(w, http.StatusOK, page)
}

// beats sends the heartbeats of every open stream from one ticker: a
// stream that has written nothing for three quarters of the interval gets
// one, so that no stream stays silent for longer than the interval. The
// ticker's goroutine runs while at least one stream is open, and stops
// when the last one ends or the Feed closes.
type beats struct {
	f       *Feed
	mu      sync.Mutex
	streams map[*stream]struct{}
	stop    chan struct{} // closed to stop the ticker; nil when none runs
}

// add registers s, starting the ticker if it is the first stream.
func (b *beats) add(s *stream) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.streams == nil {
		b.streams = map[*stream]struct{}{}
	}
	b.streams[s] = struct{}{}
	if b.stop == nil {
		b.stop = make(chan struct{})
		stop := b.stop
		go b.run(stop)
	}
}

// remove unregisters s, stopping the ticker after the last stream.
func (b *beats) remove(s *stream) {
	b.mu.Lock()
	defer b.mu.Unlock()
	delete(b.streams, s)
	if len(b.streams) == 0 && b.stop != nil {
		close(b.stop)
		b.stop = nil
	}
}

// run ticks every quarter of the heartbeat interval until stop is closed
// or the Feed closes.
func (b *beats) run(stop chan struct{}) {
	every := max(b.f.heartbeat/4, time.Millisecond)
	idle := int64(b.f.heartbeat - every)
	t := time.NewTicker(every)
	defer t.Stop()
	var due []*stream
	for {
		select {
		case <-stop:
			return
		case <-b.f.closeCtx.Done():
			return
		case <-t.C:
		}
		now := b.f.clock()
		b.mu.Lock()
		for s := range b.streams {
			if now-s.lastWrite.Load() >= idle {
				due = append(due, s)
			}
		}
		b.mu.Unlock()
		for _, s := range due {
			s.heartbeat()
		}
		clear(due)
		due = due[:0]
	}
}
