// Package journal is filecast's durable event log: one JetStream stream per
// workspace, where each appended [events.Event] gets its position (Seq),
// duplicates are dropped by event ID, old events are dropped by age and
// count, and readers page through the log or follow it live.
//
// A sketch:
//
//	j, err := journal.Open(ctx, srv.Conn(), journal.Options{Logger: log})
//	if err != nil { ... }
//	defer j.Close()
//	ev, err = j.Append(ctx, ev)                 // ev.Seq is now set
//	page, err := j.Read(ctx, "docs", cursor, 100) // errors.Is(err, events.ErrCursorExpired) when retention dropped them
//	err = j.Follow(ctx, "docs", cursor, func(ev events.Event) error { ...; return nil })
//
// A workspace name may contain '.', which neither stream names nor subject
// tokens allow; [StreamName] and [Subject] encode it.
//
// An append the server refuses for want of room (its disk full, its
// storage limit reached), or that Options.Room refuses beforehand, fails
// with events.ErrInsufficientStorage and stores nothing; the journal is
// then full (Full) until an append succeeds, and Room tells callers that
// are about to make a change only an event can report.
package journal

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/filecast/filecast/events"
	"github.com/filecast/filecast/events/internal/wait"
	"github.com/filecast/filecast/events/natsd"
)

// Sentinel errors of the package; match them with errors.Is.
var (
	ErrNoEventID = errors.New("journal: event has no event_id")
	// ErrMixedWorkspaces is returned by AppendStoredBatch for events of several workspaces.
	ErrMixedWorkspaces = errors.New("journal: a batch holds events of several workspaces")
	ErrBadEvent        = errors.New("journal: stored event cannot be decoded")
)

// Defaults of Options.
const (
	DefaultMaxAge     = 7 * 24 * time.Hour
	DefaultMaxEvents  = 1_000_000
	DefaultDuplicates = 2 * time.Minute
)

// Read limits: a limit <= 0 means DefaultReadLimit, and at most
// MaxReadLimit events are returned at once.
const (
	DefaultReadLimit = 100
	MaxReadLimit     = 10_000
)

const (
	streamPrefix  = "FILECAST_"
	subjectPrefix = "filecast.ev."
	apiTimeout    = 10 * time.Second
)

// Options configures a Journal; zero fields take the defaults.
type Options struct {
	MaxAge     time.Duration // events older than this are dropped; default DefaultMaxAge
	MaxEvents  int64         // at most this many events are kept per workspace; default DefaultMaxEvents
	Duplicates time.Duration // window in which an event ID is stored once; default DefaultDuplicates, at most MaxAge
	Replicas   int           // stream replicas on a cluster; default 1
	Logger     *slog.Logger  // nil discards logs
	// Room, when set, is asked before every append: an error (saying why
	// the store cannot take more, such as natsd.Server.Room's) makes the
	// append fail at once with events.ErrInsufficientStorage, before
	// anything is sent. Without it, only the server's refusals tell.
	Room func() error
}

func (o *Options) setDefaults() {
	if o.MaxAge <= 0 {
		o.MaxAge = DefaultMaxAge
	}
	if o.MaxEvents <= 0 {
		o.MaxEvents = DefaultMaxEvents
	}
	if o.Duplicates <= 0 {
		o.Duplicates = DefaultDuplicates
	}
	o.Duplicates = min(o.Duplicates, o.MaxAge)
	if o.Replicas <= 0 {
		o.Replicas = 1
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
}

// Journal is the event log of every workspace on one NATS connection. Its
// methods are safe for concurrent use. It does not own the connection.
type Journal struct {
	nc   *nats.Conn
	js   jetstream.JetStream
	gets *getter
	opts Options
	log  *slog.Logger

	mu      sync.Mutex
	streams map[string]bool // workspaces whose stream is known to exist with our config

	full fullness // whether the log can take more events; see Room

	// closing is cancelled by Close (under mu); follows tracks running
	// Follow calls.
	closing   context.Context
	cancel    context.CancelFunc
	follows   sync.WaitGroup
	closeOnce sync.Once
}

// Open returns a Journal on nc, which must reach a JetStream-enabled
// server. Streams are created lazily, per workspace, on first use.
func Open(ctx context.Context, nc *nats.Conn, opts Options) (*Journal, error) {
	opts.setDefaults()
	js, err := jetstream.New(nc)
	if err != nil {
		return nil, fmt.Errorf("open journal: %w", err)
	}
	if _, err := js.AccountInfo(ctx); err != nil {
		return nil, fmt.Errorf("open journal: %w", err)
	}
	gets, err := newGetter(nc)
	if err != nil {
		return nil, fmt.Errorf("open journal: %w", err)
	}
	jctx, cancel := context.WithCancel(context.Background())
	return &Journal{
		nc:      nc,
		js:      js,
		gets:    gets,
		opts:    opts,
		log:     opts.Logger.With("component", "journal"),
		streams: map[string]bool{},
		closing: jctx,
		cancel:  cancel,
	}, nil
}

// Close stops every running Follow (they return events.ErrClosed) and waits
// for them to return; later calls of any method return events.ErrClosed.
// The connection stays open. Close must not be called from inside a Follow
// callback.
func (j *Journal) Close() error {
	j.mu.Lock()
	j.cancel()
	j.mu.Unlock()
	j.follows.Wait()
	j.closeOnce.Do(j.gets.close)
	return nil
}

func (j *Journal) closed() bool { return j.closing.Err() != nil }

// StreamName returns the name of the stream that holds the log of ws.
func StreamName(ws string) string { return streamPrefix + Token(ws) }

// Subject returns the subject the events of ws are published on.
func Subject(ws string) string { return subjectPrefix + Token(ws) }

// Token encodes a workspace name as a stream-name suffix and a subject
// token, as StreamName and Subject use it (and other packages naming NATS
// subjects per workspace). Lowercase letters, digits and '-' stay; every
// other byte becomes '_' and two lowercase hex digits. The result is
// injective, contains none of the characters NATS gives a meaning ('.',
// '*', '>', spaces) and no upper case, so two names that differ only in
// case never share a folder on a case-insensitive file system.
func Token(ws string) string {
	const hex = "0123456789abcdef"
	var b strings.Builder
	b.Grow(len(ws) * 3)
	for i := 0; i < len(ws); i++ {
		c := ws[i]
		if c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' {
			b.WriteByte(c)
			continue
		}
		b.WriteByte('_')
		b.WriteByte(hex[c>>4])
		b.WriteByte(hex[c&0xf])
	}
	return b.String()
}

func (j *Journal) streamConfig(ws string) jetstream.StreamConfig {
	return jetstream.StreamConfig{
		Name:        StreamName(ws),
		Description: "filecast events of workspace " + ws,
		Subjects:    []string{Subject(ws)},
		Retention:   jetstream.LimitsPolicy,
		MaxMsgs:     j.opts.MaxEvents,
		MaxAge:      j.opts.MaxAge,
		Storage:     jetstream.FileStorage,
		Replicas:    j.opts.Replicas,
		Discard:     jetstream.DiscardOld,
		Duplicates:  j.opts.Duplicates,
		AllowDirect: true,
		Metadata:    map[string]string{"filecast_workspace": ws},
	}
}

func checkWorkspace(ws string) error {
	if err := events.ValidWorkspaceName(ws); err != nil {
		return err
	}
	return nil
}

// Ensure creates the stream of workspace ws, or updates its limits to the
// journal's options. It is idempotent.
func (j *Journal) Ensure(ctx context.Context, ws string) error {
	if err := j.ensure(ctx, ws); err != nil {
		return fmt.Errorf("ensure stream: %w", err)
	}
	return nil
}

func (j *Journal) ensure(ctx context.Context, ws string) error {
	if j.closed() {
		return events.ErrClosed
	}
	if err := checkWorkspace(ws); err != nil {
		return err
	}
	ctx, cancel := withTimeout(ctx)
	defer cancel()
	cfg := j.streamConfig(ws)
	if s, err := j.js.Stream(ctx, cfg.Name); err == nil && mayHaveDropped(s.CachedInfo()) {
		// Keep it known across a change of limits (see mayHaveDropped).
		cfg.Metadata[metaDropped] = "true"
	}
	_, kept, err := natsd.CreateOrUpdateStream(ctx, j.js, cfg)
	if err != nil {
		return fmt.Errorf("workspace %q: %w", ws, err)
	}
	if kept {
		j.log.Warn("the store has no room to update the log's settings; it is used as it is", "workspace", ws)
	}
	j.mu.Lock()
	j.streams[ws] = true
	j.mu.Unlock()
	return nil
}

// ensured makes sure the stream of ws exists, asking the server only the
// first time.
func (j *Journal) ensured(ctx context.Context, ws string) error {
	j.mu.Lock()
	ok := j.streams[ws]
	j.mu.Unlock()
	if ok {
		return nil
	}
	return j.ensure(ctx, ws)
}

func (j *Journal) forget(ws string) {
	j.mu.Lock()
	delete(j.streams, ws)
	j.mu.Unlock()
}

// Append stores ev in the log of ev.Workspace and returns it with Seq set.
// An event whose ID is already in the log (within the Duplicates window) is
// not stored again; the original's Seq is returned. The stream is created
// on first use.
func (j *Journal) Append(ctx context.Context, ev events.Event) (events.Event, error) {
	ev, _, err := j.append(ctx, ev)
	if err != nil {
		return ev, fmt.Errorf("append event: %w", err)
	}
	return ev, nil
}

// AppendStored is Append that also reports whether this call stored ev:
// false means its ID was already in the log, and only the original's Seq
// is returned. When stored, the event returned is exactly what Read and
// Follow return for that seq, so a caller can hand it on without reading
// it back.
func (j *Journal) AppendStored(ctx context.Context, ev events.Event) (events.Event, bool, error) {
	ev, stored, err := j.append(ctx, ev)
	if err != nil {
		return ev, false, fmt.Errorf("append event: %w", err)
	}
	return ev, stored, nil
}

func (j *Journal) append(ctx context.Context, ev events.Event) (out events.Event, isNew bool, err error) {
	if j.closed() {
		return ev, false, events.ErrClosed
	}
	if ev.ID == "" {
		return ev, false, ErrNoEventID
	}
	if err := j.roomToAppend(); err != nil {
		return ev, false, err
	}
	defer func() { err = j.noteAppend(err) }()
	if err := j.ensured(ctx, ev.Workspace); err != nil {
		return ev, false, err
	}
	ev.Seq = 0
	data, err := ev.MarshalJSON() // not json.Marshal, which checks and copies the bytes again
	if err != nil {
		return ev, false, err
	}
	ctx, cancel := withTimeout(ctx)
	defer cancel()
	subj := Subject(ev.Workspace)
	var ack *jetstream.PubAck
	err = retry(ctx, func(ctx context.Context) (err error) {
		ack, err = j.js.Publish(ctx, subj, data, jetstream.WithMsgID(ev.ID))
		if errors.Is(err, jetstream.ErrNoStreamResponse) && j.streamGone(ctx, ev.Workspace) {
			// The stream was deleted behind our back: create it again.
			j.forget(ev.Workspace)
			if err := j.ensured(ctx, ev.Workspace); err != nil {
				return err
			}
			ack, err = j.js.Publish(ctx, subj, data, jetstream.WithMsgID(ev.ID))
		}
		return err
	})
	if err != nil {
		return ev, false, err
	}
	if ack.Duplicate {
		ev.Seq = ack.Sequence
		return ev, false, nil
	}
	out, err = stored(ev, data, ack.Sequence)
	if err != nil {
		return ev, false, err
	}
	return out, true, nil
}

// publishBatch publishes datas (the encoded evs) without waiting, then
// waits for every acknowledgement. On error it returns the
// acknowledgements of the events before the first that failed.
func (j *Journal) publishBatch(ctx context.Context, subj string, evs []events.Event, datas [][]byte) ([]*jetstream.PubAck, error) {
	futures := make([]jetstream.PubAckFuture, 0, len(evs))
	var sendErr error
	for i := range evs {
		f, err := j.js.PublishMsgAsync(&nats.Msg{Subject: subj, Data: datas[i]}, jetstream.WithMsgID(evs[i].ID))
		if err != nil {
			sendErr = err
			break
		}
		futures = append(futures, f)
	}
	acks := make([]*jetstream.PubAck, 0, len(evs))
	for _, f := range futures {
		select {
		case ack := <-f.Ok():
			acks = append(acks, ack)
		case err := <-f.Err():
			return acks, err
		case <-ctx.Done():
			return acks, ctx.Err()
		}
	}
	return acks, sendErr
}

// Appends are tried again, with the same message IDs (so nothing is stored
// twice), when an attempt got no answer within attemptTimeout or the
// connection was down: on a cluster, a stream whose leader died takes a
// few seconds to elect another, and a publish sent meanwhile is never
// acknowledged.
const (
	attemptTimeout = 2 * time.Second
	retryPause     = 100 * time.Millisecond
)

// retry runs publish until it succeeds, fails for good, or ctx is done.
func retry(ctx context.Context, publish func(context.Context) error) error {
	for attempt := 1; ; attempt++ {
		actx, cancel := context.WithTimeout(ctx, attemptTimeout)
		err := publish(actx)
		cancel()
		if err == nil || ctx.Err() != nil || !transient(err) {
			if err != nil && ctx.Err() != nil && !errors.Is(err, ctx.Err()) {
				err = fmt.Errorf("%w (after %d attempts: %w)", ctx.Err(), attempt, err)
			}
			return err
		}
		wait.Sleep(ctx, min(retryPause*time.Duration(attempt), time.Second))
	}
}

// transient reports whether a failed publish may succeed if sent again.
func transient(err error) bool {
	return errors.Is(err, context.DeadlineExceeded) ||
		errors.Is(err, nats.ErrTimeout) ||
		errors.Is(err, nats.ErrNoResponders) ||
		errors.Is(err, jetstream.ErrNoStreamResponse) ||
		errors.Is(err, nats.ErrDisconnected) ||
		errors.Is(err, nats.ErrConnectionReconnecting)
}

// streamGone reports whether the workspace's stream is known not to exist
// (rather than being between leaders).
func (j *Journal) streamGone(ctx context.Context, ws string) bool {
	_, err := j.js.Stream(ctx, StreamName(ws))
	return errors.Is(err, jetstream.ErrStreamNotFound)
}

// stored returns ev as decoding data, its stored form, gives it: what
// Read and Follow return. It normalises the fields the wire form changes
// instead of decoding, unless a string would not survive the round trip.
func stored(ev events.Event, data []byte, seq uint64) (events.Event, error) {
	if !roundTrips(ev) {
		return decode(data, seq)
	}
	ev.Seq = seq
	ev.Time = ev.Time.UTC()
	if !ev.HasContent() {
		ev.Size = 0
	}
	if !ev.ExpiresAt.IsZero() {
		ev.ExpiresAt = ev.ExpiresAt.UTC()
	}
	if ev.Lock != nil {
		l := *ev.Lock
		ev.Lock = &l
	}
	return ev, nil
}

// roundTrips reports whether every string of ev is valid UTF-8, which
// encoding/json would otherwise replace, and every time survives
// RFC 3339 (years 0 to 9999).
func roundTrips(ev events.Event) bool {
	for _, s := range [...]string{ev.ID, string(ev.Type), ev.Workspace, ev.Path, ev.OldPath, ev.SHA256, ev.Actor} {
		if !utf8.ValidString(s) {
			return false
		}
	}
	if ev.Lock != nil && (!utf8.ValidString(ev.Lock.Holder) || !utf8.ValidString(ev.Lock.Mode)) {
		return false
	}
	for _, t := range [...]time.Time{ev.Time, ev.ExpiresAt} {
		if y := t.UTC().Year(); !t.IsZero() && (y < 0 || y > 9999) {
			return false
		}
	}
	return true
}

// state returns the stream state of ws; ok is false when the stream does
// not exist yet.
func (j *Journal) state(ctx context.Context, ws string) (st jetstream.StreamState, ok bool, err error) {
	info, err := j.info(ctx, ws)
	if err != nil || info == nil {
		return st, false, err
	}
	return info.State, true, nil
}

// info returns the stream info of ws, nil when the stream does not exist
// yet.
func (j *Journal) info(ctx context.Context, ws string) (*jetstream.StreamInfo, error) {
	if j.closed() {
		return nil, events.ErrClosed
	}
	if err := checkWorkspace(ws); err != nil {
		return nil, err
	}
	ctx, cancel := withTimeout(ctx)
	defer cancel()
	s, err := j.js.Stream(ctx, StreamName(ws))
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		j.forget(ws)
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return s.CachedInfo(), nil
}

// Head returns the seq of the newest event of ws, 0 if there was none. It
// does not move back when old events are dropped.
func (j *Journal) Head(ctx context.Context, ws string) (uint64, error) {
	st, _, err := j.state(ctx, ws)
	if err != nil {
		return 0, fmt.Errorf("read head: %w", err)
	}
	return st.LastSeq, nil
}

// First returns the seq of the oldest event ws still holds, 0 if it holds
// none.
func (j *Journal) First(ctx context.Context, ws string) (uint64, error) {
	st, _, err := j.state(ctx, ws)
	if err != nil {
		return 0, fmt.Errorf("read first: %w", err)
	}
	if st.Msgs == 0 {
		return 0, nil
	}
	return st.FirstSeq, nil
}

func cursorExpired(ws string, after, first uint64) error {
	return fmt.Errorf("%w (workspace %s: cursor %d, oldest event held %d)", events.ErrCursorExpired, ws, after, first)
}

// decode reads a stored event and sets its Seq.
func decode(data []byte, seq uint64) (events.Event, error) {
	var ev events.Event
	if err := json.Unmarshal(data, &ev); err != nil {
		return ev, fmt.Errorf("%w: seq %d: %w", ErrBadEvent, seq, err)
	}
	ev.Seq = seq
	return ev, nil
}

// withTimeout bounds a server request when ctx has no deadline.
func withTimeout(ctx context.Context) (context.Context, context.CancelFunc) {
	if _, ok := ctx.Deadline(); ok {
		return ctx, func() {}
	}
	return context.WithTimeout(ctx, apiTimeout)
}

// AppendStoredBatch is AppendStored for several events of one workspace,
// in order: it publishes them all without waiting, then waits for every
// acknowledgement, so a burst costs about one round trip instead of one
// per event. The log stores them in the order given. out[i] and stored[i]
// (whether this call stored it) describe evs[i]; on error, out and stored
// describe the events known to be stored, a prefix of evs, and later ones
// may have been stored too (an event appended again with the same ID is
// not stored twice).
func (j *Journal) AppendStoredBatch(ctx context.Context, evs []events.Event) (out []events.Event, isNew []bool, err error) {
	if len(evs) == 0 {
		return nil, nil, nil
	}
	if j.closed() {
		return nil, nil, events.ErrClosed
	}
	if err := j.roomToAppend(); err != nil {
		return nil, nil, fmt.Errorf("append events: %w", err)
	}
	defer func() { err = j.noteAppend(err) }()
	ws := evs[0].Workspace
	if err := j.ensured(ctx, ws); err != nil {
		return nil, nil, fmt.Errorf("append events: %w", err)
	}
	datas := make([][]byte, len(evs))
	for i := range evs {
		ev := evs[i]
		if ev.ID == "" {
			return nil, nil, ErrNoEventID
		}
		if ev.Workspace != ws {
			return nil, nil, fmt.Errorf("append events: %w", ErrMixedWorkspaces)
		}
		ev.Seq = 0
		evs[i].Seq = 0
		if datas[i], err = ev.MarshalJSON(); err != nil {
			return nil, nil, fmt.Errorf("append events: %w", err)
		}
	}
	ctx, cancel := withTimeout(ctx)
	defer cancel()
	// Every attempt publishes the whole batch with the same message IDs:
	// what an earlier attempt stored comes back as a duplicate with its seq.
	var acks []*jetstream.PubAck
	pubErr := retry(ctx, func(ctx context.Context) (err error) {
		acks, err = j.publishBatch(ctx, Subject(ws), evs, datas)
		return err
	})
	out = make([]events.Event, len(acks))
	isNew = make([]bool, len(acks))
	for i, ack := range acks {
		if ack.Duplicate {
			out[i] = evs[i]
			out[i].Seq = ack.Sequence
			continue
		}
		if out[i], err = stored(evs[i], datas[i], ack.Sequence); err != nil {
			return nil, nil, fmt.Errorf("append events: %w", err)
		}
		isNew[i] = true
	}
	if pubErr != nil {
		return out, isNew, fmt.Errorf("append events: %w", pubErr)
	}
	return out, isNew, nil
}
