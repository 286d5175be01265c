package main

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"slices"
	"sync"
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
	err = retryOpen(ctx, func(ctx context.Context) (err error) {
		s.members, err = openMembers(ctx, js, s.cfg.hubID, s.nats.Replicas())
		return err
	})
	if err != nil {
		return err
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
		if !sleepCtx(ctx, termPause) {
			return nil
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

// membersBucket holds one key per live hub of the cluster, kept alive by
// the hub and gone memberTTL after it stops renewing it.
const membersBucket = "FILECAST_HUBS"

const (
	memberTTL   = 10 * time.Second
	memberRenew = 3 * time.Second
)

// members is this hub's view of the live hubs of the cluster, used to
// spread webhook deliveries over them: each webhook belongs to the live
// hub that ranks highest for it (rendezvous hashing), so every hub agrees
// without talking to the others, and only the webhooks of a hub that
// joins or leaves move.
type members struct {
	kv   jetstream.KeyValue
	self string // this hub's key
	mu   sync.Mutex
	live []string // keys of the live hubs, this one included
}

func openMembers(ctx context.Context, js jetstream.JetStream, hubID string, replicas int) (*members, error) {
	kv, err := js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket:      membersBucket,
		Description: "filecast hubs of this cluster",
		History:     1,
		TTL:         memberTTL,
		Storage:     jetstream.FileStorage,
		Replicas:    replicas,
	})
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", membersBucket, err)
	}
	self := leader.Key(hubID)
	return &members{kv: kv, self: self, live: []string{self}}, nil
}

// run renews this hub's key and refreshes the list of live hubs until ctx
// is done; failures keep the last list.
func (m *members) run(ctx context.Context) error {
	t := time.NewTicker(memberRenew)
	defer t.Stop()
	for {
		m.refresh(ctx)
		select {
		case <-ctx.Done():
			dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Second)
			_ = m.kv.Delete(dctx, m.self) // leave at once rather than after memberTTL
			cancel()
			return nil
		case <-t.C:
		}
	}
}

func (m *members) refresh(ctx context.Context) {
	ctx, cancel := context.WithTimeout(ctx, memberRenew)
	defer cancel()
	if _, err := m.kv.Put(ctx, m.self, nil); err != nil {
		return
	}
	lister, err := m.kv.ListKeys(ctx)
	if err != nil {
		return
	}
	live := []string{m.self}
	for k := range lister.Keys() {
		if k != m.self {
			live = append(live, k)
		}
	}
	slices.Sort(live)
	m.mu.Lock()
	m.live = live
	m.mu.Unlock()
}

// mine reports whether webhook id belongs to this hub.
func (m *members) mine(id string) bool {
	m.mu.Lock()
	live := m.live
	m.mu.Unlock()
	best, bestScore := "", uint64(0)
	for _, k := range live {
		h := fnv.New64a()
		h.Write([]byte(id))
		h.Write([]byte{0})
		h.Write([]byte(k))
		if s := mix(h.Sum64()); best == "" || s > bestScore {
			best, bestScore = k, s
		}
	}
	return best == m.self
}

// mix spreads the bits of an FNV hash (whose last bytes barely move its
// high bits) so that scores of similar keys are independent: the
// finaliser of splitmix64.
func mix(x uint64) uint64 {
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	return x ^ x>>31
}
