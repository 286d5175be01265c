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
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/klauspost/compress/s2"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/sourcegraph/conc"

	"github.com/filecast/filecast/events/diff"
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

// Put queues data to be stored under sha, its sha256 in lowercase hex,
// in workspace ws, and returns without waiting for it to be stored. It
// copies data. Data that is not text is not stored: only that it is
// binary. While the queue is full it waits for room until ctx is done,
// and then returns an error wrapping ErrBusy and stores nothing. Putting
// a content already stored stores it again (it becomes current if it was
// retired); one this Store put recently is skipped. It returns
// ErrTooLarge for data over MaxFileSize (and records that fact, as
// MarkTooLarge does), ErrBadKey for a malformed sha, ErrClosed after
// Close. A failure to store is logged and counted in Stats; Get then
// returns ErrNotStored.
func (s *Store) Put(ctx context.Context, ws, sha string, data []byte) error {
	if err := s.checkPut(ws, sha, data); err != nil {
		return fmt.Errorf("put content: %w", err)
	}
	if sha == EmptySHA256 {
		return nil
	}
	o := op{subject: Subject(ws, sha), sha: sha, size: int64(len(data))}
	if err := s.enqueue(ctx, o, data, true); err != nil {
		return fmt.Errorf("put content: %w", err)
	}
	return nil
}

// Offer is Put that never waits: it reports whether data was queued, and
// drops it when the queue is full (counted in Stats.Dropped), the key is
// malformed, the data too large (Stats.TooLarge; the fact is recorded
// as by MarkTooLarge) or the store closed.
func (s *Store) Offer(ws, sha string, data []byte) bool {
	if s.checkPut(ws, sha, data) != nil {
		return false
	}
	if sha == EmptySHA256 {
		return true
	}
	return s.enqueue(context.Background(), op{subject: Subject(ws, sha), sha: sha, size: int64(len(data))}, data, false) == nil
}

// MarkTooLarge records, without waiting, that the content under sha is
// over MaxFileSize, for a caller that does not read such files: Get then
// returns ErrTooLarge rather than ErrNotStored. It reports false when the
// queue is full, the key is malformed or the store closed.
func (s *Store) MarkTooLarge(ws, sha string) bool {
	if !validKey(sha) || sha == EmptySHA256 {
		return false
	}
	s.stats.tooLarge.Add(1)
	return s.mark(ws, sha, notTooLarge)
}

func (s *Store) mark(ws, sha, why string) bool {
	return s.enqueue(context.Background(), op{subject: Subject(ws, sha), sha: sha, notKept: why}, nil, false) == nil
}

// Retire queues the retirement of the content under sha in ws: it is
// kept for Options.MaxAge from now, then dropped, unless it is put again.
// Call it when no file of ws has the content any more. It never waits:
// it reports false, and retires nothing, when the queue is full or the
// key malformed (the content then stays until the size cap drops it).
func (s *Store) Retire(ws, sha string) bool {
	if !validKey(sha) {
		return false
	}
	if sha == EmptySHA256 {
		return true
	}
	return s.enqueue(context.Background(), op{subject: Subject(ws, sha), sha: sha, retire: true}, nil, false) == nil
}

func (s *Store) checkPut(ws, sha string, data []byte) error {
	switch {
	case !validKey(sha):
		return fmt.Errorf("%w: %q", ErrBadKey, truncate(sha))
	case int64(len(data)) > s.opts.MaxFileSize:
		s.stats.tooLarge.Add(1)
		if sha != EmptySHA256 {
			s.mark(ws, sha, notTooLarge)
		}
		return fmt.Errorf("%w: %d bytes, over the limit of %d", ErrTooLarge, len(data), s.opts.MaxFileSize)
	}
	return nil
}

// enqueue reserves o.size bytes, waiting for them while ctx allows when
// wait is set, and hands o (with a copy of data) to its writer.
func (s *Store) enqueue(ctx context.Context, o op, data []byte, wait bool) error {
	if err := s.reserve(ctx, o, wait); err != nil {
		if errors.Is(err, ErrBusy) {
			s.stats.dropped.Add(1)
		}
		return err
	}
	if data != nil {
		o.data = append([]byte(nil), data...)
	}
	ch := s.shards[shard(o.sha, len(s.shards))]
	select {
	case ch <- o:
		return nil
	default:
	}
	if wait {
		select {
		case ch <- o:
			return nil
		case <-ctx.Done():
		case <-s.done:
		}
	}
	s.finish(o, o.size)
	s.stats.dropped.Add(1)
	if s.isClosed() {
		return ErrClosed
	}
	return fmt.Errorf("%w: %d writes queued", ErrBusy, queueLen)
}

// shard picks the writer of a key, so that the writes of one key keep
// their order.
func shard(sha string, n int) int {
	return int(fromHex(sha[0])<<4|fromHex(sha[1])) % n
}

func fromHex(c byte) byte {
	if c >= 'a' {
		return c - 'a' + 10
	}
	return c - '0'
}

// reserve takes o.size bytes of the queue's room and counts one pending
// operation (and, for a put, one write of its subject). A write larger
// than the whole room goes when nothing else is reserved.
func (s *Store) reserve(ctx context.Context, o op, wait bool) error {
	n := o.size
	for {
		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			return ErrClosed
		}
		if s.used == 0 || s.used+n <= s.opts.QueueBytes {
			s.used += n
			s.pending++
			if !o.retire {
				w := s.writing[o.subject]
				if w == nil {
					w = &writing{done: make(chan struct{})}
					s.writing[o.subject] = w
				}
				w.n++
			}
			s.mu.Unlock()
			return nil
		}
		freed := s.freed
		s.mu.Unlock()
		if !wait {
			return fmt.Errorf("%w: %d of %d bytes queued", ErrBusy, s.queued(), s.opts.QueueBytes)
		}
		select {
		case <-freed:
		case <-ctx.Done():
			return fmt.Errorf("%w: %w", ErrBusy, ctx.Err())
		case <-s.done:
			return ErrClosed
		}
	}
}

func (s *Store) queued() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.used
}

// finish releases n bytes and ends the pending operation o.
func (s *Store) finish(o op, n int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.used -= n
	close(s.freed)
	s.freed = make(chan struct{})
	s.pending--
	if s.pending == 0 {
		close(s.idle)
		s.idle = make(chan struct{})
	}
	if o.retire {
		return
	}
	if w := s.writing[o.subject]; w != nil {
		if w.n--; w.n == 0 {
			close(w.done)
			delete(s.writing, o.subject)
		}
	}
}

// written returns a channel closed once no put of subject is queued or
// in flight (nil when none is).
func (s *Store) written(subject string) <-chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	if w := s.writing[subject]; w != nil {
		return w.done
	}
	return nil
}

// grow reserves n more bytes for an operation already pending, if the
// queue has room. It does not wait: the room may be held by operations
// queued behind the caller.
func (s *Store) grow(n int64) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.used+n > s.opts.QueueBytes {
		return false
	}
	s.used += n
	return true
}

func (s *Store) isClosed() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closed
}

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

// Get returns the content stored under sha in ws. It returns ErrNotStored
// when the store does not have it — never stored, dropped by the size cap
// or the retention — or when what it has does not match sha; ErrBinary or
// ErrTooLarge when it knows the content but does not keep it; ErrBadKey
// for a malformed sha; other errors when JetStream does not answer. A
// content this Store has queued is waited for (bounded by ctx). The
// content of EmptySHA256 is always there.
func (s *Store) Get(ctx context.Context, ws, sha string) ([]byte, error) {
	if !validKey(sha) {
		return nil, fmt.Errorf("get content: %w: %q", ErrBadKey, truncate(sha))
	}
	if s.isClosed() {
		return nil, fmt.Errorf("get content: %w", ErrClosed)
	}
	if sha == EmptySHA256 {
		return []byte{}, nil
	}
	subject := Subject(ws, sha)
	if w := s.written(subject); w != nil {
		select {
		case <-w:
		case <-ctx.Done():
			return nil, fmt.Errorf("get content %.12s: %w", sha, ctx.Err())
		case <-s.done:
			return nil, fmt.Errorf("get content %.12s: %w", sha, ErrClosed)
		}
	}
	msg, err := s.get.GetLastMsgForSubject(ctx, subject)
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return nil, fmt.Errorf("get content %.12s: %w", sha, ErrNotStored)
	}
	if err != nil {
		return nil, fmt.Errorf("get content %.12s: %w", sha, err)
	}
	switch msg.Header.Get(hdrNotKept) {
	case "":
	case notBinary:
		return nil, fmt.Errorf("get content %.12s: %w", sha, ErrBinary)
	case notTooLarge:
		return nil, fmt.Errorf("get content %.12s: %w", sha, ErrTooLarge)
	default:
		return nil, fmt.Errorf("get content %.12s: %w", sha, ErrNotStored)
	}
	data, err := s.decode(msg)
	if err != nil {
		s.warn("stored content cannot be read; it counts as not stored", "sha256", sha, "err", err)
		return nil, fmt.Errorf("get content %.12s: %w", sha, ErrNotStored)
	}
	if sum := sha256.Sum256(data); hex.EncodeToString(sum[:]) != sha {
		s.warn("stored content does not match its sha256; it counts as not stored", "sha256", sha)
		return nil, fmt.Errorf("get content %.12s: %w", sha, ErrNotStored)
	}
	return data, nil
}

// maxDecoded bounds the size a stored content may claim when decoded.
const maxDecoded = 64 << 20

func (s *Store) decode(msg *jetstream.RawStreamMsg) ([]byte, error) {
	switch enc := msg.Header.Get(hdrEncoding); enc {
	case "":
		return msg.Data, nil
	case encS2:
		n, err := s2.DecodedLen(msg.Data)
		if err != nil {
			return nil, err
		}
		if n > max(maxDecoded, int(s.opts.MaxFileSize)) {
			return nil, fmt.Errorf("decoded size %d is over the limit", n)
		}
		return s2.Decode(nil, msg.Data)
	default:
		return nil, fmt.Errorf("unknown encoding %q", enc)
	}
}

// write runs one writer until ctx is done.
func (s *Store) write(ctx context.Context, ch <-chan op) {
	for {
		select {
		case <-ctx.Done():
			return
		case o := <-ch:
			if o.retire {
				s.retire(ctx, o)
			} else {
				s.put(ctx, o)
			}
		}
	}
}

func (s *Store) put(ctx context.Context, o op) {
	if o.notKept == "" && !diff.IsText(o.data) {
		o.notKept, o.data = notBinary, nil
	}
	recentKey := o.subject
	if o.notKept != "" {
		recentKey += "#" + o.notKept
	}
	if s.recent.has(recentKey) {
		s.stats.skipped.Add(1)
		s.finish(o, o.size)
		return
	}
	if s.opts.Room != nil {
		if err := s.opts.Room(); err != nil {
			s.stats.noRoom.Add(1)
			s.warn("content not stored: the store has no room", "err", err)
			s.finish(o, o.size)
			return
		}
	}
	msg := &nats.Msg{Subject: o.subject, Data: o.data}
	if o.notKept == "" {
		if c := s2.Encode(nil, o.data); len(c) < len(o.data) {
			msg.Header = nats.Header{hdrEncoding: []string{encS2}}
			msg.Data = c
		}
		if int64(len(msg.Data)) > s.maxPayload {
			s.stats.tooLarge.Add(1)
			msg.Header, msg.Data, o.notKept = nil, nil, notTooLarge
		}
	}
	if o.notKept != "" {
		msg.Header = nats.Header{hdrNotKept: []string{o.notKept}}
		msg.Data = nil
		if o.notKept == notBinary {
			s.stats.binary.Add(1)
		}
	}
	o.raw, o.data = len(o.data), nil
	s.publish(ctx, o, msg, recentKey)
}

func (s *Store) retire(ctx context.Context, o op) {
	s.recent.remove(o.subject)
	s.recent.remove(o.subject + "#" + notBinary)
	s.recent.remove(o.subject + "#" + notTooLarge)
	gctx, cancel := context.WithTimeout(ctx, apiTimeout)
	old, err := s.get.GetLastMsgForSubject(gctx, o.subject)
	cancel()
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		s.finish(o, o.size)
		return // nothing to retire
	}
	if err != nil {
		s.stats.failed.Add(1)
		s.warn("content not retired", "sha256", o.sha, "err", err)
		s.finish(o, o.size)
		return
	}
	if !s.grow(int64(len(old.Data))) {
		s.stats.dropped.Add(1)
		s.finish(o, o.size)
		return // the content stays current until the size cap drops it
	}
	o.size += int64(len(old.Data))
	msg := &nats.Msg{Subject: old.Subject, Header: nats.Header{}, Data: old.Data}
	for _, h := range []string{hdrEncoding, hdrNotKept} {
		if v := old.Header.Get(h); v != "" {
			msg.Header.Set(h, v)
		}
	}
	// Written again with a TTL, unless something wrote it since it was read.
	s.publish(ctx, o, msg, "", jetstream.WithMsgTTL(s.opts.MaxAge), jetstream.WithExpectLastSequencePerSubject(old.Sequence))
}

func (s *Store) publish(ctx context.Context, o op, msg *nats.Msg, recentKey string, opts ...jetstream.PublishOpt) {
	fut, err := s.pub.PublishMsgAsync(msg, opts...)
	if err != nil {
		s.stats.failed.Add(1)
		s.warn("content not stored", "sha256", o.sha, "err", err)
		s.finish(o, o.size)
		return
	}
	if recentKey != "" {
		s.recent.add(recentKey)
	}
	select {
	case s.acks <- inflight{op: o, stored: len(msg.Data), fut: fut}:
	case <-ctx.Done():
	}
}

// collect counts JetStream's acknowledgements until ctx is done.
func (s *Store) collect(ctx context.Context) {
	for {
		var w inflight
		select {
		case <-ctx.Done():
			return
		case w = <-s.acks:
		}
		select {
		case <-ctx.Done():
			return
		case <-w.fut.Ok():
			switch {
			case w.op.retire:
				s.stats.retired.Add(1)
			case w.op.notKept != "":
			default:
				s.stats.stored.Add(1)
				s.stats.bytesIn.Add(int64(w.op.raw))
				s.stats.bytesStored.Add(int64(w.stored))
			}
		case err := <-w.fut.Err():
			s.failed(w.op, err)
		}
		s.finish(w.op, w.op.size)
	}
}

func (s *Store) failed(o op, err error) {
	if !o.retire {
		s.recent.remove(o.subject)
		s.recent.remove(o.subject + "#" + o.notKept)
	}
	if apiErr, ok := errors.AsType[*jetstream.APIError](err); ok && o.retire &&
		(apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequence || apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequenceConstant) {
		return // written again since it was read: that write wins
	}
	if natsd.NoRoom(err) {
		s.stats.noRoom.Add(1)
		s.warn("content not stored: the store has no room", "err", err)
		return
	}
	s.stats.failed.Add(1)
	s.warn("content not stored", "sha256", o.sha, "err", err)
}

// warn logs a failure, at most once every logEvery.
func (s *Store) warn(msg string, args ...any) {
	now := time.Now().UnixNano()
	last := s.warned.Load()
	if now-last < int64(logEvery) || !s.warned.CompareAndSwap(last, now) {
		return
	}
	s.log.Warn(msg, args...)
}

func validKey(sha string) bool {
	if len(sha) != sha256.Size*2 {
		return false
	}
	for i := range len(sha) {
		if c := sha[i]; (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

// truncate shortens a malformed key for an error message.
func truncate(s string) string {
	if len(s) > 80 {
		return s[:80] + "…"
	}
	return s
}
