package hub_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/filecast/filecast/events"
	"github.com/filecast/filecast/events/eventstest"
	"github.com/filecast/filecast/events/hub"
)

func TestHub_Changes(t *testing.T) {
	for _, ringSize := range []int{4, 4096} {
		t.Run(fmt.Sprintf("ring %d", ringSize), func(t *testing.T) {
			log := newJournal(t)
			h := startHub(t, log, hub.Options{Ring: ringSize})
			appendN(t, h, "docs", 10)
			ctx := context.Background()
			eventstest.Eventually(t, "head", func() bool {
				ws, _ := h.Workspaces(ctx)
				return ws[0].Head == 10
			})
			tests := []struct {
				after    uint64
				limit    int
				want     []uint64
				next     uint64
				hasMore  bool
				describe string
			}{
				{0, 3, []uint64{1, 2, 3}, 3, true, "first page"},
				{3, 3, []uint64{4, 5, 6}, 6, true, "middle page"},
				{7, 10, []uint64{8, 9, 10}, 10, false, "last page"},
				{6, 4, []uint64{7, 8, 9, 10}, 10, false, "exactly to head"},
				{10, 5, []uint64{}, 10, false, "at head"},
				{50, 5, []uint64{}, 50, false, "past head"},
			}
			for _, tc := range tests {
				p, err := h.Changes(ctx, "docs", tc.after, tc.limit, 0)
				if err != nil {
					t.Fatalf("%s: %v", tc.describe, err)
				}
				if diff := cmp.Diff(tc.want, seqs(p.Events)); diff != "" {
					t.Errorf("%s: seqs (-want +got):\n%s", tc.describe, diff)
				}
				if p.Next != tc.next || p.HasMore != tc.hasMore {
					t.Errorf("%s: Next, HasMore = %d, %v; want %d, %v", tc.describe, p.Next, p.HasMore, tc.next, tc.hasMore)
				}
				if p.Events == nil {
					t.Errorf("%s: Events is nil, want empty", tc.describe)
				}
			}
		})
	}
}

func TestHub_ChangesLimits(t *testing.T) {
	log := newJournal(t)
	h := startHub(t, log, hub.Options{Ring: 64})
	appendN(t, h, "docs", 1100)
	ctx := context.Background()
	for _, tc := range []struct{ limit, want int }{{0, 100}, {-1, 100}, {5000, 1000}, {7, 7}} {
		p, err := h.Changes(ctx, "docs", 0, tc.limit, 0)
		if err != nil {
			t.Fatal(err)
		}
		if len(p.Events) != tc.want || !p.HasMore {
			t.Errorf("limit %d: %d events, HasMore %v; want %d, true", tc.limit, len(p.Events), p.HasMore, tc.want)
		}
	}
}

func TestHub_ChangesWait(t *testing.T) {
	log := newJournal(t)
	h := startHub(t, log, hub.Options{})
	appendN(t, h, "docs", 2)
	ctx := context.Background()
	eventstest.Eventually(t, "head", func() bool {
		ws, _ := h.Workspaces(ctx)
		return ws[0].Head == 2
	})

	t.Run("new event", func(t *testing.T) {
		type result struct {
			p   events.Page
			err error
		}
		res := make(chan result, 1)
		go func() {
			p, err := h.Changes(ctx, "docs", 2, 10, deadline)
			res <- result{p, err}
		}()
		appendN(t, h, "docs", 1)
		r := <-res
		if r.err != nil {
			t.Fatal(r.err)
		}
		if diff := cmp.Diff([]uint64{3}, seqs(r.p.Events)); diff != "" {
			t.Errorf("(-want +got):\n%s", diff)
		}
	})
	t.Run("times out", func(t *testing.T) {
		start := time.Now()
		p, err := h.Changes(ctx, "docs", 3, 10, 30*time.Millisecond)
		if err != nil {
			t.Fatal(err)
		}
		if len(p.Events) != 0 || p.Next != 3 {
			t.Errorf("page = %+v, want empty with Next 3", p)
		}
		if d := time.Since(start); d < 30*time.Millisecond {
			t.Errorf("returned after %v, before the wait elapsed", d)
		}
	})
	t.Run("context done", func(t *testing.T) {
		cctx, cancel := context.WithTimeout(ctx, 20*time.Millisecond)
		defer cancel()
		_, err := h.Changes(cctx, "docs", 3, 10, deadline)
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("Changes = %v, want context.DeadlineExceeded", err)
		}
	})
}

func TestHub_ChangesBeforeRunAndExpired(t *testing.T) {
	log := newMemLog()
	h := newHub(t, log, hub.Options{Ring: 4})
	appendN(t, h, "docs", 20)
	ctx := context.Background()
	p, err := h.Changes(ctx, "docs", 18, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]uint64{19, 20}, seqs(p.Events)); diff != "" {
		t.Errorf("before Run (-want +got):\n%s", diff)
	}
	runHub(t, h)
	log.drop("docs", 10)
	if _, err := h.Changes(ctx, "docs", 5, 0, 0); !errors.Is(err, events.ErrCursorExpired) {
		t.Errorf("Changes after dropped = %v, want ErrCursorExpired", err)
	}
	p, err = h.Changes(ctx, "docs", 12, 3, 0)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]uint64{13, 14, 15}, seqs(p.Events)); diff != "" || !p.HasMore {
		t.Errorf("after 12 (-want +got):\n%s, HasMore %v", diff, p.HasMore)
	}
}
