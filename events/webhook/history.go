package webhook

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// DeliveryStatus is the outcome of one attempt.
type DeliveryStatus string

// The attempt outcomes.
const (
	DeliverySucceeded DeliveryStatus = "succeeded" // the endpoint answered 2xx
	DeliveryPending   DeliveryStatus = "pending"   // this try failed; another is scheduled (NextAttemptAt)
	DeliveryFailed    DeliveryStatus = "failed"    // this try failed and it was the last; kept for replay
)

// VerificationType is the type of the challenge a new webhook receives.
const VerificationType = "webhook.verification"

// Delivery is one attempt to deliver an event (or the verification
// challenge) to a webhook, as GET /v1/webhooks/{id}/deliveries lists it.
type Delivery struct {
	// DeliveryID names the delivery across its attempts: the event_id,
	// which is also the webhook-id header, so it is the same on every
	// retry and replay. Replay takes it.
	DeliveryID   string         `json:"delivery_id"`
	EventID      string         `json:"event_id,omitempty"`
	Seq          uint64         `json:"seq,omitempty"`
	Type         string         `json:"type"` // the event type, or VerificationType
	Path         string         `json:"path,omitempty"`
	Attempt      int            `json:"attempt"` // 1 for the first try
	Status       DeliveryStatus `json:"status"`
	LatencyMS    float64        `json:"latency_ms"`
	ResponseCode int            `json:"response_code,omitempty"`
	Error        string         `json:"error,omitempty"`
	Time         time.Time      `json:"time"` // when the attempt started
	// NextAttemptAt is when the next try is due, for a pending attempt.
	NextAttemptAt time.Time `json:"next_attempt_at,omitzero"`
	Replay        bool      `json:"replay,omitempty"`
}

// Limits of Deliveries.
const (
	DefaultDeliveriesLimit = 100
	fetchWait              = time.Second
)

// recordAttempt appends an attempt to the webhook's history without
// waiting for the server (attempts of one webhook are stored in the order
// recorded). It is best effort: a failure is logged by the asynchronous
// publish error handler, the delivery goes on.
func (d *Dispatcher) recordAttempt(id string, a Delivery) {
	data, err := json.Marshal(a)
	if err == nil {
		_, err = d.js.PublishAsync(attemptsSubject+id, data)
	}
	if err != nil {
		d.log.Warn("cannot record webhook attempt", "webhook", id, "event_id", a.EventID, "err", err)
	}
}

// Deliveries returns the webhook's last attempts, newest first, at most
// limit of them (DefaultDeliveriesLimit when limit <= 0; the store keeps
// Options.History).
func (d *Dispatcher) Deliveries(ctx context.Context, id string, limit int) ([]Delivery, error) {
	out, err := d.deliveries(ctx, id, limit)
	if err != nil {
		return nil, fmt.Errorf("list deliveries: %w", err)
	}
	return out, nil
}

func (d *Dispatcher) deliveries(ctx context.Context, id string, limit int) ([]Delivery, error) {
	if _, _, err := d.load(ctx, id); err != nil {
		return nil, err
	}
	if limit <= 0 {
		limit = DefaultDeliveriesLimit
	}
	limit = min(limit, d.opts.History)
	ctx, cancel := withTimeout(ctx)
	defer cancel()
	cons, err := d.attempts.CreateConsumer(ctx, jetstream.ConsumerConfig{
		FilterSubject:     attemptsSubject + id,
		DeliverPolicy:     jetstream.DeliverAllPolicy,
		AckPolicy:         jetstream.AckNonePolicy,
		InactiveThreshold: 10 * time.Second,
		MemoryStorage:     true,
	})
	if err != nil {
		return nil, err
	}
	defer func() {
		dctx, cancel := withTimeout(context.WithoutCancel(ctx))
		_ = d.attempts.DeleteConsumer(dctx, cons.CachedInfo().Name)
		cancel()
	}()
	pending := int(cons.CachedInfo().NumPending)
	out := make([]Delivery, 0, pending)
	for len(out) < pending {
		batch, err := cons.Fetch(min(pending-len(out), 256), jetstream.FetchMaxWait(fetchWait))
		if err != nil {
			return nil, err
		}
		n := 0
		for m := range batch.Messages() {
			n++
			var a Delivery
			if err := json.Unmarshal(m.Data(), &a); err != nil {
				continue
			}
			out = append(out, a)
		}
		if err := batch.Error(); err != nil && !errors.Is(err, nats.ErrTimeout) {
			return nil, err
		}
		if n == 0 {
			break // dropped meanwhile by the per-webhook limit
		}
	}
	slices.Reverse(out)
	if len(out) > limit {
		out = out[:limit]
	}
	return out, nil
}

// failedDelivery is a delivery that exhausted its tries, kept for replay.
type failedDelivery struct {
	EventID  string          `json:"event_id"`
	Seq      uint64          `json:"seq"`
	Event    json.RawMessage `json:"event"` // the body that was sent
	FailedAt time.Time       `json:"failed_at"`
	Attempts int             `json:"attempts"`
	Error    string          `json:"error,omitempty"`
}

func failedKey(id, eventID string) string {
	return id + "." + base64.RawURLEncoding.EncodeToString([]byte(eventID))
}

func (d *Dispatcher) keepFailed(ctx context.Context, id string, f failedDelivery) {
	data, err := json.Marshal(f)
	if err == nil {
		ctx, cancel := withTimeout(context.WithoutCancel(ctx))
		_, err = d.failed.Put(ctx, failedKey(id, f.EventID), data)
		cancel()
	}
	if err != nil {
		d.log.Error("cannot keep failed webhook delivery for replay", "webhook", id, "event_id", f.EventID, "err", err)
	}
}

// entries reads the current values of the keys matching filter.
func entries(ctx context.Context, kv jetstream.KeyValue, filter string) ([]jetstream.KeyValueEntry, error) {
	ctx, cancel := withTimeout(ctx)
	defer cancel()
	w, err := kv.Watch(ctx, filter, jetstream.IgnoreDeletes())
	if err != nil {
		return nil, err
	}
	defer func() { _ = w.Stop() }()
	var out []jetstream.KeyValueEntry
	for {
		select {
		case e, ok := <-w.Updates():
			if !ok {
				return nil, fmt.Errorf("watch %s: %w", filter, ctx.Err())
			}
			if e == nil {
				return out, nil
			}
			out = append(out, e)
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

func (d *Dispatcher) purgeFailed(ctx context.Context, id string) error {
	es, err := entries(ctx, d.failed, id+".*")
	if err != nil {
		return err
	}
	for _, e := range es {
		if err := d.failed.Purge(ctx, e.Key()); err != nil && !isNotFound(err) {
			return err
		}
	}
	return nil
}

// ReplayRequest selects failed deliveries to send again: one by its
// DeliveryID, or every one that failed in [Since, Until) (Until defaults
// to now).
type ReplayRequest struct {
	DeliveryID string    `json:"delivery_id,omitempty"`
	Since      time.Time `json:"since,omitzero"`
	Until      time.Time `json:"until,omitzero"`
}

// ReplayResult says which deliveries were queued again.
type ReplayResult struct {
	Replayed    int      `json:"replayed"`
	DeliveryIDs []string `json:"delivery_ids"`
}

// Replay queues failed deliveries of an active (or pending) webhook for
// delivery again, with a fresh schedule of tries. A replayed delivery
// leaves the failed set; if it fails again it is back in it. Replays are
// delivered beside, not in order with, new events.
func (d *Dispatcher) Replay(ctx context.Context, id string, req ReplayRequest) (ReplayResult, error) {
	res, err := d.replay(ctx, id, req)
	if err != nil {
		return ReplayResult{}, fmt.Errorf("replay deliveries: %w", err)
	}
	return res, nil
}

func (d *Dispatcher) replay(ctx context.Context, id string, req ReplayRequest) (ReplayResult, error) {
	switch {
	case req.DeliveryID == "" && req.Since.IsZero():
		return ReplayResult{}, badRequest("give delivery_id, or since (and optionally until)")
	case req.DeliveryID != "" && (!req.Since.IsZero() || !req.Until.IsZero()):
		return ReplayResult{}, badRequest("give delivery_id or a time range, not both")
	}
	if req.Until.IsZero() {
		req.Until = time.Now()
	}
	if !req.Since.IsZero() && !req.Since.Before(req.Until) {
		return ReplayResult{}, badRequest("since must be before until")
	}
	rec, _, err := d.load(ctx, id)
	if err != nil {
		return ReplayResult{}, err
	}
	if rec.Status != StatusActive && rec.Status != StatusPending {
		return ReplayResult{}, fmt.Errorf("%w: webhook %s is %s (%s); register it again", ErrNotActive, id, rec.Status, rec.Reason)
	}
	ctx, cancel := withTimeout(ctx)
	defer cancel()
	var es []jetstream.KeyValueEntry
	if req.DeliveryID != "" {
		e, err := d.failed.Get(ctx, failedKey(id, req.DeliveryID))
		if isNotFound(err) {
			return ReplayResult{}, fmt.Errorf("%w: no failed delivery %q for webhook %s", ErrNotFound, truncate(req.DeliveryID, 80), id)
		}
		if err != nil {
			return ReplayResult{}, err
		}
		es = append(es, e)
	} else if es, err = entries(ctx, d.failed, id+".*"); err != nil {
		return ReplayResult{}, err
	}
	type item struct {
		key string
		f   failedDelivery
	}
	var items []item
	for _, e := range es {
		var f failedDelivery
		if err := json.Unmarshal(e.Value(), &f); err != nil {
			continue
		}
		if req.DeliveryID == "" && (f.FailedAt.Before(req.Since) || !f.FailedAt.Before(req.Until)) {
			continue
		}
		items = append(items, item{e.Key(), f})
	}
	slices.SortFunc(items, func(a, b item) int { return cmpUint(a.f.Seq, b.f.Seq) })
	res := ReplayResult{DeliveryIDs: []string{}}
	for _, it := range items {
		if _, err := d.js.Publish(ctx, replaysSubject+id, it.f.Event); err != nil {
			return res, err
		}
		if err := d.failed.Purge(ctx, it.key); err != nil && !isNotFound(err) {
			return res, err
		}
		res.Replayed++
		res.DeliveryIDs = append(res.DeliveryIDs, it.f.EventID)
	}
	d.log.Info("webhook deliveries replayed", "webhook", id, "count", res.Replayed)
	return res, nil
}

func cmpUint(a, b uint64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}
