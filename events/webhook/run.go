package webhook

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/sourcegraph/conc"

	"github.com/filecast/filecast/events"
	"github.com/filecast/filecast/events/internal/wait"
)

const (
	rewatchDelay = 250 * time.Millisecond
	// retryDelay is how long a webhook's loop waits after an error of the
	// store (not of the endpoint) before it tries again.
	retryDelay = time.Second
)

// entry is the cached registration of one webhook.
type entry struct {
	rev     uint64
	rec     *record
	matcher matcher
}

// remember caches rec at rev unless a newer revision is known.
func (d *Dispatcher) remember(id string, rev uint64, rec *record) {
	m, err := newMatcher(rec)
	if err != nil {
		d.log.Error("stored webhook has an invalid filter", "webhook", id, "err", err)
	}
	d.cacheMu.Lock()
	defer d.cacheMu.Unlock()
	if e := d.cache[id]; e != nil && rev <= e.rev {
		return
	}
	d.cache[id] = &entry{rev: rev, rec: rec, matcher: m}
}

func (d *Dispatcher) forget(id string) {
	d.cacheMu.Lock()
	delete(d.cache, id)
	d.cacheMu.Unlock()
}

func (d *Dispatcher) cached(id string) *entry {
	d.cacheMu.RLock()
	defer d.cacheMu.RUnlock()
	return d.cache[id]
}

// Run verifies pending webhooks, delivers events to active ones (one
// delivery loop per webhook, each with its own goroutine in a conc group),
// retries and disables, until ctx is done or the Dispatcher is closed; it
// then stops every loop, waits for them and returns nil. An attempt in
// flight is abandoned. It follows the registrations in the bucket, so
// webhooks registered or deleted through any hub on the same NATS are
// picked up. Call it once per Dispatcher; it returns ErrRunning if it is
// already running, events.ErrClosed after Close, and an error if the
// connection is closed.
func (d *Dispatcher) Run(ctx context.Context) error {
	d.mu.Lock()
	if d.closed() {
		d.mu.Unlock()
		return fmt.Errorf("run webhooks: %w", events.ErrClosed)
	}
	if !d.running.CompareAndSwap(false, true) {
		d.mu.Unlock()
		return ErrRunning
	}
	d.runs.Add(1)
	d.mu.Unlock()
	defer d.runs.Done()
	defer d.running.Store(false)

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stop := context.AfterFunc(d.closing, cancel)
	defer stop()

	s := &supervisor{d: d, ctx: ctx, workers: map[string]*worker{}}
	defer s.stopAll()
	for {
		err := s.watch()
		if ctx.Err() != nil {
			return nil
		}
		if d.nc.IsClosed() {
			return fmt.Errorf("watch webhooks: %w", events.ErrClosed)
		}
		d.log.Warn("webhook registrations watch ended; watching again", "err", err)
		if !wait.Sleep(ctx, rewatchDelay) {
			return nil
		}
	}
}

// supervisor starts and stops the loop of each webhook as the bucket
// changes. It is used by Run's goroutine only.
type supervisor struct {
	d       *Dispatcher
	ctx     context.Context
	wg      conc.WaitGroup
	workers map[string]*worker
}

type worker struct {
	cancel context.CancelFunc
	done   chan struct{}
}

func (s *supervisor) watch() error {
	w, err := s.d.hooks.WatchAll(s.ctx)
	if err != nil {
		return err
	}
	defer func() { _ = w.Stop() }()
	for {
		select {
		case <-s.ctx.Done():
			return nil
		case e, ok := <-w.Updates():
			if !ok {
				return errors.New("watcher closed")
			}
			if e == nil {
				continue // the initial values are all in
			}
			s.apply(e)
		}
	}
}

func (s *supervisor) apply(e jetstream.KeyValueEntry) {
	id := e.Key()
	if e.Operation() != jetstream.KeyValuePut {
		s.d.forget(id)
		s.reconcile(id)
		return
	}
	rec, err := decodeRecord(e.Value())
	if err != nil {
		s.d.log.Error("cannot read webhook registration", "webhook", id, "err", err)
		return
	}
	s.d.remember(id, e.Revision(), rec)
	s.reconcile(id)
}

// reconcile runs the loop of id exactly when the webhook is pending or
// active.
func (s *supervisor) reconcile(id string) {
	want := false
	if e := s.d.cached(id); e != nil {
		want = e.rec.Status == StatusPending || e.rec.Status == StatusActive
	}
	w := s.workers[id]
	if w != nil {
		select {
		case <-w.done:
			delete(s.workers, id)
			w = nil
		default:
		}
	}
	switch {
	case want && w == nil:
		ctx, cancel := context.WithCancel(s.ctx)
		w = &worker{cancel: cancel, done: make(chan struct{})}
		s.workers[id] = w
		s.wg.Go(func() {
			defer close(w.done)
			s.d.runWebhook(ctx, id)
		})
	case !want && w != nil:
		w.cancel()
		delete(s.workers, id)
	}
}

func (s *supervisor) stopAll() {
	for _, w := range s.workers {
		w.cancel()
	}
	s.wg.Wait()
}

// runWebhook is the loop of one webhook: it confirms a pending endpoint,
// then delivers until the webhook stops being active or ctx is done.
func (d *Dispatcher) runWebhook(ctx context.Context, id string) {
	log := d.log.With("webhook", id)
	for ctx.Err() == nil {
		e := d.cached(id)
		if e == nil {
			return
		}
		var err error
		switch e.rec.Status {
		case StatusPending:
			err = d.confirm(ctx, e.rec)
		case StatusActive:
			if mine := d.opts.Mine; mine != nil && !mine(id) {
				// Another process delivers it; look again later.
				if !wait.Sleep(ctx, mineRecheck) {
					return
				}
				continue
			}
			err = d.deliverAll(ctx, id)
		default:
			return
		}
		if err != nil && ctx.Err() == nil {
			log.Warn("webhook loop failed; trying again", "err", err)
			if !wait.Sleep(ctx, retryDelay) {
				return
			}
		}
	}
}

// mineRecheck is how often a webhook that Options.Mine gives to another
// process is looked at again, and how often a delivering process checks
// that it is still its own.
const mineRecheck = time.Second

// deliverAll runs the live and the replay consumer of an active webhook
// until it is no longer active (or no longer Options.Mine) or ctx is done.
// When the webhook goes to another process, or one lane ends, the lanes
// are released: each finishes and settles the attempt it has in flight,
// then gives the rest back. Abandoning the attempt instead would have the
// next owner post again an event the endpoint may have accepted. Only ctx
// (shutdown) abandons it.
func (d *Dispatcher) deliverAll(ctx context.Context, id string) error {
	release, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg conc.WaitGroup
	if mine := d.opts.Mine; mine != nil {
		wg.Go(func() {
			t := time.NewTicker(mineRecheck)
			defer t.Stop()
			for {
				select {
				case <-release.Done():
					return
				case <-t.C:
					if !mine(id) {
						d.log.Info("webhook given to another process; handing its events over", "webhook", id)
						cancel() // the lanes hand their messages back and unpin
						return
					}
				}
			}
		})
	}
	var liveErr, replayErr error
	wg.Go(func() {
		liveErr = d.consume(ctx, release, id, false)
		cancel()
	})
	wg.Go(func() {
		replayErr = d.consume(ctx, release, id, true)
		cancel()
	})
	wg.Wait()
	return errors.Join(liveErr, replayErr)
}

// active reports whether the webhook is still active in the cache.
func (d *Dispatcher) active(id string) bool {
	e := d.cached(id)
	return e != nil && e.rec.Status == StatusActive
}
