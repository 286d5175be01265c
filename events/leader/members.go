package leader

import (
	"context"
	"fmt"
	"hash/fnv"
	"slices"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// DefaultMembersBucket is the key-value bucket of OpenMembers when its
// bucket is empty: one key per live hub of a cluster.
const DefaultMembersBucket = "FILECAST_HUBS"

// A member's key lives memberTTL after its last renewal, renewed every
// memberRenew.
const (
	memberTTL   = 10 * time.Second
	memberRenew = 3 * time.Second
)

// Members is one process's view of the live members of a cluster, used to
// spread work (webhook deliveries) over them: each item belongs to the
// live member that ranks highest for it (rendezvous hashing), so every
// member agrees without talking to the others, and only the items of a
// member that joins or leaves move. Each member keeps a key alive in a
// key-value bucket (Run); a member that stops renewing it is gone
// memberTTL (10 s) later, one that stops cleanly at once. Its methods are
// safe for concurrent use.
type Members struct {
	kv   jetstream.KeyValue
	self string // this member's key
	mu   sync.Mutex
	live []string // keys of the live members, this one included
}

// OpenMembers creates or updates the members bucket (DefaultMembersBucket
// when bucket is empty, with replicas copies) through js and returns the
// view of the member called id, which alone is live until Run has listed
// the others.
func OpenMembers(ctx context.Context, js jetstream.JetStream, bucket, id string, replicas int) (*Members, error) {
	if bucket == "" {
		bucket = DefaultMembersBucket
	}
	kv, err := js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket:      bucket,
		Description: "filecast hubs of this cluster",
		History:     1,
		TTL:         memberTTL,
		Storage:     jetstream.FileStorage,
		Replicas:    replicas,
	})
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", bucket, err)
	}
	self := Key(id)
	return &Members{kv: kv, self: self, live: []string{self}}, nil
}

// Run renews this member's key and refreshes the list of live members
// until ctx is done, then removes the key so that the others take its
// items over at once. A failed renewal or listing keeps the last list.
// It returns nil.
func (m *Members) Run(ctx context.Context) error {
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

func (m *Members) refresh(ctx context.Context) {
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

// Live returns the keys (see Key) of the members this one sees live,
// itself included, sorted.
func (m *Members) Live() []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return slices.Clone(m.live)
}

// Mine reports whether item belongs to this member.
func (m *Members) Mine(item string) bool {
	m.mu.Lock()
	live := m.live
	m.mu.Unlock()
	best, bestScore := "", uint64(0)
	for _, k := range live {
		h := fnv.New64a()
		h.Write([]byte(item))
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
