package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"

	"github.com/sourcegraph/conc"

	"github.com/filecast/filecast/events/daemon"
	"github.com/filecast/filecast/events/hub"
	"github.com/filecast/filecast/events/journal"
	"github.com/filecast/filecast/events/lock"
	"github.com/filecast/filecast/events/natsd"
	"github.com/filecast/filecast/events/watch"
)

// stack is an embedded hub: the data-folder lock, the NATS server, the
// journal, the hub, its lock manager and one watcher per workspace. openStack starts nothing
// that runs on its own; run drives the loops and close releases the rest.
type stack struct {
	lock     *daemon.Lock
	nats     *natsd.Server
	journal  *journal.Journal
	hub      *hub.Hub
	locks    *lock.Manager
	watchers []*watch.Watcher
	log      *slog.Logger
}

func openStack(ctx context.Context, c *stackConfig, log *slog.Logger, progress io.Writer) (_ *stack, err error) {
	s := &stack{log: log}
	defer func() {
		if err != nil {
			s.close()
		}
	}()
	s.lock, err = daemon.Acquire(c.data)
	if err != nil {
		return nil, err
	}
	s.nats, err = natsd.Start(ctx, natsd.Options{
		StoreDir: filepath.Join(c.data, "jetstream"),
		URL:      c.natsURL,
		Logger:   log.With("component", "nats"),
	})
	if err != nil {
		return nil, fmt.Errorf("start event log: %w", err)
	}
	s.journal, err = journal.Open(ctx, s.nats.Conn(), journal.Options{
		MaxAge:    c.maxAge,
		MaxEvents: c.maxEvents,
		Logger:    log.With("component", "journal"),
	})
	if err != nil {
		return nil, fmt.Errorf("open event log: %w", err)
	}
	for _, ws := range c.workspaces {
		if err := s.journal.Ensure(ctx, ws.Name); err != nil {
			return nil, fmt.Errorf("open log of workspace %s: %w", ws.Name, err)
		}
	}
	s.hub, err = hub.New(hub.Options{
		Workspaces: c.workspaces,
		Log:        s.journal,
		Logger:     log.With("component", "hub"),
	})
	if err != nil {
		return nil, err
	}
	// The lock manager appends its events to the hub, so it comes second.
	s.locks, err = lock.Open(ctx, s.nats.Conn(), s.hub, lock.Options{Logger: log.With("component", "lock")})
	if err != nil {
		return nil, fmt.Errorf("open locks: %w", err)
	}
	s.hub.SetLocks(s.locks)
	for _, ws := range c.workspaces {
		w, err := watch.New(watch.Options{
			Workspace: ws,
			Ignore:    c.ignorer,
			IndexPath: filepath.Join(c.data, "index", ws.Name+".json"),
			Settle:    c.settle,
			Logger:    log,
			Progress:  progress,
		}, s.hub)
		if err != nil {
			return nil, fmt.Errorf("watch workspace %s: %w", ws.Name, err)
		}
		s.hub.SetIndex(ws.Name, w)
		s.watchers = append(s.watchers, w)
	}
	return s, nil
}

// run blocks until ctx is done or a loop fails; every loop has stopped
// when it returns.
func (s *stack) run(ctx context.Context) error {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var wg conc.WaitGroup
	loop := func(name string, f func(context.Context) error) {
		wg.Go(func() {
			if err := f(ctx); err != nil && !errors.Is(err, context.Canceled) {
				cancel(fmt.Errorf("%s: %w", name, err))
			}
		})
	}
	loop("hub", s.hub.Run)
	loop("locks", s.locks.Run)
	for _, w := range s.watchers {
		loop("watcher", w.Run)
	}
	wg.Wait()
	if err := context.Cause(ctx); err != nil && !errors.Is(err, context.Canceled) {
		return err
	}
	return nil
}

// waitReady returns when every watcher has indexed its workspace and the
// lock manager has loaded the current locks.
func (s *stack) waitReady(ctx context.Context) error {
	select {
	case <-s.locks.Ready():
	case <-ctx.Done():
		return ctx.Err()
	}
	for _, w := range s.watchers {
		select {
		case <-w.Ready():
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}

func (s *stack) close() {
	if s.locks != nil {
		_ = s.locks.Close()
	}
	if s.journal != nil {
		if err := s.journal.Close(); err != nil {
			s.log.Warn("close journal", "err", err)
		}
	}
	if s.nats != nil {
		if err := s.nats.Close(); err != nil {
			s.log.Warn("close nats", "err", err)
		}
	}
	if s.lock != nil {
		_ = s.lock.Release()
	}
}
