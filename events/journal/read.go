package journal

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/filecast/filecast/events"
)

// Read returns up to limit events of ws with seq greater than after, in seq
// order, each with Seq set. It returns at once with what the log holds: an
// empty result (and no error) when after is at or past the head or ws has
// no log yet. When retention has dropped the events right after after, it
// returns an error matching events.ErrCursorExpired; seqs that never held
// an event (a write the store failed for want of space leaves some) are
// skipped without one. An empty result means the log holds nothing after
// after. A limit <= 0 means DefaultReadLimit; at most MaxReadLimit events
// are returned.
func (j *Journal) Read(ctx context.Context, ws string, after uint64, limit int) ([]events.Event, error) {
	evs, err := j.read(ctx, ws, after, limit)
	if err != nil {
		return nil, fmt.Errorf("read events: %w", err)
	}
	return evs, nil
}

func (j *Journal) read(ctx context.Context, ws string, after uint64, limit int) ([]events.Event, error) {
	if j.closed() {
		return nil, events.ErrClosed
	}
	if err := checkWorkspace(ws); err != nil {
		return nil, err
	}
	if limit <= 0 {
		limit = DefaultReadLimit
	}
	limit = min(limit, MaxReadLimit)
	j.mu.Lock()
	known := j.streams[ws]
	j.mu.Unlock()
	if !known {
		// Do not create a log just to read it; but bring an existing one
		// to our configuration (direct get must be allowed).
		_, ok, err := j.state(ctx, ws)
		if err != nil || !ok {
			return nil, err
		}
		if err := j.ensure(ctx, ws); err != nil {
			return nil, err
		}
	}
	ctx, cancel := withTimeout(ctx)
	defer cancel()
	// Ask from the cursor's own event when there is one: if the log still
	// holds it, nothing right after it can have been dropped, and a read at
	// the head needs no second request to tell so.
	from, batch := after+1, limit
	if after > 0 {
		from, batch = after, limit+1
	}
	evs, err := j.directRead(ctx, ws, from, batch)
	if errors.Is(err, errNoDirect) {
		evs, err = j.consumerRead(ctx, ws, after, limit)
	}
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		j.forget(ws) // deleted behind our back: no log, nothing to read
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	if len(evs) > 0 && evs[0].Seq == after {
		if len(evs) == 1 {
			return nil, nil
		}
		return evs[1:], nil
	}
	if len(evs) > limit {
		evs = evs[:limit]
	}
	if len(evs) == 0 || evs[0].Seq > after+1 {
		// Empty because after is at the head, or because everything after
		// it has been dropped? Something missing right after after because
		// it was dropped, or because those seqs never held an event? Only
		// the stream tells.
		info, err := j.info(ctx, ws)
		if err != nil || info == nil {
			return evs, err
		}
		if dropped(after, info) {
			return nil, cursorExpired(ws, after, info.State.FirstSeq)
		}
		if st := info.State; len(evs) == 0 && st.Msgs > 0 && st.LastSeq > after {
			// A replica answered the direct get, and has not caught up
			// with the stream's leader, which holds events after after:
			// read them from the leader.
			return j.consumerRead(ctx, ws, after, limit)
		}
	}
	return evs, nil
}

// errNoDirect means the server did not answer a batched direct get; the
// caller falls back to a consumer.
var errNoDirect = errors.New("journal: batched direct get not available")

// directGetRequest is the body of a JetStream direct get.
type directGetRequest struct {
	Seq   uint64 `json:"seq"`
	Batch int    `json:"batch"`
}

const (
	hdrStatus     = "Status"
	hdrSequence   = "Nats-Sequence"
	hdrNumPending = "Nats-Num-Pending"
)

// directRead reads the events with seq >= from, up to batch of them, with
// one batched direct get ("$JS.API.DIRECT.GET"), which the server answers
// with the messages followed by an end-of-batch status, without creating a
// consumer.
func (j *Journal) directRead(ctx context.Context, ws string, from uint64, batch int) ([]events.Event, error) {
	req, err := json.Marshal(directGetRequest{Seq: from, Batch: batch})
	if err != nil {
		return nil, err
	}
	msgs, err := j.gets.get(ctx, "$JS.API.DIRECT.GET."+StreamName(ws), req)
	if err != nil {
		return nil, err
	}
	var evs []events.Event
	for _, msg := range msgs {
		if len(msg.Data) == 0 && msg.Header.Get(hdrStatus) != "" {
			switch status := msg.Header.Get(hdrStatus); status {
			case "204", "404": // end of batch; nothing at or after after+1
				return evs, nil
			case "503": // no responders: direct get not enabled
				return nil, errNoDirect
			default:
				return nil, fmt.Errorf("direct get: status %s %s", status, msg.Header.Get("Description"))
			}
		}
		if msg.Header.Get(hdrNumPending) == "" {
			// A server that ignores batch answers with one message.
			return nil, errNoDirect
		}
		seq, err := strconv.ParseUint(msg.Header.Get(hdrSequence), 10, 64)
		if err != nil {
			return nil, fmt.Errorf("direct get: bad %s header: %w", hdrSequence, err)
		}
		ev, err := decode(msg.Data, seq)
		if err != nil {
			return nil, err
		}
		if evs == nil {
			evs = make([]events.Event, 0, len(msgs))
		}
		evs = append(evs, ev)
	}
	return evs, nil
}

// getter multiplexes requests with several replies (batched direct gets)
// over one subscription on a wildcard inbox. Safe for concurrent use.
type getter struct {
	nc     *nats.Conn
	prefix string // inbox + "."
	sub    *nats.Subscription

	mu    sync.Mutex
	next  uint64
	calls map[string]*getCall
}

// getCall collects the replies of one request until a terminal one.
type getCall struct {
	msgs []*nats.Msg
	done chan struct{}
}

func newGetter(nc *nats.Conn) (*getter, error) {
	g := &getter{nc: nc, prefix: nc.NewInbox() + ".", calls: map[string]*getCall{}}
	sub, err := nc.Subscribe(g.prefix+"*", g.receive)
	if err != nil {
		return nil, err
	}
	g.sub = sub
	return g, nil
}

func (g *getter) close() { _ = g.sub.Unsubscribe() }

// receive runs on the subscription's goroutine, owned by the connection.
func (g *getter) receive(msg *nats.Msg) {
	id := strings.TrimPrefix(msg.Subject, g.prefix)
	g.mu.Lock()
	defer g.mu.Unlock()
	call := g.calls[id]
	if call == nil {
		return // the caller gave up
	}
	call.msgs = append(call.msgs, msg)
	// A status reply ends the batch; so does a plain reply without the
	// batch headers (a server that answers a single message).
	if msg.Header.Get(hdrStatus) != "" && len(msg.Data) == 0 || msg.Header.Get(hdrNumPending) == "" {
		delete(g.calls, id)
		close(call.done)
	}
}

// get publishes req on subj and returns every reply up to the terminal one.
func (g *getter) get(ctx context.Context, subj string, req []byte) ([]*nats.Msg, error) {
	call := &getCall{done: make(chan struct{})}
	g.mu.Lock()
	g.next++
	id := strconv.FormatUint(g.next, 10)
	g.calls[id] = call
	g.mu.Unlock()
	if err := g.nc.PublishMsg(&nats.Msg{Subject: subj, Reply: g.prefix + id, Data: req}); err != nil {
		g.forget(id)
		return nil, err
	}
	select {
	case <-call.done:
		return call.msgs, nil
	case <-ctx.Done():
		g.forget(id)
		return nil, ctx.Err()
	}
}

func (g *getter) forget(id string) {
	g.mu.Lock()
	delete(g.calls, id)
	g.mu.Unlock()
}

// consumerRead reads with an ordered consumer that asks for what is
// available now and never waits for more.
func (j *Journal) consumerRead(ctx context.Context, ws string, after uint64, limit int) ([]events.Event, error) {
	cons, err := j.js.OrderedConsumer(ctx, StreamName(ws), orderedConfig(after))
	if err != nil {
		return nil, err
	}
	defer j.deleteConsumer(ws, cons)
	batch, err := cons.FetchNoWait(limit)
	if err != nil {
		return nil, err
	}
	var evs []events.Event
	for msg := range batch.Messages() {
		md, err := msg.Metadata()
		if err != nil {
			return nil, err
		}
		ev, err := decode(msg.Data(), md.Sequence.Stream)
		if err != nil {
			return nil, err
		}
		evs = append(evs, ev)
	}
	if err := batch.Error(); err != nil && !errors.Is(err, nats.ErrTimeout) {
		return nil, err
	}
	return evs, nil
}

// orderedConfig starts an ordered consumer right after the cursor.
func orderedConfig(after uint64) jetstream.OrderedConsumerConfig {
	cfg := jetstream.OrderedConsumerConfig{
		DeliverPolicy:     jetstream.DeliverAllPolicy,
		InactiveThreshold: consumerInactive,
	}
	if after > 0 {
		cfg.DeliverPolicy = jetstream.DeliverByStartSequencePolicy
		cfg.OptStartSeq = after + 1
	}
	return cfg
}
