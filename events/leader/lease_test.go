package leader_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/filecast/filecast/events/leader"
)

// bucket is a key-value bucket that can become unreachable, as when the
// NATS node goes away: then every request waits for its context to end.
// It injects that fault; only what the Elector calls is implemented.
type bucket struct {
	jetstream.KeyValue

	mu    sync.Mutex
	rev   uint64
	down  bool
	acked []time.Time // when each create or renewal was answered
}

// stream is the JetStream context the Elector is given: the bucket, and
// the publish of its renewals.
type stream struct {
	jetstream.JetStream
	b *bucket
}

func (s stream) CreateOrUpdateKeyValue(context.Context, jetstream.KeyValueConfig) (jetstream.KeyValue, error) {
	return s.b, nil
}

func (s stream) PublishMsg(ctx context.Context, _ *nats.Msg, _ ...jetstream.PublishOpt) (*jetstream.PubAck, error) {
	rev, err := s.b.answer(ctx, true)
	if err != nil {
		return nil, err
	}
	return &jetstream.PubAck{Sequence: rev}, nil
}

// answer waits for ctx while the bucket is down; otherwise it records an
// acknowledged write and returns its revision.
func (b *bucket) answer(ctx context.Context, write bool) (uint64, error) {
	b.mu.Lock()
	down := b.down
	b.mu.Unlock()
	if down {
		<-ctx.Done()
		return 0, ctx.Err()
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if write {
		b.rev++
		b.acked = append(b.acked, time.Now())
	}
	return b.rev, nil
}

func (b *bucket) Create(ctx context.Context, _ string, _ []byte, _ ...jetstream.KVCreateOpt) (uint64, error) {
	return b.answer(ctx, true)
}

func (b *bucket) Purge(ctx context.Context, _ string, _ ...jetstream.KVDeleteOpt) error {
	_, err := b.answer(ctx, false)
	return err
}

func (b *bucket) Get(ctx context.Context, _ string) (jetstream.KeyValueEntry, error) {
	if _, err := b.answer(ctx, false); err != nil {
		return nil, err
	}
	return nil, jetstream.ErrKeyNotFound
}

func (b *bucket) Watch(ctx context.Context, _ string, _ ...jetstream.WatchOpt) (jetstream.KeyWatcher, error) {
	if _, err := b.answer(ctx, false); err != nil {
		return nil, err
	}
	return quiet{}, nil
}

// quiet is a watch that sees no change.
type quiet struct{}

func (quiet) Updates() <-chan jetstream.KeyValueEntry { return nil }
func (quiet) Stop() error                             { return nil }

// TestElector_LeaseBound: renewed every TTL/3, a lease the bucket stops
// answering ends, by the local clock, TTL − TTL/4 after the last write the
// bucket acknowledged: before the server can expire the key (no earlier
// than TTL after it) and let another hub lead.
func TestElector_LeaseBound(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const ttl = 4 * time.Second
		b := &bucket{}
		e, err := leader.New(t.Context(), stream{b: b}, leader.Options{TTL: ttl})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(t.Context())
		defer cancel()
		ran := make(chan error, 1)
		type end struct {
			cause error
			at    time.Time
		}
		ended := make(chan end, 1)
		go func() {
			ran <- e.Run(ctx, "ws", "hub0", func(ctx context.Context) error {
				<-ctx.Done()
				ended <- end{context.Cause(ctx), time.Now()}
				return nil
			})
		}()
		time.Sleep(2 * time.Second) // the fake clock: one renewal, at TTL/3
		b.mu.Lock()
		b.down = true
		last := b.acked[len(b.acked)-1]
		renewals := len(b.acked) - 1
		b.mu.Unlock()
		if renewals != 1 {
			t.Fatalf("%d renewals in 2s, want 1 (every TTL/3)", renewals)
		}
		res := <-ended
		if !errors.Is(res.cause, leader.ErrLost) {
			t.Errorf("lead ended by %v, want ErrLost", res.cause)
		}
		if got, want := res.at.Sub(last), ttl-ttl/4; got != want {
			t.Errorf("lead ended %v after the last acknowledged renewal, want %v", got, want)
		}
		cancel()
		if err := <-ran; err != nil {
			t.Errorf("Run = %v", err)
		}
	})
}
