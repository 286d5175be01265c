// Package leader elects one leader per key among processes sharing a NATS
// JetStream cluster, through a key-value bucket with per-key TTLs. filecast
// uses it to decide which hub watches a workspace's folder, so that events
// are not doubled when several hubs can see the same folder, and so that
// another hub takes the watch over when the watching one dies.
//
// A candidate campaigns by creating the key (an atomic create: only one
// succeeds). The winner's value carries a TTL and is renewed every third
// of it by a compare-and-set on the revision it last wrote; a candidate
// that loses watches the key and tries again the moment it is deleted or
// expires (and, should the watch miss it, every half TTL).
//
// # The bound
//
// A leader runs its lead function with a context that is cancelled when
// leadership is lost: when a renewal finds the key changed, when
// renewals fail (for example while the bucket is unreachable) until the
// lease runs out locally, or when the caller's context is done. The local
// lease ends at sent + TTL − TTL/4, where sent is when the leader sent its
// last acknowledged create or renewal; the server stamps the entry at or
// after sent and removes it no earlier than stamp + TTL, and no one else
// can create the key before that. So two lead functions never run at the
// same instant provided that
//
//   - a lead function returns within TTL/4 of its context being cancelled
//     (Run waits for it, but cannot force it), and
//   - the hub's clock and the NATS servers' clocks advance at the same rate,
//     and the servers' wall clocks agree with one another, to well within
//     TTL/4 (a server whose clock jumps forward expires keys early).
//
// A dead leader is replaced within about TTL after its last renewal, and a
// leader that stops cleanly (its Run context done) hands over at once: it
// deletes the key, if it is still its own, by compare-and-set.
//
// A sketch:
//
//	e, err := leader.New(ctx, js, leader.Options{TTL: 5 * time.Second, Replicas: srv.Replicas(), Logger: log})
//	if err != nil { ... }
//	err = e.Run(ctx, leader.Key(workspace), hubID, func(ctx context.Context) error {
//		return watcher.Run(ctx) // until ctx is cancelled: leadership lost or ctx done
//	})
//
// RunTerms keeps a candidate standing through terms that fail (each term
// a fresh watcher). [Members] is the other half of sharing work among
// hubs: where an election gives one key to one hub, Members spreads many
// items (webhooks) over every live hub, by rendezvous hashing:
//
//	m, err := leader.OpenMembers(ctx, js, "", hubID, replicas)
//	go m.Run(ctx) // keeps this hub's key alive; lists the others
//	if m.Mine(webhookID) { deliver(...) }
package leader

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/sourcegraph/conc"

	"github.com/filecast/filecast/events/internal/wait"
)

// Sentinel errors of the package; match them with errors.Is.
var (
	ErrNoLeader   = errors.New("leader: no leader")
	ErrBadOptions = errors.New("leader: invalid options")
	ErrBadKey     = errors.New("leader: invalid key")
	ErrLost       = errors.New("leader: leadership lost")
)

const (
	// DefaultBucket is the key-value bucket used when Options.Bucket is empty.
	DefaultBucket = "filecast_leaders"
	// DefaultTTL is the lease length used when Options.TTL is zero.
	DefaultTTL = 5 * time.Second
	// MinTTL is the shortest lease: the server counts TTLs in whole seconds.
	MinTTL = time.Second

	markerTTL   = time.Minute // how long delete and expiry markers stay
	openTimeout = 10 * time.Second
)

// errPanicked stands for lead's result when it panicked.
var errPanicked = errors.New("leader: lead function panicked")

// Options configures New. The zero value is usable.
type Options struct {
	// Bucket is the key-value bucket holding the leases; default
	// DefaultBucket. It is created if missing, or updated.
	Bucket string
	// TTL is the lease length: default DefaultTTL, at least MinTTL, rounded
	// up to whole seconds. A dead leader is replaced after about TTL; a
	// shorter TTL renews more often and steps down sooner when the bucket
	// is briefly unreachable. On a cluster, a leader rides out the loss of
	// a NATS node only if the bucket's stream elects its new leader within
	// about TTL/2 (typically 1–5 s); otherwise it steps down and the
	// election starts again once the stream answers.
	TTL time.Duration
	// Replicas is the bucket's replica count on a cluster; default 1.
	Replicas int
	// Logger receives leadership changes (info) and failures (warn); nil
	// discards them.
	Logger *slog.Logger
}

// Elector runs elections in one bucket. It is safe for concurrent use;
// any number of Run calls, for the same key or different ones, may run at
// once, each one a separate candidate.
type Elector struct {
	js     jetstream.JetStream
	kv     jetstream.KeyValue
	subj   string // subject prefix of the bucket's keys
	ttl    time.Duration
	renew  time.Duration // renewal period
	margin time.Duration // local lease = sent + ttl - margin
	retry  time.Duration // pause after a failed request
	poll   time.Duration // follower's fallback poll period
	log    *slog.Logger
}

// New creates or updates the bucket through js, which must reach a
// JetStream-enabled server of version 2.11 or later (for per-key TTLs),
// and returns an Elector. It blocks for at most about 10 s when ctx has no
// deadline.
func New(ctx context.Context, js jetstream.JetStream, opts Options) (*Elector, error) {
	if opts.Bucket == "" {
		opts.Bucket = DefaultBucket
	}
	switch {
	case opts.TTL == 0:
		opts.TTL = DefaultTTL
	case opts.TTL < MinTTL:
		return nil, fmt.Errorf("open elector: %w: ttl %v is below %v", ErrBadOptions, opts.TTL, MinTTL)
	}
	opts.TTL = (opts.TTL + time.Second - 1).Truncate(time.Second)
	if opts.Replicas < 0 {
		return nil, fmt.Errorf("open elector: %w: replicas %d is negative", ErrBadOptions, opts.Replicas)
	}
	opts.Replicas = max(opts.Replicas, 1)
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, openTimeout)
		defer cancel()
	}
	kv, err := js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket:         opts.Bucket,
		Description:    "filecast leader leases",
		History:        1,
		Storage:        jetstream.FileStorage,
		Replicas:       opts.Replicas,
		LimitMarkerTTL: markerTTL,
	})
	if err != nil {
		return nil, fmt.Errorf("open elector: bucket %s: %w", opts.Bucket, err)
	}
	return &Elector{
		js:     js,
		kv:     kv,
		subj:   "$KV." + opts.Bucket + ".",
		ttl:    opts.TTL,
		renew:  opts.TTL / 3,
		margin: opts.TTL / 4,
		retry:  max(opts.TTL/10, 50*time.Millisecond),
		poll:   opts.TTL / 2,
		log:    opts.Logger.With("component", "leader", "bucket", opts.Bucket),
	}, nil
}

// TTL returns the lease length in use.
func (e *Elector) TTL() time.Duration { return e.ttl }

// record is a key's value: the leader's id and a nonce that tells one
// candidate's entries from another's with the same id.
type record struct {
	ID   string `json:"id"`
	Term string `json:"term"`
}

// Leader returns the id of key's current leader, or ErrNoLeader when no
// lease is held. The answer may be stale by the time it is used.
func (e *Elector) Leader(ctx context.Context, key string) (string, error) {
	if err := checkKey(key); err != nil {
		return "", fmt.Errorf("get leader: %w", err)
	}
	entry, err := e.kv.Get(ctx, key)
	if errors.Is(err, jetstream.ErrKeyNotFound) || errors.Is(err, jetstream.ErrKeyDeleted) {
		return "", fmt.Errorf("get leader of %s: %w", key, ErrNoLeader)
	}
	if err != nil {
		return "", fmt.Errorf("get leader of %s: %w", key, err)
	}
	var rec record
	if err := json.Unmarshal(entry.Value(), &rec); err != nil {
		return "", fmt.Errorf("get leader of %s: decode: %w", key, err)
	}
	return rec.ID, nil
}

// Run campaigns for key as id until ctx is done. Each time it wins, it
// calls lead with a context that is cancelled the moment leadership is
// lost or ctx is done, waits for lead to return, and campaigns again
// (immediately, so it may win again). If lead returns by itself, Run gives
// the key up first; a non-nil error from it then ends Run, which returns
// it. When ctx is done Run waits for lead, deletes the key if it still
// holds it, so that a successor takes over at once, and returns nil.
//
// Run blocks; it owns the goroutines it starts, and they have stopped when
// it returns. lead runs on its own goroutine and must return promptly once
// its context is cancelled: see the package documentation for the bound.
// If lead panics, Run releases the key and panics with the same value.
// The cause of that context (context.Cause) is ErrLost when leadership was
// lost. key must be a valid key-value key (see Key); id names the
// candidate in Leader's answers.
func (e *Elector) Run(ctx context.Context, key, id string, lead func(ctx context.Context) error) error {
	if err := checkKey(key); err != nil {
		return fmt.Errorf("run election: %w", err)
	}
	if id == "" || lead == nil {
		return fmt.Errorf("run election: %w: empty id or nil lead function", ErrBadOptions)
	}
	val, err := json.Marshal(record{ID: id, Term: nonce()})
	if err != nil {
		return fmt.Errorf("run election: %w", err)
	}
	c := &candidate{
		e:    e,
		key:  key,
		val:  val,
		log:  e.log.With("key", key, "id", id),
		kick: make(chan struct{}, 1),
	}
	ctx, cancel := context.WithCancel(ctx)
	wg := conc.NewWaitGroup()
	defer func() {
		cancel()
		wg.Wait()
	}()
	wg.Go(func() { c.watch(ctx) })
	for {
		l, ok := c.campaign(ctx)
		if !ok {
			if c.unsure { // a create may have gone through unanswered
				c.release(ctx, 0)
			}
			return nil
		}
		if err := c.hold(ctx, l, lead); err != nil {
			return fmt.Errorf("run election: lead %s: %w", key, err)
		}
		if ctx.Err() != nil {
			return nil
		}
	}
}

// candidate is one Run's state.
type candidate struct {
	e    *Elector
	key  string
	val  []byte // our value, unique to this Run
	log  *slog.Logger
	kick chan struct{} // the key was deleted, expired or overwritten
	// unsure is set while the key may hold our value although we do not
	// lead: the last create got no answer, or a lease could not be adopted.
	unsure bool
}

// lease is a held key: the revision we last wrote, and when our lease ends
// by the local clock.
type lease struct {
	rev   uint64
	until time.Time
}

// watch signals kick whenever the key is deleted, expires or gets a value
// other than ours, until ctx is done. Should the watch fail, the
// campaign's polling and the lease's renewals still notice.
func (c *candidate) watch(ctx context.Context) {
	for ctx.Err() == nil {
		w, err := c.e.kv.Watch(ctx, c.key, jetstream.UpdatesOnly())
		if err != nil {
			c.log.Debug("watch key", "err", err)
			if !wait.Sleep(ctx, c.e.poll) {
				return
			}
			continue
		}
		c.forward(ctx, w)
		_ = w.Stop()
		if !wait.Sleep(ctx, c.e.retry) {
			return
		}
	}
}

// forward signals kick for w's updates until ctx is done or w ends.
func (c *candidate) forward(ctx context.Context, w jetstream.KeyWatcher) {
	for {
		select {
		case <-ctx.Done():
			return
		case entry, ok := <-w.Updates():
			if !ok {
				return
			}
			if entry == nil || entry.Operation() == jetstream.KeyValuePut && string(entry.Value()) == string(c.val) {
				continue
			}
			select {
			case c.kick <- struct{}{}:
			default:
			}
		}
	}
}

// campaign tries to create the key until it succeeds or ctx is done.
func (c *candidate) campaign(ctx context.Context) (lease, bool) {
	for ctx.Err() == nil {
		// The create is not cut short by ctx: a request cancelled in
		// flight could still take the key after a release found it free.
		sent := time.Now()
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), c.e.ttl)
		rev, err := c.e.kv.Create(rctx, c.key, c.val, jetstream.KeyTTL(c.e.ttl))
		cancel()
		c.unsure = err != nil && !errors.Is(err, jetstream.ErrKeyExists)
		if err == nil && ctx.Err() != nil {
			c.release(ctx, rev)
			break
		}
		if err == nil {
			c.log.Info("leadership won", "revision", rev)
			return lease{rev: rev, until: sent.Add(c.e.ttl - c.e.margin)}, true
		}
		wait := c.e.poll
		if errors.Is(err, jetstream.ErrKeyExists) {
			// Held; perhaps by this Run, from an earlier create or renewal
			// whose answer was lost, or a lease that ran out locally only.
			if l, ok := c.adopt(ctx); ok {
				return l, true
			}
		} else if ctx.Err() == nil {
			c.log.Debug("campaign", "err", err)
			wait = c.e.retry
		}
		select {
		case <-ctx.Done():
		case <-c.kick:
		case <-time.After(wait):
		}
	}
	return lease{}, false
}

// adopt renews the key if it holds our value.
func (c *candidate) adopt(ctx context.Context) (lease, bool) {
	rctx, cancel := context.WithTimeout(ctx, c.e.ttl)
	defer cancel()
	entry, err := c.e.kv.Get(rctx, c.key)
	if err != nil || string(entry.Value()) != string(c.val) {
		return lease{}, false
	}
	l, err := c.refresh(rctx, entry.Revision())
	if err != nil {
		c.unsure = true // the key holds our value: release it on the way out
		return lease{}, false
	}
	c.log.Info("leadership resumed", "revision", l.rev)
	return l, true
}

// refresh rewrites our value at rev by compare-and-set, with a new TTL.
func (c *candidate) refresh(ctx context.Context, rev uint64) (lease, error) {
	sent := time.Now()
	ack, err := c.e.js.PublishMsg(ctx, &nats.Msg{Subject: c.e.subj + c.key, Data: c.val},
		jetstream.WithExpectLastSequencePerSubject(rev), jetstream.WithMsgTTL(c.e.ttl))
	if err != nil {
		return lease{}, err
	}
	return lease{rev: ack.Sequence, until: sent.Add(c.e.ttl - c.e.margin)}, nil
}

// hold runs lead while the lease lasts, renewing it. It returns when lead
// has returned: nil when leadership was lost or ctx is done (the key is
// then released if still ours), lead's error if it returned by itself.
func (c *candidate) hold(ctx context.Context, l lease, lead func(context.Context) error) error {
	if !time.Now().Before(l.until) {
		return nil // won too slowly to lead: campaign again
	}
	leadCtx, stop := context.WithCancelCause(ctx)
	defer stop(nil)
	expiry := time.AfterFunc(time.Until(l.until), func() { stop(ErrLost) })
	defer expiry.Stop()

	done := make(chan error, 1)
	wg := conc.NewWaitGroup()
	defer wg.Wait() // re-panics if lead panicked, once the key is released
	wg.Go(func() {
		err := errPanicked
		defer func() { done <- err }()
		err = lead(leadCtx)
	})

	renew := time.NewTimer(c.e.renew)
	defer renew.Stop()
	for {
		select {
		case err := <-done:
			if leadCtx.Err() == nil { // returned by itself
				stop(nil)
				c.release(ctx, l.rev)
				return err
			}
			return c.stepDown(ctx, leadCtx, l, err)
		case <-leadCtx.Done():
			return c.stepDown(ctx, leadCtx, l, <-done)
		case <-c.kick:
			c.check(leadCtx, l, stop)
		case <-renew.C:
			next, err := c.renewOnce(leadCtx, l)
			switch {
			case errors.Is(err, ErrLost):
				stop(ErrLost)
			case err != nil:
				c.log.Debug("renew lease", "err", err)
				renew.Reset(c.e.retry)
			default:
				l = next
				if !expiry.Reset(time.Until(l.until)) {
					stop(ErrLost) // the lease had already run out
				}
				renew.Reset(c.e.renew)
			}
		}
	}
}

// stepDown finishes a term whose lead context is done and whose lead
// function has returned err.
func (c *candidate) stepDown(ctx, leadCtx context.Context, l lease, err error) error {
	if ctx.Err() != nil {
		c.release(ctx, l.rev)
		return nil
	}
	c.log.Warn("leadership lost", "cause", context.Cause(leadCtx), "lead_err", err)
	return nil
}

// renewOnce renews the lease, bounded by its end. It returns ErrLost
// when the key is no longer ours.
func (c *candidate) renewOnce(leadCtx context.Context, l lease) (lease, error) {
	rctx, cancel := context.WithDeadline(leadCtx, l.until)
	defer cancel()
	next, err := c.refresh(rctx, l.rev)
	if !isCASError(err) {
		return next, err
	}
	// The key changed: ours still if an earlier renewal went through
	// unanswered; then renew that revision.
	entry, gerr := c.e.kv.Get(rctx, c.key)
	switch {
	case errors.Is(gerr, jetstream.ErrKeyNotFound), errors.Is(gerr, jetstream.ErrKeyDeleted):
		return lease{}, ErrLost
	case gerr != nil:
		return lease{}, gerr
	case string(entry.Value()) != string(c.val):
		return lease{}, ErrLost
	}
	return c.refresh(rctx, entry.Revision())
}

// check reacts to a change of the key seen by the watch while leading: a
// deleted key, or one holding another value, means leadership is lost.
func (c *candidate) check(leadCtx context.Context, l lease, stop context.CancelCauseFunc) {
	rctx, cancel := context.WithDeadline(leadCtx, l.until)
	defer cancel()
	entry, err := c.e.kv.Get(rctx, c.key)
	switch {
	case errors.Is(err, jetstream.ErrKeyNotFound), errors.Is(err, jetstream.ErrKeyDeleted):
		stop(ErrLost)
	case err == nil && string(entry.Value()) != string(c.val):
		stop(ErrLost)
	}
}

// release deletes the key if it is still at rev, so that a successor can
// take over without waiting for the TTL; with rev 0, or if the key has
// moved on from rev, it deletes the key if it holds our value. Failures
// only delay the successor.
func (c *candidate) release(ctx context.Context, rev uint64) {
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), min(c.e.ttl, 5*time.Second))
	defer cancel()
	var err error = jetstream.ErrKeyRevisionMismatch
	if rev != 0 {
		err = c.e.kv.Purge(rctx, c.key, jetstream.LastRevision(rev), jetstream.PurgeTTL(markerTTL))
	}
	if isCASError(err) {
		// A write may have gone through unanswered: release that one.
		entry, gerr := c.e.kv.Get(rctx, c.key)
		switch {
		case gerr == nil && string(entry.Value()) == string(c.val):
			err = c.e.kv.Purge(rctx, c.key, jetstream.LastRevision(entry.Revision()), jetstream.PurgeTTL(markerTTL))
		case gerr == nil, errors.Is(gerr, jetstream.ErrKeyNotFound), errors.Is(gerr, jetstream.ErrKeyDeleted):
			return // not ours
		default:
			err = gerr
		}
	}
	if err != nil && !isCASError(err) {
		c.log.Warn("release leadership", "err", err)
		return
	}
	c.log.Info("leadership released")
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

var validKey = regexp.MustCompile(`^[-/_=.a-zA-Z0-9]+$`)

func checkKey(key string) error {
	if !validKey.MatchString(key) || key[0] == '.' || key[len(key)-1] == '.' || strings.Contains(key, "..") {
		return fmt.Errorf("%w: %q", ErrBadKey, key)
	}
	return nil
}

// Key turns any non-empty name, such as a workspace name, into a valid
// key, one-to-one: letters, digits and '-' stay, every other byte becomes
// '_' and two hex digits.
func Key(name string) string {
	const hexDigits = "0123456789abcdef"
	var b strings.Builder
	for i := 0; i < len(name); i++ {
		ch := name[i]
		if ch >= 'a' && ch <= 'z' || ch >= 'A' && ch <= 'Z' || ch >= '0' && ch <= '9' || ch == '-' {
			b.WriteByte(ch)
			continue
		}
		b.WriteByte('_')
		b.WriteByte(hexDigits[ch>>4])
		b.WriteByte(hexDigits[ch&0xf])
	}
	return b.String()
}

func nonce() string {
	var b [12]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
