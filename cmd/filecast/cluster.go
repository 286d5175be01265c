package main

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/sourcegraph/conc"

	"github.com/filecast/filecast/events/leader"
	"github.com/filecast/filecast/events/relay"
	"github.com/filecast/filecast/events/workspace"
)

// leaderBucket is the KV bucket of the workspace watch elections.
const leaderBucket = "FILECAST_LEADERS"

// openCluster prepares a hub that shares an external NATS cluster with
// other hubs: an elector for the workspace watches, and a relay through
// which this hub forwards writes and listings of the workspaces it does
// not watch to the hub that does.
func (s *stack) openCluster(ctx context.Context) error {
	js, err := jetstream.New(s.nats.Conn())
	if err != nil {
		return fmt.Errorf("open elections: %w", err)
	}
	err = retryOpen(ctx, func(ctx context.Context) (err error) {
		s.elector, err = leader.New(ctx, js, leader.Options{
			Bucket:   leaderBucket,
			TTL:      s.cfg.leaderTTL,
			Replicas: s.nats.Replicas(),
			Logger:   s.log.With("component", "leader"),
		})
		return err
	})
	if err != nil {
		return fmt.Errorf("open elections: %w", err)
	}
	rc := relay.New(s.nats.Conn(), relay.Options{Logger: s.log.With("component", "relay")})
	for _, ws := range s.cfg.workspaces {
		s.hub.SetRelay(ws.Name, rc)
	}
	return nil
}

// watchElected watches ws whenever this hub wins the workspace's
// election, and serves the relay meanwhile; it returns when ctx is done.
// Each term gets a new watcher: it starts from its saved index and the
// log, rescans the folder and reports what changed while another hub (or
// none) watched. A term that fails (the log unreachable while a NATS node
// is replaced, say) ends with a warning and the hub campaigns again: the
// next term's rescan reports what the failed one could not append.
func (s *stack) watchElected(ctx context.Context, ws workspace.Workspace) error {
	for {
		err := s.elector.Run(ctx, leader.Key(ws.Name), s.cfg.hubID, func(ctx context.Context) error {
			return s.watchTerm(ctx, ws)
		})
		if ctx.Err() != nil {
			return nil
		}
		s.log.Warn("watch term ended; campaigning again", "workspace", ws.Name, "hub", s.cfg.hubID, "err", err)
		pause := time.NewTimer(termPause)
		select {
		case <-ctx.Done():
			pause.Stop()
			return nil
		case <-pause.C:
		}
	}
}

// termPause is how long a hub whose watch term failed waits before it
// campaigns again, so that a healthier hub may take the watch first.
const termPause = 500 * time.Millisecond

// watchTerm is one term of this hub as the watcher of ws.
func (s *stack) watchTerm(ctx context.Context, ws workspace.Workspace) error {
	w, err := s.newWatcher(ws)
	if err != nil {
		return err
	}
	s.hub.SetIndex(ws.Name, w)
	s.log.Info("watching workspace", "workspace", ws.Name, "hub", s.cfg.hubID)
	ctx, cancel := context.WithCancelCause(ctx)
	defer func() {
		s.hub.SetIndex(ws.Name, nil)
		s.log.Info("stopped watching workspace", "workspace", ws.Name, "hub", s.cfg.hubID, "why", context.Cause(ctx))
	}()
	defer cancel(nil)
	var wg conc.WaitGroup
	wg.Go(func() {
		if err := relay.Serve(ctx, s.nats.Conn(), ws.Name, s.hub, relay.Options{Logger: s.log.With("component", "relay")}); err != nil {
			cancel(fmt.Errorf("serve relay: %w", err))
		}
	})
	err = w.Run(ctx)
	cancel(err)
	wg.Wait()
	if errors.Is(err, context.Canceled) {
		return nil
	}
	return err
}
