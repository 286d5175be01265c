package relay

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/sourcegraph/conc"

	"github.com/filecast/filecast/events"
)

const (
	// maxInFlight bounds the requests Serve answers at once; beyond it the
	// next ones wait in the subscription's queue.
	maxInFlight = 64
	// drainTimeout bounds the wait for the requests already received when
	// Serve stops.
	drainTimeout = 10 * time.Second
)

// Serve answers the relayed writes and listings of workspace ws with
// local, until ctx is done; it is run by the hub that watches ws, for as
// long as it does. It subscribes to WriteSubject(ws) and FilesSubject(ws)
// in QueueGroup, answers each request on its own goroutine (at most 64 at
// once), and when ctx is done drains the subscriptions — requests already
// received are answered with ErrNoLeader, so their callers know nothing
// was written — waits for its goroutines and returns nil. It returns an
// error at once when it cannot subscribe. Requests reach local with a
// context that makes a Client refuse to relay them again, so a hub that
// serves ws without watching it answers ErrNoLeader rather than asking
// itself.
func Serve(ctx context.Context, nc *nats.Conn, ws string, local Local, opts Options) error {
	if nc == nil || local == nil {
		return fmt.Errorf("%w: a connection and a local hub are required", ErrConfig)
	}
	if err := events.ValidWorkspaceName(ws); err != nil {
		return fmt.Errorf("%w: %w", ErrConfig, err)
	}
	if !nc.HeadersSupported() {
		return fmt.Errorf("%w: the NATS server does not support message headers", ErrConfig)
	}
	s := &server{nc: nc, ws: ws, local: local, life: ctx, timeout: opts.timeout(), log: opts.logger().With("workspace", ws)}
	s.sem = make(chan struct{}, maxInFlight)

	subW, err := nc.QueueSubscribe(WriteSubject(ws), QueueGroup, s.dispatch(s.write))
	if err != nil {
		return fmt.Errorf("subscribe to %s: %w", WriteSubject(ws), err)
	}
	subF, err := nc.QueueSubscribe(FilesSubject(ws), QueueGroup, s.dispatch(s.files))
	if err != nil {
		_ = subW.Unsubscribe()
		return fmt.Errorf("subscribe to %s: %w", FilesSubject(ws), err)
	}
	s.log.Debug("serving relayed requests")
	<-ctx.Done()
	var drains conc.WaitGroup
	drains.Go(func() { s.drain(subW) })
	drains.Go(func() { s.drain(subF) })
	drains.Wait()
	s.mu.Lock()
	s.closed = true
	s.mu.Unlock()
	s.wg.Wait()
	s.log.Debug("stopped serving relayed requests")
	return nil
}

// server answers the requests of one workspace.
type server struct {
	nc      *nats.Conn
	ws      string
	local   Local
	life    context.Context // Serve's: done when it stops
	timeout time.Duration
	log     *slog.Logger
	sem     chan struct{} // one token per request being answered

	mu     sync.Mutex
	closed bool // no more goroutines may start
	wg     conc.WaitGroup
}

// dispatch returns the subscription's handler: it answers each message on
// a goroutine of its own, waiting for a free slot first.
func (s *server) dispatch(handle func(*nats.Msg)) nats.MsgHandler {
	return func(m *nats.Msg) {
		if m.Reply == "" {
			s.log.Warn("relayed request without a reply subject dropped", "subject", m.Subject)
			return
		}
		s.sem <- struct{}{}
		s.mu.Lock()
		defer s.mu.Unlock()
		if s.closed {
			<-s.sem
			s.answerError(m.Reply, fmt.Errorf("%w: the hub that watched %s stopped", ErrNoLeader, s.ws))
			return
		}
		s.wg.Go(func() {
			defer func() { <-s.sem }()
			handle(m)
		})
	}
}

// drain stops sub's interest and waits until the messages it already
// received are handed out, or unsubscribes after drainTimeout.
func (s *server) drain(sub *nats.Subscription) {
	closed := sub.StatusChanged(nats.SubscriptionClosed)
	if err := sub.Drain(); err != nil {
		_ = sub.Unsubscribe()
		return
	}
	t := time.NewTimer(drainTimeout)
	defer t.Stop()
	select {
	case <-closed:
	case <-t.C:
		s.log.Warn("drain relay subscription timed out", "subject", sub.Subject)
		_ = sub.Unsubscribe()
	}
}

// requestCtx is the context a request is answered in: done when Serve
// stops or a little before the caller's budget (else Options.Timeout)
// runs out, so that a local call that gives up in time is still answered
// before the caller stops waiting; and marked as relayed.
func (s *server) requestCtx(m *nats.Msg) (context.Context, context.CancelFunc) {
	d, ok := parseBudget(m.Header)
	if !ok {
		d = s.timeout
	}
	d -= min(d/10, time.Second)
	return context.WithTimeout(context.WithValue(s.life, relayedKey{}, true), d)
}

func (s *server) write(m *nats.Msg) {
	ctx, cancel := s.requestCtx(m)
	defer cancel()
	asm := newAssembler(maxWritePayload)
	done, err := asm.add(m.Header, m.Data)
	if err == nil && !done {
		err = s.receive(ctx, m.Reply, asm)
	}
	if err != nil {
		s.answerError(m.Reply, fmt.Errorf("receive write request: %w", err))
		return
	}
	req, err := decodeWrite(s.ws, asm.payload())
	if err != nil {
		s.answerError(m.Reply, err)
		return
	}
	ev, err := s.local.WriteFile(ctx, req)
	if err != nil {
		s.answerError(m.Reply, err)
		return
	}
	s.answer(m.Reply, result{Event: &ev})
}

// receive asks the client for the rest of a request's chunks and adds
// them to asm until it is complete.
func (s *server) receive(ctx context.Context, reply string, asm *assembler) error {
	upload := s.nc.NewInbox()
	box, err := listen(s.nc, upload, maxWritePayload)
	if err != nil {
		return err
	}
	defer box.close()
	more := nats.NewMsg(reply)
	more.Header.Set(hdrKind, kindMore)
	more.Header.Set(hdrUpload, upload)
	if err := s.nc.PublishMsg(more); err != nil {
		return fmt.Errorf("ask for the rest: %w", err)
	}
	for {
		m, err := box.next(ctx)
		if err != nil {
			return fmt.Errorf("wait for chunk %d: %w", asm.next, err)
		}
		done, err := asm.add(m.Header, m.Data)
		if err != nil || done {
			return err
		}
	}
}

func (s *server) files(m *nats.Msg) {
	ctx, cancel := s.requestCtx(m)
	defer cancel()
	asm := newAssembler(maxFilesPayload)
	done, err := asm.add(m.Header, m.Data)
	if err == nil && !done {
		err = fmt.Errorf("%w: a files request of several chunks", errProtocol)
	}
	var req filesRequest
	if err == nil {
		if jerr := json.Unmarshal(asm.payload(), &req); jerr != nil {
			err = fmt.Errorf("%w: files request: %v", errProtocol, jerr)
		}
	}
	if err != nil {
		s.answerError(m.Reply, fmt.Errorf("receive files request: %w", err))
		return
	}
	l, err := s.local.Files(ctx, s.ws, req.Prefix)
	if err != nil {
		s.answerError(m.Reply, err)
		return
	}
	s.answer(m.Reply, result{Listing: &l})
}

// answerError answers with err; a cancellation because Serve stopped
// becomes ErrNoLeader, since nothing was done and another hub will serve.
func (s *server) answerError(reply string, err error) {
	if s.life.Err() != nil && errors.Is(err, context.Canceled) && !errors.Is(err, ErrNoLeader) {
		err = fmt.Errorf("%w: the hub that watched %s stopped: %w", ErrNoLeader, s.ws, err)
	}
	s.answer(reply, result{Error: newWireError(err)})
}

// answer sends r to reply as chunks.
func (s *server) answer(reply string, r result) {
	payload, err := json.Marshal(r)
	switch {
	case err != nil:
		payload, _ = json.Marshal(result{Error: newWireError(fmt.Errorf("encode answer: %w", err))})
	case len(payload) > MaxListing:
		err = &events.Error{Kind: events.ErrTooLarge, Value: s.ws, Why: fmt.Sprintf("a listing of %d bytes, the relay carries at most %d; list a narrower prefix", len(payload), MaxListing)}
		payload, _ = json.Marshal(result{Error: newWireError(err)})
	}
	chunks := split(payload, chunkSize(s.nc))
	for i, ch := range chunks {
		msg := chunkMsg(reply, i, len(payload), ch)
		msg.Header.Set(hdrKind, kindResult)
		if err := s.nc.PublishMsg(msg); err != nil {
			s.log.Warn("answer relayed request", "chunk", i, "chunks", len(chunks), "err", err)
			return
		}
	}
}
