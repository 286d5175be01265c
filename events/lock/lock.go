// Package lock gives agents expiring locks (leases) on workspace paths,
// kept in a JetStream key-value bucket so that every hub sharing a NATS
// cluster sees the same locks. It speaks the project's vocabulary:
// requests are [events.LockRequest], leases [events.Lease], refusals
// *[events.LockError].
//
// A lock is exclusive or shared (events.LockExclusive, events.LockShared):
// shared locks coexist with each other, an exclusive one with nothing. A
// shared lock is a read lock: while one is held, Check and Verify refuse
// every write, its holders' included; an exclusive lock lets only its
// holder write. The path need not exist. Every lease has a
// secret token (only its sha256 is stored), a TTL after which it is gone
// even if its holder crashed, and a fencing token: the revision of the
// bucket entry that created it. Bucket revisions are stream sequences,
// which only grow, so every fencing token is larger than every one handed
// out before it for that path, across restarts and across hubs. Refreshing
// a lease keeps its fencing token.
//
// Acquire is an atomic create, or a compare-and-set when joining a shared
// lock or replacing an expired holder; refresh and release are
// compare-and-set on the revision. The key's server-side TTL is the latest
// expiry of its holders; when it runs out the server writes a delete
// marker, which [Manager.Run] sees and reports as lock.expired.
//
// Every lock change is also an event, appended to the [Appender] that
// [Manager.Run] is given (the hub). The Manager is opened without one, so
// that the hub can be built with the Manager it needs; the events of
// changes made before Run starts are held and appended when it does.
//
// A sketch:
//
//	m, err := lock.Open(ctx, srv.Conn(), lock.Options{Logger: log})
//	if err != nil { ... }
//	defer m.Close()
//	h, err := hub.New(hub.Options{Workspaces: wss, Log: j, Locks: m})
//	go m.Run(ctx, h) // appends lock events to h; keeps the mirror behind Holders and Check
//	l, err := m.Acquire(ctx, events.LockRequest{Workspace: "docs", Path: "a.md", Holder: "claude#3f2a", TTL: time.Minute})
//	if c, ok := errors.AsType[*events.LockError](err); ok { fmt.Println("held by", c.Holder, "until", c.ExpiresAt) }
//	_, err = m.Check("docs", "a.md", l.Token, l.FencingToken) // before a write
//	err = m.Release(ctx, "docs", "a.md", l.Token)
package lock

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/filecast/filecast/events"
	"github.com/filecast/filecast/events/natsd"
	"github.com/filecast/filecast/events/workspace"
)

// Limits and defaults of an events.LockRequest.
const (
	DefaultTTL = 60 * time.Second
	MinTTL     = time.Second
	MaxTTL     = 24 * time.Hour
	MaxWait    = 5 * time.Minute
	// MaxHolderLen bounds a holder name in bytes.
	MaxHolderLen = 256
)

// DefaultBucket is the name of the key-value bucket of Options.Bucket.
const DefaultBucket = "FILECAST_LOCKS"

const (
	tokenPrefix = "lk_"
	// markerTTL is how long delete markers stay in the bucket.
	markerTTL  = time.Minute
	apiTimeout = 10 * time.Second
	// casRetries bounds compare-and-set retries under contention.
	casRetries = 32
)

// Options configures a Manager; zero fields take the defaults.
type Options struct {
	Bucket string // key-value bucket; default DefaultBucket
	// Expiring is how long before a lease runs out lock.expiring is
	// emitted; default ExpiringLead(TTL).
	Expiring time.Duration
	Replicas int          // bucket replicas on a cluster; default 1
	Logger   *slog.Logger // nil discards logs
}

// Appender stores lock events; the hub satisfies it and assigns Seq.
// Append must be safe for concurrent use. Events that several hubs may each
// observe (lock.expired, lock.expiring) carry the same ID in every hub.
// Run is given one.
type Appender interface {
	Append(ctx context.Context, ev events.Event) (events.Event, error)
}

// Manager takes, refreshes and releases locks, and reports their changes
// as events. Its methods are safe for concurrent use. It does not own the
// connection. Holders and Check read an in-memory mirror of the bucket that
// Run keeps; without Run they see only this Manager's own changes, and
// the events of its changes are held (up to maxHeld) until Run starts, as
// they are while Run's Appender has no room for them.
type Manager struct {
	js     jetstream.JetStream
	kv     jetstream.KeyValue
	nc     *nats.Conn
	opts   Options
	log    *slog.Logger
	bucket string
	subj   string // subject prefix of the bucket's keys

	closing context.Context
	cancel  context.CancelFunc
	running atomic.Bool
	ready   chan struct{}
	kick    chan struct{}

	mu      sync.Mutex
	mirror  map[string]*entry    // by key
	emitted map[string]time.Time // deterministic event IDs already appended, and when

	out outbox // where lock events go: Run's Appender, or held until it can take them
}

// Open creates or updates the bucket on nc, which must reach a
// JetStream-enabled server (2.11 or later, for per-key TTLs), and returns a
// Manager. The Manager appends its events to the Appender given to Run.
func Open(ctx context.Context, nc *nats.Conn, opts Options) (*Manager, error) {
	if opts.Bucket == "" {
		opts.Bucket = DefaultBucket
	}
	if opts.Replicas <= 0 {
		opts.Replicas = 1
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	js, err := jetstream.New(nc)
	if err != nil {
		return nil, fmt.Errorf("open locks: %w", err)
	}
	ctx, cancel := withTimeout(ctx)
	defer cancel()
	kv, kept, err := natsd.CreateOrUpdateKeyValue(ctx, js, jetstream.KeyValueConfig{
		Bucket:         opts.Bucket,
		Description:    "filecast locks",
		History:        1,
		Storage:        jetstream.FileStorage,
		Replicas:       opts.Replicas,
		LimitMarkerTTL: markerTTL,
	})
	if err != nil {
		return nil, fmt.Errorf("open locks: bucket %s: %w", opts.Bucket, err)
	}
	if kept {
		opts.Logger.Warn("the store has no room to update the lock bucket's settings; it is used as it is", "bucket", opts.Bucket)
	}
	return newManager(js, kv, nc, opts), nil
}

// newManager returns a Manager of the bucket kv; opts has its defaults.
func newManager(js jetstream.JetStream, kv jetstream.KeyValue, nc *nats.Conn, opts Options) *Manager {
	closing, stop := context.WithCancel(context.Background())
	return &Manager{
		js:      js,
		kv:      kv,
		nc:      nc,
		opts:    opts,
		log:     opts.Logger.With("component", "lock"),
		bucket:  opts.Bucket,
		subj:    "$KV." + opts.Bucket + ".",
		closing: closing,
		cancel:  stop,
		ready:   make(chan struct{}),
		kick:    make(chan struct{}, 1),
		mirror:  map[string]*entry{},
		emitted: map[string]time.Time{},
	}
}

// Close makes Run return and waiting Acquire calls fail with
// events.ErrClosed; later calls fail the same way. Locks stay in the bucket
// until released or expired. Close does not close the connection and is
// safe to call more than once.
func (m *Manager) Close() error {
	m.cancel()
	return nil
}

func (m *Manager) closed() bool { return m.closing.Err() != nil }

// Ready is closed once Run has loaded the bucket into the mirror.
func (m *Manager) Ready() <-chan struct{} { return m.ready }

// target validates a workspace and path and returns the clean path and key.
func target(ws, path string) (clean, key string, err error) {
	if err := events.ValidWorkspaceName(ws); err != nil {
		return "", "", err
	}
	clean, err = workspace.Clean(path)
	if err != nil {
		return "", "", err
	}
	return clean, keyFor(ws, clean), nil
}

func checkHolder(h string) error {
	switch {
	case h == "":
		return badRequest("holder is empty; name who takes the lock")
	case len(h) > MaxHolderLen:
		return badRequest("holder is longer than %d bytes", MaxHolderLen)
	case !utf8.ValidString(h):
		return badRequest("holder is not valid UTF-8")
	}
	for _, r := range h {
		if r < 0x20 || r == 0x7f {
			return badRequest("holder contains control characters")
		}
	}
	return nil
}

// normTTL applies the default and limits and rounds up to whole seconds.
func normTTL(ttl time.Duration) (time.Duration, error) {
	if ttl == 0 {
		return DefaultTTL, nil
	}
	if ttl < MinTTL || ttl > MaxTTL {
		return 0, badRequest("ttl %v is out of range: use %v to %v", ttl, MinTTL, MaxTTL)
	}
	return ((ttl + time.Second - 1) / time.Second) * time.Second, nil
}

// expiringLead is how long before the end of a lease of the given TTL
// lock.expiring is emitted.
func (m *Manager) expiringLead(ttl time.Duration) time.Duration {
	if m.opts.Expiring > 0 {
		return m.opts.Expiring
	}
	return ExpiringLead(ttl)
}

// MaxExpiringLead is how long before a lease runs out lock.expiring comes
// at the latest, when the lease is long enough.
const MaxExpiringLead = 30 * time.Second

// ExpiringLead returns how long before the end of a lease of the given TTL
// lock.expiring is emitted: when half the TTL is left, or MaxExpiringLead
// before the end if that is earlier, so that an agent has time to refresh
// (a 60 s lock is warned about with 30 s left, a 10 min lock with 5 min
// left). A lease of MaxExpiringLead or less is warned about at once.
func ExpiringLead(ttl time.Duration) time.Duration {
	return min(ttl, max(ttl/2, MaxExpiringLead))
}

// read returns the record under key and its revision; rec is nil when the
// key holds no lock.
func (m *Manager) read(ctx context.Context, key string) (rec *record, rev uint64, err error) {
	ctx, cancel := withTimeout(ctx)
	defer cancel()
	e, err := m.kv.Get(ctx, key)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return nil, 0, nil
	}
	if err != nil {
		return nil, 0, err
	}
	rec, err = decodeRecord(e.Value(), e.Revision())
	if err != nil {
		return nil, 0, err
	}
	return rec, e.Revision(), nil
}

// errCAS means a compare-and-set lost a race; the caller reads again.
var errCAS = errors.New("lock: revision changed")

// write stores rec under key: a create when rev is 0 (the key holds no
// lock), else a compare-and-set on rev. The key's TTL covers its latest
// holder. It returns the new revision; errCAS when the key changed.
func (m *Manager) write(ctx context.Context, key string, rec *record, rev uint64, now time.Time) (uint64, error) {
	ttl := keyTTL(latest(rec.Holders), now)
	rec.KeyExpires = now.Add(ttl)
	data, err := json.Marshal(rec)
	if err != nil {
		return 0, err
	}
	ctx, cancel := withTimeout(ctx)
	defer cancel()
	var newRev uint64
	if rev == 0 {
		newRev, err = m.kv.Create(ctx, key, data, jetstream.KeyTTL(ttl))
	} else {
		newRev, err = m.publish(ctx, key, data, nil, rev, ttl)
	}
	if isCASError(err) {
		return 0, errCAS
	}
	return newRev, err
}

// remove writes a delete marker on key if it is still at rev. The marker
// itself goes after markerTTL.
func (m *Manager) remove(ctx context.Context, key string, rev uint64) (uint64, error) {
	ctx, cancel := withTimeout(ctx)
	defer cancel()
	newRev, err := m.publish(ctx, key, nil, nats.Header{"KV-Operation": []string{"DEL"}}, rev, markerTTL)
	if isCASError(err) {
		return 0, errCAS
	}
	return newRev, err
}

// publish writes to the key's subject with the headers of a KV
// compare-and-set and a per-message TTL, which KeyValue.Update cannot set.
func (m *Manager) publish(ctx context.Context, key string, data []byte, hdr nats.Header, rev uint64, ttl time.Duration) (uint64, error) {
	if hdr == nil {
		hdr = nats.Header{}
	}
	hdr.Set(jetstream.ExpectedLastSubjSeqHeader, strconv.FormatUint(rev, 10))
	hdr.Set(jetstream.MsgTTLHeader, ttl.String())
	ack, err := m.js.PublishMsg(ctx, &nats.Msg{Subject: m.subj + key, Header: hdr, Data: data})
	if err != nil {
		return 0, err
	}
	return ack.Sequence, nil
}

func isCASError(err error) bool {
	if err == nil {
		return false
	}
	if errors.Is(err, jetstream.ErrKeyExists) || errors.Is(err, jetstream.ErrKeyRevisionMismatch) {
		return true
	}
	var apiErr *jetstream.APIError
	return errors.As(err, &apiErr) && (apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequence ||
		apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequenceConstant)
}

// withTimeout bounds a server request when ctx has no deadline.
func withTimeout(ctx context.Context) (context.Context, context.CancelFunc) {
	if _, ok := ctx.Deadline(); ok {
		return context.WithCancel(ctx)
	}
	return context.WithTimeout(ctx, apiTimeout)
}
