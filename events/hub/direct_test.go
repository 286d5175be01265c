package hub_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/sourcegraph/conc"

	"github.com/filecast/filecast/events"
	"github.com/filecast/filecast/events/hub"
	"github.com/filecast/filecast/events/workspace"
)

// gatedLog is a memLog whose follower delivers nothing until open is
// closed, as if the log were slow to send the hub its own appends back.
type gatedLog struct {
	*memLog
	open chan struct{}
}

func (g *gatedLog) FollowSkipping(ctx context.Context, ws string, after uint64, skip func(uint64) bool, fn func(events.Event) error) error {
	select {
	case <-g.open:
	case <-ctx.Done():
		return ctx.Err()
	}
	return g.memLog.FollowSkipping(ctx, ws, after, skip, fn)
}

func startGated(t *testing.T) (*hub.Hub, *gatedLog) {
	t.Helper()
	log := &gatedLog{memLog: newMemLog(), open: make(chan struct{})}
	h, err := hub.New(hub.Options{Workspaces: []workspace.Workspace{{Name: "docs", Dir: t.TempDir()}}, Log: log})
	if err != nil {
		t.Fatal(err)
	}
	runHub(t, h)
	return h, log
}

// TestHub_AppendFansOutAtOnce checks that the hub's own appends reach
// subscribers and Changes without waiting for the follower.
func TestHub_AppendFansOutAtOnce(t *testing.T) {
	h, _ := startGated(t)
	ctx, cancel := context.WithTimeout(context.Background(), deadline)
	defer cancel()
	appendN(t, h, "docs", 3)
	got, err := collect(ctx, h, "docs", 0, 3)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(seqRange(1, 3), got); diff != "" {
		t.Errorf("Subscribe (-want +got):\n%s", diff)
	}
	p, err := h.Changes(ctx, "docs", 0, 10, 0)
	if err != nil || len(p.Events) != 3 || p.Next != 3 {
		t.Errorf("Changes = %d events, next %d, %v; want 3, 3", len(p.Events), p.Next, err)
	}
}

// TestHub_AppendAfterUnseenWaits checks that an event the hub appended
// after one it has not seen yet (another writer's) does not go out ahead
// of it: the follower brings the missing one, then both go out in order.
func TestHub_AppendAfterUnseenWaits(t *testing.T) {
	h, log := startGated(t)
	ctx, cancel := context.WithTimeout(context.Background(), deadline)
	defer cancel()
	if _, err := log.Append(ctx, fileEvent("docs", 0)); err != nil { // seq 1, behind the hub's back
		t.Fatal(err)
	}
	ev, err := h.Append(ctx, fileEvent("docs", 1)) // seq 2
	if err != nil || ev.Seq != 2 {
		t.Fatalf("Append = seq %d, %v; want 2", ev.Seq, err)
	}
	p, err := h.Changes(ctx, "docs", 0, 10, 0)
	if err != nil || len(p.Events) != 0 || p.Next != 0 {
		t.Fatalf("Changes before the follower = %d events, next %d, %v; want none at 0", len(p.Events), p.Next, err)
	}
	close(log.open)
	var got []events.Event
	err = h.Subscribe(ctx, "docs", 0, func(ev events.Event) error {
		got = append(got, ev)
		if ev.Seq >= 2 {
			return errEnough
		}
		return nil
	})
	if err != errEnough {
		t.Fatal(err)
	}
	want := []string{"1 dir/f0.txt", "2 dir/f1.txt"}
	var gotS []string
	for _, ev := range got {
		gotS = append(gotS, fmt.Sprintf("%d %s", ev.Seq, ev.Path))
	}
	if diff := cmp.Diff(want, gotS); diff != "" {
		t.Errorf("Subscribe (-want +got):\n%s", diff)
	}
}

// TestHub_AppendDuplicateOnce checks that appending an event ID the log
// already holds gives the original seq and is delivered once.
func TestHub_AppendDuplicateOnce(t *testing.T) {
	h, log := startGated(t)
	close(log.open)
	ctx, cancel := context.WithTimeout(context.Background(), deadline)
	defer cancel()
	ev := fileEvent("docs", 0)
	ev.ID = "01JDX5AAAAAAAAAAAAAAAAAAAA"
	first, err := h.Append(ctx, ev)
	if err != nil {
		t.Fatal(err)
	}
	ev.Path = "other.txt"
	again, err := h.Append(ctx, ev)
	if err != nil || again.Seq != first.Seq {
		t.Fatalf("second Append = seq %d, %v; want %d", again.Seq, err, first.Seq)
	}
	appendN(t, h, "docs", 1)
	var got []string
	err = h.Subscribe(ctx, "docs", 0, func(ev events.Event) error {
		got = append(got, fmt.Sprintf("%d %s", ev.Seq, ev.Path))
		if ev.Seq >= 2 {
			return errEnough
		}
		return nil
	})
	if err != errEnough {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"1 dir/f0.txt", "2 dir/f0.txt"}, got); diff != "" {
		t.Errorf("Subscribe (-want +got):\n%s", diff)
	}
}

// TestHub_ConcurrentAppendsInOrder appends from several goroutines, whose
// acknowledgements race, and checks that every subscriber sees every seq
// once and in order, with the follower running as usual.
func TestHub_ConcurrentAppendsInOrder(t *testing.T) {
	const writers, each = 8, 200
	log := newMemLog()
	h := startHub(t, log, hub.Options{Queue: writers * each})
	ctx, cancel := context.WithTimeout(context.Background(), deadline)
	defer cancel()
	var subs conc.WaitGroup
	results := make([][]uint64, 3)
	for i := range results {
		// Whether a subscriber attaches before, during or after the
		// appends, it must see the same: the ring holds them all.
		subs.Go(func() {
			got, err := collect(ctx, h, "docs", 0, writers*each)
			if err != nil {
				t.Error(err)
			}
			results[i] = got
		})
	}
	var wg conc.WaitGroup
	for w := range writers {
		wg.Go(func() {
			for i := range each {
				if _, err := h.Append(ctx, fileEvent("docs", w*each+i)); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	subs.Wait()
	for i, got := range results {
		if diff := cmp.Diff(seqRange(1, writers*each), got); diff != "" {
			t.Errorf("subscriber %d (-want +got):\n%s", i, diff)
		}
	}
}
