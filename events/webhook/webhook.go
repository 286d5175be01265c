// Package webhook delivers filecast events to backend services as signed
// HTTP POSTs (Standard Webhooks), durably, in order, with retries.
//
// A webhook is registered for one workspace with optional path globs,
// extensions and event types. filecast first confirms the endpoint with a
// signed challenge ({"type":"webhook.verification","challenge":"…"}, to be
// echoed as the body or as {"challenge":"…"}); the webhook is "pending"
// until then, "active" after, "failed" if the endpoint did not confirm and
// "disabled" once every delivery has failed for Options.DisableAfter. Events
// appended while a webhook is pending are delivered once it is active.
//
// Durability: registrations (secrets included, so the NATS store under the
// data folder must stay private) live in the JetStream key-value bucket
// FILECAST_WEBHOOKS. Each webhook reads its workspace's journal stream
// through its own durable pull consumer, which starts right after the
// journal's head at registration, so a restart resumes exactly where
// delivery stopped.
//
// Order: a webhook has one event in flight at a time and receives events
// in log order, so the events of one path always arrive in order (and so
// do all others); a failing event holds back the later ones until it is
// delivered or has exhausted the schedule. To avoid a server round trip
// per event, the consumer hands up to 128 events ahead (MaxAckPending) to
// one client at a time (a pinned priority group, so with several hubs on
// one NATS cluster one of them delivers a webhook's events; another takes
// over when it stops, or PinnedTTL after it died); the dispatcher posts
// them one by one in stream order and acknowledges each after its 2xx
// without waiting. A failed event stays first: the dispatcher retries it
// itself after the schedule's next delay (±20 % jitter) while the events
// behind it wait, their ack wait extended. Its tries are stored in the
// bucket FILECAST_WEBHOOK_RETRIES on every failure, so that they continue
// after a restart; the server never drops an event on its own (MaxDeliver
// is unlimited, the schedule's length caps the tries). Events that an
// earlier run or another hub left unacknowledged come back first: a
// dispatcher that sees them pending posts nothing until it holds them all.
// Events given back when a dispatcher stops are redelivered at once, in
// order, also after a NATS restart. With a NATS server older than 2.11
// (no priority groups) the consumer falls back to one event in flight.
//
// Every attempt is recorded in the stream FILECAST_WEBHOOK_ATTEMPTS (the
// last Options.History per webhook, published without waiting);
// deliveries that exhausted the schedule are kept in the bucket
// FILECAST_WEBHOOK_FAILED until replayed, and a replay goes through the
// work-queue stream FILECAST_WEBHOOK_REPLAYS with a second durable
// consumer, so it survives restarts and is retried like any delivery.
// Each schedule entry is the delay before the next try, counted from the
// end of the previous one; an attempt interrupted by Close counts as a
// try. Delivery is at least once: a receiver dedups by webhook-id (the
// event_id).
//
// Safety: only http and https URLs without credentials are accepted, and,
// unless AllowPrivate is set, none that is or resolves to a loopback,
// private, link-local, unique-local, CGNAT, multicast, unspecified,
// reserved or cloud metadata address. The address is checked again when
// each connection is dialled (net.Dialer.Control), which defeats DNS
// rebinding; redirects are not followed (a 3xx is a failure).
//
// A sketch:
//
//	d, err := webhook.Open(ctx, srv.Conn(), webhook.Options{Workspaces: []string{"docs"}, Logger: log})
//	if err != nil { ... }
//	defer d.Close()
//	d.Routes(mux)   // POST/GET /v1/webhooks, …
//	err = d.Run(ctx) // blocks: verifies, delivers, retries, disables
//
// A receiver checks a delivery with any Standard Webhooks library, or with
// [Verify]:
//
//	body, _ := io.ReadAll(r.Body)
//	if err := webhook.Verify([]string{secret}, r.Header, body, 0); err != nil { ... }
package webhook

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/filecast/filecast/events"
	"github.com/filecast/filecast/events/natsd"
)

// Defaults of Options.
const (
	DefaultDisableAfter = 5 * 24 * time.Hour
	DefaultTimeout      = 10 * time.Second
	DefaultHistory      = 1000
	// DefaultOverlap is how long a rotated-out secret keeps signing.
	DefaultOverlap = 24 * time.Hour
)

// Names of the JetStream buckets and streams the package keeps.
const (
	BucketWebhooks = "FILECAST_WEBHOOKS"
	BucketFailed   = "FILECAST_WEBHOOK_FAILED"
	BucketRetries  = "FILECAST_WEBHOOK_RETRIES"
	StreamAttempts = "FILECAST_WEBHOOK_ATTEMPTS"
	StreamReplays  = "FILECAST_WEBHOOK_REPLAYS"
)

const (
	attemptsSubject = "filecast.wha."
	replaysSubject  = "filecast.whr."
	apiTimeout      = 10 * time.Second
	// failedMaxAge bounds how long a failed delivery waits for a replay.
	failedMaxAge = 30 * 24 * time.Hour
	// attemptsMaxAge bounds how long attempts are listed.
	attemptsMaxAge = 30 * 24 * time.Hour
)

// ackMargin is added to Timeout for the consumer's AckWait: the time a
// crashed dispatcher's attempt holds its event before another one takes it
// over. It is a variable so that tests can shorten it; a Dispatcher reads
// it once, in Open.
var ackMargin = 10 * time.Second

// Status is the state of a webhook.
type Status string

// The webhook states.
const (
	StatusPending  Status = "pending"  // registered, the endpoint not yet confirmed
	StatusActive   Status = "active"   // confirmed; events are delivered
	StatusFailed   Status = "failed"   // the endpoint did not confirm; see Reason
	StatusDisabled Status = "disabled" // every delivery failed for DisableAfter; see Reason
)

// Options configures a Dispatcher; zero fields take the defaults.
type Options struct {
	// Schedule is the retry schedule after the first try; default
	// DefaultSchedule(). Its length caps the tries at len(Schedule)+1.
	Schedule []time.Duration
	// DisableAfter disables a webhook whose every delivery has failed for
	// this long; default DefaultDisableAfter.
	DisableAfter time.Duration
	// AllowPrivate lets webhooks call loopback, private and other
	// non-public addresses (for tests and closed networks).
	AllowPrivate bool
	// Timeout bounds one attempt, connect to response; default
	// DefaultTimeout.
	Timeout time.Duration
	// Workspaces are the known workspaces; a registration for another is
	// refused. Empty accepts any valid workspace name.
	Workspaces []string
	// Logger receives the package's logs; nil discards them.
	Logger *slog.Logger
	// HTTPClient, if set, is the base of the client deliveries use. Its
	// Transport must be nil or an *http.Transport unless AllowPrivate is
	// set: the dialer is replaced by the guarded one and the proxy dropped.
	// Redirects are never followed and its Timeout is ignored.
	HTTPClient *http.Client
	// Resolver resolves host names at registration and when dialling;
	// nil means the system resolver.
	Resolver Resolver
	// History is how many attempts are kept per webhook; default
	// DefaultHistory.
	History int
	// Replicas of the buckets and streams on a cluster; default 1.
	Replicas int
	// Mine, if set, tells whether this process should deliver the
	// webhook with the given id now; the others wait, checking again
	// every second. Hubs sharing a cluster use it to spread webhooks over
	// themselves; the consumer's pin still keeps two hubs that disagree
	// for a moment from delivering at once. A process that loses a webhook
	// finishes and acknowledges the attempt it has in flight before it
	// hands the other events over, so the endpoint does not receive an
	// event it accepted a second time. Nil delivers every webhook.
	Mine func(id string) bool
}

func (o *Options) setDefaults() error {
	if len(o.Schedule) == 0 {
		o.Schedule = DefaultSchedule()
	}
	if len(o.Schedule) > MaxScheduleLen {
		return fmt.Errorf("%w: schedule has more than %d entries", ErrBadOptions, MaxScheduleLen)
	}
	for _, d := range o.Schedule {
		if d < MinDelay || d > MaxDelay {
			return fmt.Errorf("%w: schedule entry %v is not between %v and %v", ErrBadOptions, d, MinDelay, MaxDelay)
		}
	}
	if o.DisableAfter <= 0 {
		o.DisableAfter = DefaultDisableAfter
	}
	if o.Timeout <= 0 {
		o.Timeout = DefaultTimeout
	}
	if o.History <= 0 {
		o.History = DefaultHistory
	}
	if o.Replicas <= 0 {
		o.Replicas = 1
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	for _, ws := range o.Workspaces {
		if err := events.ValidWorkspaceName(ws); err != nil {
			return fmt.Errorf("%w: %w", ErrBadOptions, err)
		}
	}
	return nil
}

// Dispatcher registers webhooks and delivers events to them. Its methods
// are safe for concurrent use. It does not own the NATS connection. The
// HTTP handlers and the methods that manage webhooks work without Run;
// verification and delivery happen only while Run runs.
type Dispatcher struct {
	nc        *nats.Conn
	js        jetstream.JetStream
	hooks     jetstream.KeyValue
	failed    jetstream.KeyValue
	retries   jetstream.KeyValue // the tries of each lane's failing message
	attempts  jetstream.Stream
	replays   jetstream.Stream
	opts      Options
	ackMargin time.Duration // ackMargin when opened
	log       *slog.Logger
	guard     *guard
	client    *http.Client
	known     map[string]bool

	mu      sync.Mutex // guards runs.Add against Close
	closing context.Context
	cancel  context.CancelFunc
	runs    sync.WaitGroup
	running atomic.Bool

	cacheMu sync.RWMutex
	cache   map[string]*entry // the registrations as Run's watcher last saw them

	statsMu sync.Mutex
	stats   map[string]*counters
}

// Open creates or updates the buckets and streams the dispatcher keeps on
// nc, which must reach a JetStream-enabled server, and returns a
// Dispatcher. It starts no goroutine; call Run to deliver.
func Open(ctx context.Context, nc *nats.Conn, opts Options) (*Dispatcher, error) {
	d, err := open(ctx, nc, opts)
	if err != nil {
		return nil, fmt.Errorf("open webhooks: %w", err)
	}
	return d, nil
}

func open(ctx context.Context, nc *nats.Conn, opts Options) (*Dispatcher, error) {
	if err := opts.setDefaults(); err != nil {
		return nil, err
	}
	g := &guard{allowPrivate: opts.AllowPrivate, resolver: opts.Resolver}
	client, err := g.client(opts.HTTPClient)
	if err != nil {
		return nil, err
	}
	log := opts.Logger.With("component", "webhook")
	js, err := jetstream.New(nc, jetstream.WithPublishAsyncErrHandler(func(_ jetstream.JetStream, m *nats.Msg, err error) {
		log.Warn("cannot record webhook attempt", "subject", m.Subject, "err", err)
	}))
	if err != nil {
		return nil, err
	}
	ctx, cancel := withTimeout(ctx)
	defer cancel()
	hooks, _, err := natsd.CreateOrUpdateKeyValue(ctx, js, jetstream.KeyValueConfig{
		Bucket:      BucketWebhooks,
		Description: "filecast webhook registrations (holds signing secrets)",
		History:     1,
		Storage:     jetstream.FileStorage,
		Replicas:    opts.Replicas,
	})
	if err != nil {
		return nil, fmt.Errorf("bucket %s: %w", BucketWebhooks, err)
	}
	failed, _, err := natsd.CreateOrUpdateKeyValue(ctx, js, jetstream.KeyValueConfig{
		Bucket:      BucketFailed,
		Description: "filecast webhook deliveries that exhausted their retries, kept for replay",
		History:     1,
		TTL:         failedMaxAge,
		Storage:     jetstream.FileStorage,
		Replicas:    opts.Replicas,
	})
	if err != nil {
		return nil, fmt.Errorf("bucket %s: %w", BucketFailed, err)
	}
	retries, _, err := natsd.CreateOrUpdateKeyValue(ctx, js, jetstream.KeyValueConfig{
		Bucket:      BucketRetries,
		Description: "filecast webhook deliveries being retried: tries so far and when the next is due",
		History:     1,
		TTL:         failedMaxAge,
		Storage:     jetstream.FileStorage,
		Replicas:    opts.Replicas,
	})
	if err != nil {
		return nil, fmt.Errorf("bucket %s: %w", BucketRetries, err)
	}
	attempts, _, err := natsd.CreateOrUpdateStream(ctx, js, jetstream.StreamConfig{
		Name:              StreamAttempts,
		Description:       "filecast webhook delivery attempts, the last few per webhook",
		Subjects:          []string{attemptsSubject + "*"},
		Retention:         jetstream.LimitsPolicy,
		MaxMsgsPerSubject: int64(opts.History),
		MaxAge:            attemptsMaxAge,
		Discard:           jetstream.DiscardOld,
		Storage:           jetstream.FileStorage,
		Replicas:          opts.Replicas,
	})
	if err != nil {
		return nil, fmt.Errorf("stream %s: %w", StreamAttempts, err)
	}
	replays, _, err := natsd.CreateOrUpdateStream(ctx, js, jetstream.StreamConfig{
		Name:        StreamReplays,
		Description: "filecast webhook deliveries queued for replay",
		Subjects:    []string{replaysSubject + "*"},
		Retention:   jetstream.WorkQueuePolicy,
		MaxAge:      failedMaxAge,
		Storage:     jetstream.FileStorage,
		Replicas:    opts.Replicas,
	})
	if err != nil {
		return nil, fmt.Errorf("stream %s: %w", StreamReplays, err)
	}
	closing, stop := context.WithCancel(context.Background())
	known := map[string]bool{}
	for _, ws := range opts.Workspaces {
		known[ws] = true
	}
	return &Dispatcher{
		nc:        nc,
		js:        js,
		hooks:     hooks,
		failed:    failed,
		retries:   retries,
		attempts:  attempts,
		replays:   replays,
		opts:      opts,
		ackMargin: ackMargin,
		log:       log,
		guard:     g,
		client:    client,
		known:     known,
		closing:   closing,
		cancel:    stop,
		cache:     map[string]*entry{},
		stats:     map[string]*counters{},
	}, nil
}

// Close stops a running Run and waits for it to return; an attempt in
// flight is abandoned and its event redelivered later, counting as a try.
// Later calls of Run return events.ErrClosed; the management methods keep
// working on the connection, which stays open. Close is idempotent.
func (d *Dispatcher) Close() error {
	d.mu.Lock()
	d.cancel()
	d.mu.Unlock()
	d.runs.Wait()
	select { // let the attempts recorded last reach the server
	case <-d.js.PublishAsyncComplete():
	case <-time.After(time.Second):
	}
	d.client.CloseIdleConnections()
	return nil
}

func (d *Dispatcher) closed() bool { return d.closing.Err() != nil }

// withTimeout bounds a server request when ctx has no deadline.
func withTimeout(ctx context.Context) (context.Context, context.CancelFunc) {
	if _, ok := ctx.Deadline(); ok {
		return ctx, func() {}
	}
	return context.WithTimeout(ctx, apiTimeout)
}

// isNotFound reports whether err says a bucket key, stream or consumer is
// missing.
func isNotFound(err error) bool {
	return errors.Is(err, jetstream.ErrKeyNotFound) || errors.Is(err, jetstream.ErrStreamNotFound) ||
		errors.Is(err, jetstream.ErrConsumerNotFound) || errors.Is(err, jetstream.ErrKeyDeleted)
}
