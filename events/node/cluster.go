package node

import (
	"context"
	"errors"
	"fmt"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/sourcegraph/conc"

	"github.com/filecast/filecast/events/leader"
	"github.com/filecast/filecast/events/natsd"
	"github.com/filecast/filecast/events/relay"
	"github.com/filecast/filecast/events/workspace"
)

// leaderBucket is the KV bucket of the workspace watch elections.
const leaderBucket = "FILECAST_LEADERS"

// openCluster prepares a hub that shares an external NATS cluster with
// other hubs: an elector for the workspace watches, and a relay through
// which this hub forwards writes and listings of the workspaces it does
// not watch to the hub that does.
func (s *Node) openCluster(ctx context.Context) error {
	js, err := jetstream.New(s.nats.Conn())
	if err != nil {
		return fmt.Errorf("open elections: %w", err)
	}
	err = natsd.RetryOpen(ctx, func(ctx context.Context) (err error) {
		s.elector, err = leader.New(ctx, js, leader.Options{
			Bucket:   leaderBucket,
			TTL:      s.cfg.LeaderTTL,
			Replicas: s.nats.Replicas(),
			Logger:   s.log.With("component", "leader"),
		})
		return err
	})
	if err != nil {
		return fmt.Errorf("open elections: %w", err)
	}
	err = natsd.RetryOpen(ctx, func(ctx context.Context) (err error) {
		s.members, err = leader.OpenMembers(ctx, js, "", s.cfg.HubID, s.nats.Replicas())
		return err
	})
	if err != nil {
		return err
	}
	rc := relay.New(s.nats.Conn(), relay.Options{Logger: s.log.With("component", "relay")})
	for _, ws := range s.cfg.Workspaces {
		s.hub.SetRelay(ws.Name, rc)
	}
	return nil
}

// watchTerm is one term of this hub as the watcher of ws.
func (s *Node) watchTerm(ctx context.Context, ws workspace.Workspace) error {
	w, err := s.newWatcher(ws)
	if err != nil {
		return err
	}
	s.hub.SetIndex(ws.Name, w)
	s.log.Info("watching workspace", "workspace", ws.Name, "hub", s.cfg.HubID)
	ctx, cancel := context.WithCancelCause(ctx)
	defer func() {
		s.live.CompareAndDelete(ws.Name, w)
		s.hub.SetIndex(ws.Name, nil)
		s.log.Info("stopped watching workspace", "workspace", ws.Name, "hub", s.cfg.HubID, "why", context.Cause(ctx))
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
