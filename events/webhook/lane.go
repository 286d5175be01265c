package webhook

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/filecast/filecast/events/internal/wait"
	"github.com/filecast/filecast/events/journal"
)

// How a webhook's consumer is read. The server hands a lane up to window
// messages ahead (MaxAckPending), so the next event is already here when
// the previous one is acknowledged; the lane still posts one at a time, in
// stream order.
const (
	window = 128
	// pinGroup is the priority group of every webhook consumer: the server
	// pins one pulling client (one hub) and gives messages to it alone.
	pinGroup = "filecast"
	// pullExpiry is how long one pull request waits; a pinned client sends
	// a new one at the latest when it expires, which keeps its pin.
	pullExpiry = 5 * time.Second
	// holdPoll is how often a holding lane asks the server whether every
	// pending message is now its own.
	holdPoll = 200 * time.Millisecond
	// drainWait bounds how long a stopping lane waits for the messages
	// already on their way to it.
	drainWait = 2 * time.Second
	// nakDelay is the delay of the NAKs that give held messages back. A
	// delayed NAK is stored with the consumer's state (a plain one only
	// queues the message in the server's memory), so the messages come
	// back at once, in order, even after the server restarts.
	nakDelay = time.Millisecond
)

// refreshEvery is how often the messages a lane holds have their ack wait
// extended (InProgress). With at most one attempt (Timeout) between two
// refreshes, it must stay below ackMargin.
func (l *lane) refreshEvery() time.Duration { return l.d.ackMargin / 2 }

// errConsumerStopped means the server or the client library ended a
// lane's subscription (its consumer was deleted, the connection closed).
var errConsumerStopped = errors.New("webhook: consumer subscription ended")

// held is a message a lane has received and not yet settled.
type held struct {
	msg       jetstream.Msg
	seq       uint64 // stream sequence
	delivered uint64 // times the server has delivered it
}

// lane delivers the messages of one durable consumer of one webhook (its
// live consumer on the journal, or its replay consumer) strictly one at a
// time in stream order. The server sends up to window messages ahead; the
// lane keeps them sorted, posts the first, acknowledges it without waiting
// (acknowledgements therefore reach the server in stream order, so its ack
// floor is exactly "everything up to here is done"), and on a failure keeps
// it first and retries it itself on the schedule while the messages behind
// it wait (their ack wait extended). The tries of the first message are
// stored on each failure, so that they continue in a later run. A lane is
// used by one goroutine.
type lane struct {
	d        *Dispatcher
	id       string
	replay   bool
	stream   string
	durable  string
	cons     jetstream.Consumer
	window   int
	pinned   bool
	log      *slog.Logger
	stateKey string

	in    chan jetstream.Msg // filled by the subscription's callback
	queue []held             // ascending seq

	// hold: messages delivered to another client (an earlier run, another
	// hub) may still be pending; nothing is posted until every pending
	// message is one this lane holds, in order.
	hold      bool
	holdSince time.Time
	holdNext  time.Time
	lastDseq  uint64 // consumer sequence of the last delivery received

	// The first message's tries.
	triesFor uint64 // seq they belong to
	tries    int
	retryAt  time.Time

	lastRefresh time.Time
	sign        *signer
	signRec     *record
	timer       *time.Timer
}

// retryState is what the retries bucket keeps per lane: the tries of the
// message that is failing, and when it is due again.
type retryState struct {
	Seq     uint64    `json:"seq"`
	EventID string    `json:"event_id"`
	Tries   int       `json:"tries"`
	NextAt  time.Time `json:"next_at,omitzero"`
	Updated time.Time `json:"updated_at"`
}

func retryKey(id string, replay bool) string {
	if replay {
		return id + ".replay"
	}
	return id + ".live"
}

// consume delivers the messages of the webhook's live consumer (on the
// journal) or replay consumer until the webhook stops being active or
// release is done, between two attempts; ctx, of which release is a child,
// also abandons an attempt in flight.
func (d *Dispatcher) consume(ctx, release context.Context, id string, replay bool) error {
	l, err := d.newLane(release, id, replay)
	if err != nil || l == nil {
		return err
	}
	return l.run(ctx, release)
}

// newLane creates or updates the webhook's durable consumer and returns a
// lane on it. For the live consumer it waits, quietly, until the
// workspace's log exists. It returns nil and no error when ctx is done
// first.
func (d *Dispatcher) newLane(ctx context.Context, id string, replay bool) (*lane, error) {
	e := d.cached(id)
	if e == nil {
		return nil, nil
	}
	rec := e.rec
	ackWait := d.opts.Timeout + d.ackMargin
	cfg := jetstream.ConsumerConfig{
		AckPolicy: jetstream.AckExplicitPolicy,
		AckWait:   ackWait,
		// The lane counts the tries itself and stops at the schedule's
		// end; the server must never drop a message on its own.
		MaxDeliver:     -1,
		MaxAckPending:  window,
		PriorityPolicy: jetstream.PriorityPolicyPinned,
		PriorityGroups: []string{pinGroup},
		// A new client is pinned only after every message the previous one
		// held has run out of its ack wait, so it receives them first.
		PinnedTTL: ackWait + pullExpiry + d.ackMargin,
		Metadata:  map[string]string{"filecast_webhook": id},
	}
	stream := StreamReplays
	if replay {
		cfg.Durable = replayConsumer(id)
		cfg.Description = "filecast webhook replays of " + id
		cfg.FilterSubject = replaysSubject + id
		cfg.DeliverPolicy = jetstream.DeliverAllPolicy
	} else {
		stream = journal.StreamName(rec.Workspace)
		cfg.Durable = liveConsumer(id)
		cfg.Description = "filecast webhook " + id
		cfg.FilterSubject = journal.Subject(rec.Workspace)
		cfg.DeliverPolicy = jetstream.DeliverByStartSequencePolicy
		cfg.OptStartSeq = rec.StartSeq
	}
	cons, err := d.createConsumer(ctx, stream, cfg)
	if err != nil || cons == nil {
		return nil, err
	}
	l := &lane{
		d: d, id: id, replay: replay, stream: stream, durable: cfg.Durable, cons: cons,
		window: window, pinned: true, stateKey: retryKey(id, replay),
		log: d.log.With("webhook", id, "replay", replay),
	}
	if cons.CachedInfo().Config.PriorityPolicy != jetstream.PriorityPolicyPinned {
		// A server without priority groups: only one message in flight per
		// consumer keeps several hubs from delivering side by side.
		cfg.MaxAckPending = 1
		cfg.PriorityPolicy, cfg.PriorityGroups, cfg.PinnedTTL = jetstream.PriorityPolicyNone, nil, 0
		if cons, err = d.createConsumer(ctx, stream, cfg); err != nil || cons == nil {
			return nil, err
		}
		l.cons, l.window, l.pinned = cons, 1, false
		l.log.Warn("the NATS server does not support pinned consumers; delivering one event per round trip")
	}
	info := l.cons.CachedInfo()
	l.lastDseq = info.Delivered.Consumer
	if info.NumAckPending > 0 {
		// An earlier run (or another hub) left messages unsettled: they come
		// back as redeliveries, and nothing after them may go first.
		l.startHold(time.Now())
	}
	return l, nil
}

// createConsumer creates or updates a durable consumer, waiting for the
// stream while it does not exist. It returns nil and no error when ctx is
// done first.
func (d *Dispatcher) createConsumer(ctx context.Context, stream string, cfg jetstream.ConsumerConfig) (jetstream.Consumer, error) {
	for {
		cctx, cancel := withTimeout(ctx)
		cons, err := d.js.CreateOrUpdateConsumer(cctx, stream, cfg)
		cancel()
		if err == nil {
			return cons, nil
		}
		if ctx.Err() != nil {
			return nil, nil
		}
		if !errors.Is(err, jetstream.ErrStreamNotFound) {
			return nil, fmt.Errorf("create consumer %s: %w", cfg.Durable, err)
		}
		// No event was ever appended to the workspace: wait for its log.
		if !wait.Sleep(ctx, retryDelay) {
			return nil, nil
		}
	}
}

// run subscribes and delivers until release is done, the webhook is no
// longer active or the subscription ends, never during an attempt unless
// ctx is done; it then gives every message it holds back to the server,
// in order.
func (l *lane) run(ctx, release context.Context) error {
	l.in = make(chan jetstream.Msg, 2*l.window)
	stopping := make(chan struct{})
	opts := []jetstream.PullConsumeOpt{
		jetstream.PullMaxMessages(l.window),
		jetstream.PullExpiry(pullExpiry),
		jetstream.ConsumeErrHandler(func(_ jetstream.ConsumeContext, err error) {
			l.log.Debug("webhook consumer", "err", err)
		}),
	}
	if l.pinned {
		opts = append(opts, jetstream.PullPriorityGroup(pinGroup))
	}
	cc, err := l.cons.Consume(func(m jetstream.Msg) {
		select {
		case l.in <- m:
		case <-stopping:
		}
	}, opts...)
	if err != nil {
		return fmt.Errorf("consume %s: %w", l.durable, err)
	}
	l.timer = time.NewTimer(time.Hour)
	defer l.timer.Stop()
	err = l.loop(ctx, release, cc.Closed())
	l.stop(cc, stopping)
	return err
}

// stop drains the subscription, returns every held message to the server
// (NAK, ascending seq, so that they come back in order, all in one pass of
// the server's redelivery check) and lets another client be pinned at once.
func (l *lane) stop(cc jetstream.ConsumeContext, stopping chan struct{}) {
	cc.Drain()
	t := time.NewTimer(drainWait)
	defer t.Stop()
wait:
	for {
		select {
		case m := <-l.in:
			l.add(m)
		case <-cc.Closed():
			break wait
		case <-t.C:
			cc.Stop()
			break wait
		}
	}
	close(stopping) // a callback still running returns without sending
	l.take()
	for _, h := range l.queue {
		_ = h.msg.NakWithDelay(nakDelay)
	}
	l.queue = nil
	if l.d.nc.IsClosed() {
		return
	}
	_ = l.d.nc.FlushTimeout(drainWait)
	if !l.pinned {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), drainWait)
	defer cancel()
	// Asking for the consumer's info makes the server drop the pull
	// requests of the subscription just closed; one left behind would
	// take the pin with the next message and hold it for PinnedTTL.
	_, _ = l.cons.Info(ctx)
	if s, err := l.d.js.Stream(ctx, l.stream); err == nil {
		_ = s.UnpinConsumer(ctx, l.durable, pinGroup)
	}
}

// add puts a received message in its place in the queue.
func (l *lane) add(m jetstream.Msg) {
	meta, err := m.Metadata()
	if err != nil {
		_ = m.TermWithReason("no metadata")
		return
	}
	h := held{msg: m, seq: meta.Sequence.Stream, delivered: meta.NumDelivered}
	if dseq := meta.Sequence.Consumer; dseq > l.lastDseq {
		if dseq != l.lastDseq+1 && !l.hold {
			// Deliveries in between went to another client: what it left
			// pending may come back, and must go first.
			l.startHold(time.Now())
		}
		l.lastDseq = dseq
	}
	// A message at or below the last one settled is not dropped: it is a
	// duplicate (an acknowledgement the server had not seen in time) or
	// one that another client held longer than holdLimit; delivering it
	// again keeps delivery at least once.
	i, found := slices.BinarySearchFunc(l.queue, h.seq, func(x held, seq uint64) int { return cmpUint(x.seq, seq) })
	if found {
		l.queue[i] = h // a redelivery of a message held here: answer the newest
		return
	}
	l.queue = slices.Insert(l.queue, i, h)
}

// take moves the messages that arrived meanwhile into the queue.
func (l *lane) take() {
	for {
		select {
		case m := <-l.in:
			l.add(m)
		default:
			return
		}
	}
}

// loop delivers the first message of the queue whenever it may go, until
// release is done; an attempt runs under ctx.
func (l *lane) loop(ctx, release context.Context, closed <-chan struct{}) error {
	l.lastRefresh = time.Now()
	for {
		l.take()
		if release.Err() != nil || !l.d.active(l.id) {
			return nil
		}
		now := time.Now()
		if len(l.queue) > 0 && now.Sub(l.lastRefresh) >= l.refreshEvery() {
			l.refresh(now)
		}
		wait := l.ready(ctx, now)
		if wait == 0 {
			l.deliver(ctx, l.queue[0])
			continue
		}
		if len(l.queue) == 0 {
			l.lastRefresh = now // nothing held: the next message is fresh
		}
		l.timer.Reset(min(wait, l.refreshEvery()))
		select {
		case m := <-l.in:
			l.add(m)
		case <-l.timer.C:
		case <-closed:
			return errConsumerStopped
		case <-release.Done():
		}
		l.timer.Stop()
	}
}

// ready returns 0 when the first message may be tried now, or how long to
// wait before looking again.
func (l *lane) ready(ctx context.Context, now time.Time) time.Duration {
	if len(l.queue) == 0 {
		return l.refreshEvery()
	}
	if l.hold {
		l.take()
		if !l.holdEnded(ctx, now) {
			return holdPoll
		}
	}
	h := l.queue[0]
	if h.seq != l.triesFor {
		l.loadTries(ctx, h)
	}
	if wait := l.retryAt.Sub(now); wait > 0 {
		return wait
	}
	return 0
}

func (l *lane) startHold(now time.Time) {
	l.hold, l.holdSince, l.holdNext = true, now, time.Time{}
}

// holdLimit bounds a hold: after it, the lane goes on even if messages are
// still pending elsewhere (a client that lost its pin but lives on).
func (l *lane) holdLimit() time.Duration { return 2 * (l.d.opts.Timeout + l.d.ackMargin) }

// holdEnded reports whether every pending message of the consumer is one
// the lane holds (so the queue has them all, in order), asking the server
// at most every holdPoll.
func (l *lane) holdEnded(ctx context.Context, now time.Time) bool {
	if now.Before(l.holdNext) {
		return false
	}
	l.holdNext = now.Add(holdPoll)
	cctx, cancel := withTimeout(ctx)
	info, err := l.cons.Info(cctx)
	cancel()
	switch {
	case err == nil && info.NumAckPending <= len(l.queue):
	case now.Sub(l.holdSince) > l.holdLimit():
		l.log.Warn("messages delivered to another client are still pending; delivering the rest", "held_for", now.Sub(l.holdSince))
	default:
		return false
	}
	l.hold = false
	return true
}

// refresh extends the ack wait of every held message.
func (l *lane) refresh(now time.Time) {
	for _, h := range l.queue {
		_ = h.msg.InProgress()
	}
	l.lastRefresh = now
}

// loadTries sets the tries of h: none for a first delivery, else those a
// previous run stored.
func (l *lane) loadTries(ctx context.Context, h held) {
	l.triesFor, l.tries, l.retryAt = h.seq, 0, time.Time{}
	if h.delivered <= 1 {
		return
	}
	cctx, cancel := withTimeout(ctx)
	e, err := l.d.retries.Get(cctx, l.stateKey)
	cancel()
	if err != nil {
		if !isNotFound(err) && ctx.Err() == nil {
			l.log.Warn("cannot read webhook retry state", "err", err)
		}
		return
	}
	var st retryState
	if json.Unmarshal(e.Value(), &st) == nil && st.Seq == h.seq {
		l.tries, l.retryAt = st.Tries, st.NextAt
	}
}

// saveTries stores the tries of the first message; it is best effort.
func (l *lane) saveTries(ctx context.Context, eventID string) {
	data, err := json.Marshal(retryState{Seq: l.triesFor, EventID: eventID, Tries: l.tries, NextAt: l.retryAt.UTC(), Updated: time.Now().UTC()})
	if err == nil {
		cctx, cancel := withTimeout(context.WithoutCancel(ctx))
		_, err = l.d.retries.Put(cctx, l.stateKey, data)
		cancel()
	}
	if err != nil {
		l.log.Warn("cannot store webhook retry state", "event_id", eventID, "err", err)
	}
}

// settled drops the first message, already acknowledged or terminated.
func (l *lane) settled(ctx context.Context) {
	h := l.queue[0]
	l.queue = slices.Delete(l.queue, 0, 1)
	if l.triesFor == h.seq && l.tries > 0 {
		cctx, cancel := withTimeout(context.WithoutCancel(ctx))
		if err := l.d.retries.Delete(cctx, l.stateKey); err != nil && !isNotFound(err) {
			l.log.Warn("cannot clear webhook retry state", "err", err)
		}
		cancel()
	}
	l.triesFor, l.tries, l.retryAt = 0, 0, time.Time{}
}

// signerFor returns the signer of the webhook's current secrets.
func (l *lane) signerFor(rec *record) (*signer, error) {
	if l.sign != nil && l.signRec == rec {
		return l.sign, nil
	}
	s, err := newSigner(rec.Secrets)
	if err != nil {
		return nil, err
	}
	l.sign, l.signRec = s, rec
	return s, nil
}

// deliver makes one attempt to deliver the first message: on success it is
// acknowledged; on a failure with tries left it stays first and is tried
// again after the schedule's next delay; on the last failure it is kept
// for replay and terminated.
func (l *lane) deliver(ctx context.Context, h held) {
	d := l.d
	e := d.cached(l.id)
	if e == nil {
		return // deleted meanwhile; the consumer goes with it
	}
	var ev eventHead
	if err := json.Unmarshal(h.msg.Data(), &ev); err != nil || ev.ID == "" {
		l.log.Error("undeliverable event dropped", "seq", h.seq, "err", err)
		_ = h.msg.TermWithReason("undecodable event")
		l.settled(ctx)
		return
	}
	body := h.msg.Data()
	if !l.replay {
		ev.Seq = h.seq
		if !e.matcher.match(ev.event()) {
			_ = h.msg.Ack()
			l.settled(ctx)
			return
		}
		var err error
		if body, err = liveBody(body, ev.ID, h.seq); err != nil {
			l.log.Error("undeliverable event dropped", "seq", h.seq, "err", err)
			_ = h.msg.TermWithReason("undecodable event")
			l.settled(ctx)
			return
		}
	}
	attempt := l.tries + 1
	var res result
	if s, err := l.signerFor(e.rec); err != nil {
		res = result{err: err, start: time.Now()}
	} else {
		res = d.post(ctx, e.rec.URL, s, ev.ID, body)
	}
	if res.err != nil && ctx.Err() != nil {
		// Interrupted by shutdown: it counts as a try, and the next run
		// takes the message at once. An answer already in counts as it is.
		l.tries++
		l.saveTries(ctx, ev.ID)
		return
	}
	a := Delivery{
		DeliveryID: ev.ID, EventID: ev.ID, Seq: ev.Seq, Type: string(ev.Type), Path: ev.Path,
		Attempt: attempt, LatencyMS: ms(res.latency), ResponseCode: res.code, Time: res.start.UTC(), Replay: l.replay,
	}
	d.count(l.id, res.latency, res.err == nil)
	if res.err == nil {
		a.Status = DeliverySucceeded
		d.recordAttempt(l.id, a)
		_ = h.msg.Ack()
		l.settled(ctx)
		d.noteSuccess(ctx, l.id)
		return
	}
	a.Error = res.err.Error()
	l.tries = attempt
	if at, more := nextTry(d.opts.Schedule, attempt, time.Now()); more {
		l.retryAt = at
		a.Status = DeliveryPending
		a.NextAttemptAt = l.retryAt.UTC()
		l.saveTries(ctx, ev.ID)
		d.recordAttempt(l.id, a)
	} else {
		a.Status = DeliveryFailed
		d.keepFailed(ctx, l.id, failedDelivery{
			EventID: ev.ID, Seq: ev.Seq, Event: body, FailedAt: time.Now().UTC(), Attempts: attempt, Error: a.Error,
		})
		d.recordAttempt(l.id, a)
		_ = h.msg.Term()
		l.settled(ctx)
		d.countFailed(l.id)
	}
	d.noteFailure(ctx, l.id, a.Error)
}
