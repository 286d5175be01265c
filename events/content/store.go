// Package content keeps earlier versions of text files on JetStream, by
// workspace and sha256, so that a change can be shown as a diff against
// the content the file had before, long after the file on disk has moved
// on.
//
// Contents live in one stream (StreamName) beside the event log, one
// message per content on subject SubjectPrefix+<workspace>.<sha256 in
// hex>, compressed with S2, replicated like the log (Options.Replicas).
// Each workspace has its own contents: a sha256 named in one workspace
// never reads a content of another, so knowing a hash proves nothing
// about a workspace one may not read. A key-value bucket would refuse new
// values once full; the stream instead drops its oldest contents first
// when it reaches Options.MaxBytes.
//
// Only text is kept (diff.IsText). Of a binary content, and of one over
// Options.MaxFileSize or, compressed, over one message of the server (its
// max_payload, 1 MB by default), the store keeps only that fact, in a
// message without data: Get then says why it has no content (ErrBinary,
// ErrTooLarge), so that a diff can say why it cannot be given.
//
// A content is current while a file has it, and kept for as long as the
// store has room. Once no file has it any more — the file changed, was
// deleted — the caller retires it (Retire), and it is kept for
// Options.MaxAge more (the log's retention: the diff of the event that
// replaced it may be asked for as long as that event is in the log), then
// dropped. Putting a retired content again makes it current again.
//
// Writes go through a bounded queue and a few writer goroutines, so that
// a caller never waits for JetStream: Put and Offer copy the data and
// return once it is queued; Flush waits until everything queued is stored.
// Get reads a content back, checks it against its sha256, and returns
// ErrNotStored for a content that was never stored or was dropped. A Get
// of a content this Store has queued and not yet written waits for the
// write, so that a content offered before its event was appended is there
// for whoever reads the event.
//
// A write costs the embedded server about 25 µs of CPU per content, plus
// S2 at some hundreds of MB/s: about 80 µs for a 6.5 KiB source file on a
// small shared machine, against 5 µs to hash it. Filling the store as a
// workspace is first indexed is best done after the index is ready, by a
// background pass that waits for room (Put), so that readiness is not
// delayed; a change seen live is handed over with Offer, which never
// waits.
//
// A sketch, in the hub:
//
//	st, err := content.Open(ctx, srv.Conn(), content.Options{Replicas: srv.Replicas(), MaxAge: logAge, Room: srv.Room})
//	if err != nil { ... }
//	defer st.Close()
//	docs := st.Workspace("docs")
//	// after the first index: every file up to st.MaxFileSize(), waiting for room
//	err = docs.Put(ctx, sha, data)
//	docs.MarkTooLarge(bigSHA) // a larger one: only that fact
//	// a change seen by the watcher: never wait
//	docs.Offer(newSHA, data)
//	docs.Retire(oldSHA) // unless another file still has it
//	// list_changes with diff: true
//	prev, err := docs.Get(ctx, ev.PrevSHA256)
//	if errors.Is(err, content.ErrNotStored) { ... diff_unavailable: "not_stored" }
//
// A Store is safe for concurrent use. It owns its writer goroutines,
// which Close stops; it does not own the connection.
package content

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/sourcegraph/conc"

	"github.com/filecast/filecast/events/journal"
	"github.com/filecast/filecast/events/natsd"
)

// Names of the stream and its subjects.
const (
	StreamName    = "FILECAST_FILE_CONTENT"
	SubjectPrefix = "filecast.content."
)

// Subject returns the subject of the content under sha in workspace ws.
func Subject(ws, sha string) string { return SubjectPrefix + journal.Token(ws) + "." + sha }

// Defaults of Options.
const (
	// DefaultMaxBytes bounds the stream. Source files take about 3.7 KiB
	// each on disk (6.5 KiB compressed by 1.8), so 512 MiB keeps the text
	// files of a workspace of some 140,000 of them.
	DefaultMaxBytes = 512 << 20
	// DefaultMaxFileSize is the largest content stored.
	DefaultMaxFileSize = 1 << 20
	// DefaultMaxAge is how long a retired content is kept: the log's
	// default retention.
	DefaultMaxAge = 7 * 24 * time.Hour
	// DefaultQueueBytes bounds the bytes queued and in flight.
	DefaultQueueBytes = 32 << 20
)

// EmptySHA256 is the sha256 of empty content, which the store answers
// without storing.
const EmptySHA256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

// Sentinel errors of the package; match them with errors.Is.
var (
	ErrNotStored = errors.New("content: not stored")
	// ErrTooLarge is a content over Options.MaxFileSize (or, compressed,
	// over the server's max payload): Put refuses it, and Get returns it
	// for a content the store knows only the size of.
	ErrTooLarge = errors.New("content: too large to store")
	// ErrBinary is what Get returns for a content that is not text: the
	// store keeps only that fact.
	ErrBinary     = errors.New("content: binary, not stored")
	ErrBadKey     = errors.New("content: key is not a sha256 in lowercase hex")
	ErrBusy       = errors.New("content: the store's queue is full")
	ErrClosed     = errors.New("content: store closed")
	ErrBadOptions = errors.New("content: invalid options")
)

const (
	apiTimeout = 10 * time.Second
	// hdrEncoding names how a message's data is encoded: "s2", or absent
	// for the content as it is (when compressing does not make it smaller).
	hdrEncoding = "Filecast-Encoding"
	encS2       = "s2"
	// hdrNotKept marks a message that stands for a content without
	// holding it, and says why: "binary" or "too_large".
	hdrNotKept  = "Filecast-Not-Kept"
	notBinary   = "binary"
	notTooLarge = "too_large"
	// headerRoom is kept free of a message's max payload for its headers.
	headerRoom = 512
	// maxInflight bounds the writes awaiting JetStream's acknowledgement.
	maxInflight = 1024
	// queueLen bounds the operations queued per writer.
	queueLen = 1024
	// recentLen is how many recent keys Put remembers having stored.
	recentLen = 8192
	// logEvery spaces out warnings of repeated failures.
	logEvery = 10 * time.Second
)

// Options configures a Store; zero fields take the defaults.
type Options struct {
	// MaxBytes bounds the stream; past it the oldest contents are dropped
	// first. JetStream reserves it in its storage limit. Default
	// DefaultMaxBytes.
	MaxBytes int64
	// MaxAge is how long a retired content is kept, normally the log's
	// retention. At least a second. Default DefaultMaxAge.
	MaxAge time.Duration
	// MaxFileSize is the largest content stored. Default
	// DefaultMaxFileSize.
	MaxFileSize int64
	// Replicas of the stream on a cluster. Default 1.
	Replicas int
	// QueueBytes bounds the content queued or being written: Put waits
	// and Offer gives up while it is reached. Default DefaultQueueBytes.
	QueueBytes int64
	// Room, when set, is asked before each write (natsd.Server.Room): an
	// error skips the write, so that contents never take the room the
	// log needs.
	Room func() error
	// Logger receives warnings; nil discards them.
	Logger *slog.Logger
}

func (o *Options) setDefaults() error {
	if o.MaxBytes == 0 {
		o.MaxBytes = DefaultMaxBytes
	}
	if o.MaxAge == 0 {
		o.MaxAge = DefaultMaxAge
	}
	if o.MaxFileSize == 0 {
		o.MaxFileSize = DefaultMaxFileSize
	}
	if o.Replicas == 0 {
		o.Replicas = 1
	}
	if o.QueueBytes == 0 {
		o.QueueBytes = DefaultQueueBytes
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	switch {
	case o.MaxBytes < 0:
		return fmt.Errorf("%w: size cap %d is negative", ErrBadOptions, o.MaxBytes)
	case o.MaxAge < time.Second:
		return fmt.Errorf("%w: retention %v is under a second", ErrBadOptions, o.MaxAge)
	case o.MaxFileSize < 0:
		return fmt.Errorf("%w: largest content %d is negative", ErrBadOptions, o.MaxFileSize)
	case o.Replicas < 0 || o.Replicas > natsd.MaxReplicas:
		return fmt.Errorf("%w: replicas %d is out of range: use 1 to %d", ErrBadOptions, o.Replicas, natsd.MaxReplicas)
	case o.QueueBytes < 0:
		return fmt.Errorf("%w: queue size %d is negative", ErrBadOptions, o.QueueBytes)
	}
	return nil
}

// lastGetter reads the content of a subject.
type lastGetter interface {
	GetLastMsgForSubject(ctx context.Context, subject string) (*jetstream.RawStreamMsg, error)
}

// Store keeps contents by workspace and sha256. See the package
// documentation.
type Store struct {
	pub        jetstream.Publisher
	get        lastGetter
	opts       Options
	log        *slog.Logger
	maxPayload int64
	epoch      string

	shards []chan op
	acks   chan inflight
	recent *recent
	stats  counters
	warned atomic.Int64 // unix nanoseconds of the last failure warning

	mu      sync.Mutex
	used    int64               // bytes reserved by queued and in-flight writes
	freed   chan struct{}       // closed and replaced when bytes are released
	pending int                 // operations queued or in flight
	idle    chan struct{}       // closed and replaced when pending drops to zero
	writing map[string]*writing // subjects with a put queued or in flight
	closed  bool

	stop      context.CancelFunc
	done      chan struct{} // closed by Close
	wg        conc.WaitGroup
	closeOnce sync.Once
}

// writing is the puts of one subject queued or in flight; done is closed
// when the last one ends.
type writing struct {
	n    int
	done chan struct{}
}

// op is a queued write: a put (of data, or of a mark when notKept is
// set), or a retire.
type op struct {
	subject string
	sha     string
	data    []byte
	notKept string // notBinary or notTooLarge: a mark without data
	retire  bool
	size    int64 // bytes reserved
	raw     int   // length of the content, once data is dropped
}

// inflight is a write awaiting JetStream's acknowledgement.
type inflight struct {
	op     op
	stored int // bytes of the message's data
	fut    jetstream.PubAckFuture
}

// Open creates the stream, or updates its limits to opts, and starts the
// writers. nc must reach a JetStream-enabled server.
func Open(ctx context.Context, nc *nats.Conn, opts Options) (*Store, error) {
	if err := opts.setDefaults(); err != nil {
		return nil, fmt.Errorf("open content store: %w", err)
	}
	log := opts.Logger.With("component", "content")
	js, err := jetstream.New(nc,
		jetstream.WithPublishAsyncTimeout(apiTimeout),
		jetstream.WithPublishAsyncMaxPending(2*maxInflight))
	if err != nil {
		return nil, fmt.Errorf("open content store: %w", err)
	}
	cctx, cancel := context.WithTimeout(ctx, apiTimeout)
	defer cancel()
	stream, kept, err := natsd.CreateOrUpdateStream(cctx, js, streamConfig(opts))
	switch {
	case natsd.NoRoom(err):
		return nil, fmt.Errorf("open content store: JetStream has no room to reserve %d MiB for it; give it less room or the server more: %w", opts.MaxBytes>>20, err)
	case err != nil:
		return nil, fmt.Errorf("open content store: stream %s: %w", StreamName, err)
	case kept:
		log.Warn("the store has no room to update the content store's settings; it is used as it is")
	}
	epoch := ""
	if info := stream.CachedInfo(); info != nil {
		epoch = info.Created.UTC().Format(time.RFC3339Nano)
	}
	runCtx, stop := context.WithCancel(context.Background())
	s := &Store{
		pub:        js,
		get:        stream,
		opts:       opts,
		log:        log,
		maxPayload: nc.MaxPayload() - headerRoom,
		epoch:      epoch,
		acks:       make(chan inflight, maxInflight),
		recent:     newRecent(recentLen),
		freed:      make(chan struct{}),
		idle:       make(chan struct{}),
		writing:    map[string]*writing{},
		stop:       stop,
		done:       make(chan struct{}),
	}
	n := max(1, min(runtime.GOMAXPROCS(0), 4))
	for range n {
		ch := make(chan op, queueLen)
		s.shards = append(s.shards, ch)
		s.wg.Go(func() { s.write(runCtx, ch) })
	}
	s.wg.Go(func() { s.collect(runCtx) })
	return s, nil
}

func streamConfig(opts Options) jetstream.StreamConfig {
	return jetstream.StreamConfig{
		Name:              StreamName,
		Description:       "filecast: earlier contents of text files by workspace and sha256, for diffs",
		Subjects:          []string{SubjectPrefix + ">"},
		Retention:         jetstream.LimitsPolicy,
		MaxBytes:          opts.MaxBytes,
		Discard:           jetstream.DiscardOld,
		MaxMsgsPerSubject: 1,
		Storage:           jetstream.FileStorage,
		Replicas:          opts.Replicas,
		AllowDirect:       true,
		AllowMsgTTL:       true,
	}
}

// MaxFileSize returns the largest content the store keeps: callers need
// not read or hand over larger files (MarkTooLarge says they exist).
func (s *Store) MaxFileSize() int64 { return s.opts.MaxFileSize }

// Epoch names the stream the contents live in: its creation time. A
// stream made anew (its data removed, or another cluster) has another, so
// a caller that filled the store once can tell that it must fill it
// again.
func (s *Store) Epoch() string { return s.epoch }

// Flush waits until every queued write is stored (or has failed), or ctx
// is done. Under a steady stream of writes it waits for a moment when
// none is queued.
func (s *Store) Flush(ctx context.Context) error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return ErrClosed
	}
	if s.pending == 0 {
		s.mu.Unlock()
		return nil
	}
	idle := s.idle
	s.mu.Unlock()
	select {
	case <-idle:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("flush content store: %w", ctx.Err())
	case <-s.done:
		return ErrClosed
	}
}

// Close stops the writers and waits for them; writes still queued or
// unacknowledged are dropped (Flush first to wait for them). Later calls
// of any method return ErrClosed. It is safe to call more than once.
func (s *Store) Close() error {
	s.closeOnce.Do(func() {
		s.mu.Lock()
		s.closed = true
		close(s.done)
		s.mu.Unlock()
		s.stop()
		s.wg.Wait()
		s.pub.CleanupPublisher()
	})
	return nil
}
