package hub_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/oklog/ulid/v2"
	"github.com/sourcegraph/conc"

	"github.com/filecast/filecast/events"
	"github.com/filecast/filecast/events/hub"
	"github.com/filecast/filecast/events/workspace"
)

const deadline = 10 * time.Second

var errEnough = errors.New("test: enough events")

// startHub creates a hub over log for the named workspaces, runs it until
// the test ends, and waits until it is ready.
func startHub(t testing.TB, log *memLog, opts hub.Options, names ...string) *hub.Hub {
	t.Helper()
	h := newHub(t, log, opts, names...)
	runHub(t, h)
	return h
}

func newHub(t testing.TB, log *memLog, opts hub.Options, names ...string) *hub.Hub {
	t.Helper()
	if len(names) == 0 {
		names = []string{"docs"}
	}
	dir := t.TempDir()
	for _, n := range names {
		opts.Workspaces = append(opts.Workspaces, workspace.Workspace{Name: n, Dir: dir})
	}
	opts.Log = log
	h, err := hub.New(opts)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return h
}

func runHub(t testing.TB, h *hub.Hub) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- h.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	select {
	case <-h.Ready():
	case err := <-done:
		t.Fatalf("Run returned early: %v", err)
	case <-time.After(deadline):
		t.Fatal("hub not ready")
	}
}

func fileEvent(ws string, i int) events.Event {
	return events.Event{Workspace: ws, Type: events.FileUpdated, Path: fmt.Sprintf("dir/f%d.txt", i), Actor: events.ActorFS}
}

func appendN(t testing.TB, h *hub.Hub, ws string, n int) {
	t.Helper()
	for i := range n {
		if _, err := h.Append(context.Background(), fileEvent(ws, i)); err != nil {
			t.Fatalf("Append: %v", err)
		}
	}
}

func seqs(evs []events.Event) []uint64 {
	out := make([]uint64, len(evs))
	for i, ev := range evs {
		out[i] = ev.Seq
	}
	return out
}

func seqRange(from, to uint64) []uint64 {
	var out []uint64
	for s := from; s <= to; s++ {
		out = append(out, s)
	}
	return out
}

// collect subscribes from after and returns the seqs received once the
// last one is want, or the error Subscribe returned.
func collect(ctx context.Context, h *hub.Hub, ws string, after, want uint64) ([]uint64, error) {
	var got []uint64
	err := h.Subscribe(ctx, ws, after, func(ev events.Event) error {
		got = append(got, ev.Seq)
		if ev.Seq >= want {
			return errEnough
		}
		return nil
	})
	if errors.Is(err, errEnough) {
		err = nil
	}
	return got, err
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	end := time.Now().Add(deadline)
	for !cond() {
		if time.Now().After(end) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

func TestHub_SubscribeFanOut(t *testing.T) {
	log := newMemLog()
	h := startHub(t, log, hub.Options{})
	const subs, n = 8, 300
	ctx, cancel := context.WithTimeout(context.Background(), deadline)
	defer cancel()
	results := make([][]uint64, subs)
	errs := make([]error, subs)
	var wg conc.WaitGroup
	for i := range subs {
		wg.Go(func() { results[i], errs[i] = collect(ctx, h, "docs", 0, n) })
	}
	waitFor(t, "subscribers", func() bool { return h.Stats().Subscribers == subs })
	appendN(t, h, "docs", n)
	wg.Wait()
	for i := range subs {
		if errs[i] != nil {
			t.Fatalf("subscriber %d: %v", i, errs[i])
		}
		if diff := cmp.Diff(seqRange(1, n), results[i]); diff != "" {
			t.Errorf("subscriber %d seqs (-want +got):\n%s", i, diff)
		}
	}
	if got := h.Stats(); got.FannedOut == 0 || got.Subscribers != 0 {
		t.Errorf("Stats = %+v, want FannedOut > 0 and no subscribers left", got)
	}
}

// TestHub_SubscribeHandover starts subscriptions from 0 over a long log
// while appends race with their start: each must see 1..N exactly.
func TestHub_SubscribeHandover(t *testing.T) {
	for _, tc := range []struct {
		name        string
		ring, queue int
	}{
		{"defaults", 0, 0},
		{"small ring and queue", 16, 4},
	} {
		t.Run(tc.name, func(t *testing.T) {
			log := newMemLog()
			const existing, live = 10_000, 3_000
			for i := range existing {
				if _, err := log.Append(context.Background(), fileEvent("docs", i)); err != nil {
					t.Fatal(err)
				}
			}
			h := startHub(t, log, hub.Options{Ring: tc.ring, Queue: tc.queue})
			ctx, cancel := context.WithTimeout(context.Background(), 2*deadline)
			defer cancel()

			const subs = 4
			results := make([][]uint64, subs)
			errs := make([]error, subs)
			var wg conc.WaitGroup
			wg.Go(func() {
				for i := range live {
					if _, err := h.Append(ctx, fileEvent("docs", i)); err != nil {
						t.Errorf("Append: %v", err)
						return
					}
				}
			})
			for i := range subs {
				// Start each subscriber a little later into the appends.
				startAt := uint64(existing + i*live/(subs+1))
				wg.Go(func() {
					for {
						head, _ := log.Head(ctx, "docs")
						if head >= startAt || ctx.Err() != nil {
							break
						}
						time.Sleep(100 * time.Microsecond)
					}
					results[i], errs[i] = collect(ctx, h, "docs", 0, existing+live)
				})
			}
			wg.Wait()
			want := seqRange(1, existing+live)
			for i := range subs {
				if errs[i] != nil {
					t.Fatalf("subscriber %d: %v", i, errs[i])
				}
				if len(results[i]) != len(want) || !cmp.Equal(want, results[i]) {
					t.Errorf("subscriber %d got %d events, first diff:\n%s", i, len(results[i]), firstDiff(want, results[i]))
				}
			}
		})
	}
}

func firstDiff(want, got []uint64) string {
	for i := range min(len(want), len(got)) {
		if want[i] != got[i] {
			return fmt.Sprintf("at %d want %d got %d", i, want[i], got[i])
		}
	}
	return fmt.Sprintf("lengths %d vs %d", len(want), len(got))
}

func TestHub_SubscribeRingMiss(t *testing.T) {
	log := newMemLog()
	h := startHub(t, log, hub.Options{Ring: 4})
	appendN(t, h, "docs", 100)
	ctx, cancel := context.WithTimeout(context.Background(), deadline)
	defer cancel()
	// Wait until the ring holds only the newest events.
	waitFor(t, "head", func() bool {
		p, err := h.Changes(ctx, "docs", 99, 1, 0)
		return err == nil && len(p.Events) == 1
	})
	for _, after := range []uint64{0, 10, 95, 96, 97, 99} {
		got, err := collect(ctx, h, "docs", after, 100)
		if err != nil {
			t.Fatalf("after %d: %v", after, err)
		}
		if diff := cmp.Diff(seqRange(after+1, 100), got); diff != "" {
			t.Errorf("after %d (-want +got):\n%s", after, diff)
		}
	}
}

func TestHub_SubscribeAfterHead(t *testing.T) {
	log := newMemLog()
	h := startHub(t, log, hub.Options{})
	appendN(t, h, "docs", 3)
	ctx, cancel := context.WithTimeout(context.Background(), deadline)
	defer cancel()
	done := make(chan struct{})
	var got []uint64
	var err error
	go func() {
		defer close(done)
		got, err = collect(ctx, h, "docs", 6, 8)
	}()
	waitFor(t, "subscriber", func() bool { return h.Stats().Subscribers == 1 })
	appendN(t, h, "docs", 5)
	<-done
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]uint64{7, 8}, got); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}

func TestHub_SubscribeSlow(t *testing.T) {
	log := newMemLog()
	h := startHub(t, log, hub.Options{Ring: 8, Queue: 4})
	const n = 100
	ctx, cancel := context.WithTimeout(context.Background(), deadline)
	defer cancel()

	release := make(chan struct{})
	blocked := make(chan struct{})
	var slow []uint64
	slowErr := make(chan error, 1)
	go func() {
		err := h.Subscribe(ctx, "docs", 0, func(ev events.Event) error {
			if len(slow) == 0 {
				close(blocked)
				select {
				case <-release:
				case <-ctx.Done():
				}
			}
			slow = append(slow, ev.Seq)
			if ev.Seq == n {
				return errEnough
			}
			return nil
		})
		slowErr <- err
	}()
	var fast []uint64
	fastErr := make(chan error, 1)
	go func() {
		var err error
		fast, err = collect(ctx, h, "docs", 0, n)
		fastErr <- err
	}()
	waitFor(t, "subscribers", func() bool { return h.Stats().Subscribers == 2 })
	appendN(t, h, "docs", n)

	// The fast subscriber gets everything while the slow one is blocked.
	select {
	case err := <-fastErr:
		if err != nil {
			t.Fatalf("fast: %v", err)
		}
	case <-time.After(deadline):
		t.Fatal("the fast subscriber was delayed by the slow one")
	}
	select {
	case <-blocked:
	case <-time.After(deadline):
		t.Fatal("slow subscriber never called")
	}
	if diff := cmp.Diff(seqRange(1, n), fast); diff != "" {
		t.Errorf("fast (-want +got):\n%s", diff)
	}
	if got := h.Stats().Overflows; got == 0 {
		t.Errorf("Stats().Overflows = 0, want > 0")
	}
	close(release)
	if err := <-slowErr; !errors.Is(err, errEnough) {
		t.Fatalf("slow: %v", err)
	}
	if diff := cmp.Diff(seqRange(1, n), slow); diff != "" {
		t.Errorf("slow (-want +got):\n%s", diff)
	}
}

func TestHub_SubscribeErrors(t *testing.T) {
	log := newMemLog()
	h := startHub(t, log, hub.Options{Ring: 4})
	appendN(t, h, "docs", 20)
	ctx, cancel := context.WithTimeout(context.Background(), deadline)
	defer cancel()
	waitFor(t, "head", func() bool {
		ws, err := h.Workspaces(ctx)
		return err == nil && ws[0].Head == 20
	})
	log.drop("docs", 10)

	mine := errors.New("mine")
	tests := []struct {
		name  string
		ws    string
		after uint64
		fn    func(events.Event) error
		want  error
	}{
		{"cursor expired", "docs", 5, func(events.Event) error { return nil }, events.ErrCursorExpired},
		{"unknown workspace", "nope", 0, func(events.Event) error { return nil }, events.ErrUnknownWorkspace},
		{"fn error as is", "docs", 12, func(events.Event) error { return mine }, mine},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := h.Subscribe(ctx, tc.ws, tc.after, tc.fn)
			if !errors.Is(err, tc.want) {
				t.Fatalf("Subscribe = %v, want %v", err, tc.want)
			}
		})
	}
	t.Run("ring still covers", func(t *testing.T) {
		got, err := collect(ctx, h, "docs", 17, 20)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff([]uint64{18, 19, 20}, got); diff != "" {
			t.Errorf("(-want +got):\n%s", diff)
		}
	})
	t.Run("own context", func(t *testing.T) {
		sctx, scancel := context.WithTimeout(ctx, 20*time.Millisecond)
		defer scancel()
		err := h.Subscribe(sctx, "docs", 20, func(events.Event) error { return nil })
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("Subscribe = %v, want context.DeadlineExceeded", err)
		}
	})
}

func TestHub_RunCancelEndsSubscribe(t *testing.T) {
	log := newMemLog()
	h := newHub(t, log, hub.Options{})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	runDone := make(chan error, 1)

	const subs = 3
	errs := make(chan error, subs)
	for range subs {
		// Subscribe before Run: it waits for the follower.
		go func() { errs <- h.Subscribe(context.Background(), "docs", 0, func(events.Event) error { return nil }) }()
	}
	go func() { runDone <- h.Run(ctx) }()
	<-h.Ready()
	appendN(t, h, "docs", 5)
	waitFor(t, "subscribers", func() bool { return h.Stats().Subscribers == subs })
	if err := h.Run(ctx); !errors.Is(err, hub.ErrRunning) {
		t.Errorf("second Run = %v, want ErrRunning", err)
	}
	cancel()
	for range subs {
		select {
		case err := <-errs:
			if !errors.Is(err, events.ErrClosed) {
				t.Errorf("Subscribe = %v, want ErrClosed", err)
			}
		case <-time.After(deadline):
			t.Fatal("Subscribe did not return after Run stopped")
		}
	}
	select {
	case err := <-runDone:
		if err != nil {
			t.Errorf("Run = %v", err)
		}
	case <-time.After(deadline):
		t.Fatal("Run did not return")
	}
	if err := h.Subscribe(context.Background(), "docs", 0, func(events.Event) error { return nil }); !errors.Is(err, events.ErrClosed) {
		t.Errorf("Subscribe after stop = %v, want ErrClosed", err)
	}
	// The log still answers Changes after the hub stopped.
	p, err := h.Changes(context.Background(), "docs", 0, 0, 0)
	if err != nil || len(p.Events) != 5 {
		t.Errorf("Changes after stop = %d events, %v; want 5", len(p.Events), err)
	}
}

func TestHub_FollowRetries(t *testing.T) {
	log := newMemLog()
	log.failFollow = 1
	h := startHub(t, log, hub.Options{})
	ctx, cancel := context.WithTimeout(context.Background(), deadline)
	defer cancel()
	// Appended behind the hub's back (like another hub on a shared log),
	// so that only the follower can bring them.
	for i := range 3 {
		if _, err := log.Append(ctx, fileEvent("docs", i)); err != nil {
			t.Fatal(err)
		}
	}
	got, err := collect(ctx, h, "docs", 0, 3)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(seqRange(1, 3), got); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	if n := log.followCalls(); n < 2 {
		t.Errorf("Follow called %d times, want a retry", n)
	}
}

func TestHub_Changes(t *testing.T) {
	for _, ringSize := range []int{4, 4096} {
		t.Run(fmt.Sprintf("ring %d", ringSize), func(t *testing.T) {
			log := newMemLog()
			h := startHub(t, log, hub.Options{Ring: ringSize})
			appendN(t, h, "docs", 10)
			ctx := context.Background()
			waitFor(t, "head", func() bool {
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
	log := newMemLog()
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
	log := newMemLog()
	h := startHub(t, log, hub.Options{})
	appendN(t, h, "docs", 2)
	ctx := context.Background()
	waitFor(t, "head", func() bool {
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

func TestHub_UnknownWorkspace(t *testing.T) {
	h := startHub(t, newMemLog(), hub.Options{})
	ctx := context.Background()
	calls := map[string]func() error{
		"Changes": func() error { _, err := h.Changes(ctx, "nope", 0, 0, 0); return err },
		"Files":   func() error { _, err := h.Files(ctx, "nope", ""); return err },
		"ReadFile": func() error {
			_, _, err := h.ReadFile(ctx, "nope", "a.txt")
			return err
		},
		"Append": func() error {
			_, err := h.Append(ctx, fileEvent("nope", 1))
			return err
		},
		"Subscribe": func() error {
			return h.Subscribe(ctx, "nope", 0, func(events.Event) error { return nil })
		},
	}
	for name, call := range calls {
		err := call()
		var e *events.Error
		if !errors.Is(err, events.ErrUnknownWorkspace) || !errors.As(err, &e) || e.Value != "nope" {
			t.Errorf("%s = %v, want *events.Error of ErrUnknownWorkspace", name, err)
		}
	}
	if _, ok := h.Workspace("nope"); ok {
		t.Error(`Workspace("nope") found`)
	}
	if w, ok := h.Workspace("docs"); !ok || w.Name != "docs" {
		t.Errorf(`Workspace("docs") = %+v, %v`, w, ok)
	}
}

func TestHub_Append(t *testing.T) {
	log := newMemLog()
	h := startHub(t, log, hub.Options{})
	ctx := context.Background()
	bad := []struct {
		name string
		ev   events.Event
		want error
	}{
		{"climbs out", events.Event{Workspace: "docs", Type: events.FileCreated, Path: "../x"}, events.ErrBadPath},
		{"absolute", events.Event{Workspace: "docs", Type: events.FileCreated, Path: "/etc/passwd"}, events.ErrBadPath},
		{"empty path", events.Event{Workspace: "docs", Type: events.FileCreated}, events.ErrBadPath},
		{"newline", events.Event{Workspace: "docs", Type: events.FileCreated, Path: "a\nb"}, events.ErrBadPath},
		{"bad old path", events.Event{Workspace: "docs", Type: events.FileMoved, Path: "a", OldPath: "../b"}, events.ErrBadPath},
		{"move without old path", events.Event{Workspace: "docs", Type: events.FileMoved, Path: "a"}, events.ErrBadPath},
		{"unknown workspace", events.Event{Workspace: "src", Type: events.FileCreated, Path: "a"}, events.ErrUnknownWorkspace},
		{"invalid type", events.Event{Workspace: "docs", Type: "file.exploded", Path: "a"}, events.ErrBadType},
		{"no type", events.Event{Workspace: "docs", Path: "a"}, events.ErrBadType},
	}
	for _, tc := range bad {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := h.Append(ctx, tc.ev); !errors.Is(err, tc.want) {
				t.Errorf("Append = %v, want %v", err, tc.want)
			}
		})
	}
	if head, _ := log.Head(ctx, "docs"); head != 0 {
		t.Fatalf("rejected events reached the log: head %d", head)
	}

	before := time.Now()
	got, err := h.Append(ctx, events.Event{Workspace: "docs", Type: events.FileMoved, Path: "a/./b.txt", OldPath: "c//d.txt", Seq: 99})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ulid.ParseStrict(got.ID); err != nil {
		t.Errorf("ID %q is not a ULID: %v", got.ID, err)
	}
	if got.Time.Before(before.Add(-time.Second)) || got.Time.Location() != time.UTC {
		t.Errorf("Time = %v, want now in UTC", got.Time)
	}
	want := events.Event{Workspace: "docs", Type: events.FileMoved, Path: "a/b.txt", OldPath: "c/d.txt", Seq: 1}
	if diff := cmp.Diff(want, got, cmpopts.IgnoreFields(events.Event{}, "ID", "Time")); diff != "" {
		t.Errorf("Append (-want +got):\n%s", diff)
	}

	given := events.Event{ID: "fixed", Time: time.Unix(1, 0).UTC(), Workspace: "docs", Type: events.LockAcquired, Path: "x"}
	got, err = h.Append(ctx, given)
	if err != nil {
		t.Fatal(err)
	}
	if got.ID != "fixed" || !got.Time.Equal(given.Time) || got.Seq != 2 {
		t.Errorf("Append = %+v, want ID and Time kept, Seq 2", got)
	}
}

func TestHub_Workspaces(t *testing.T) {
	h := startHub(t, newMemLog(), hub.Options{}, "src", "docs", "art")
	appendN(t, h, "docs", 2)
	appendN(t, h, "src", 5)
	ctx := context.Background()
	want := []events.WorkspaceInfo{{Name: "art", Head: 0}, {Name: "docs", Head: 2}, {Name: "src", Head: 5}}
	waitFor(t, "heads", func() bool {
		got, err := h.Workspaces(ctx)
		return err == nil && cmp.Equal(want, got)
	})
}

func TestNew_Errors(t *testing.T) {
	log := newMemLog()
	for _, tc := range []struct {
		name string
		opts hub.Options
	}{
		{"no log", hub.Options{Workspaces: []workspace.Workspace{{Name: "a", Dir: "/"}}}},
		{"duplicate", hub.Options{Log: log, Workspaces: []workspace.Workspace{{Name: "a", Dir: "/"}, {Name: "a", Dir: "/tmp"}}}},
		{"bad name", hub.Options{Log: log, Workspaces: []workspace.Workspace{{Name: "../a", Dir: "/"}}}},
	} {
		if _, err := hub.New(tc.opts); !errors.Is(err, hub.ErrConfig) {
			t.Errorf("%s: New = %v, want ErrConfig", tc.name, err)
		}
	}
}

// stubIndex lists fixed files.
type stubIndex struct {
	files []events.FileInfo
	seq   uint64
}

func (s stubIndex) Files(prefix string) ([]events.FileInfo, uint64) {
	var out []events.FileInfo
	for _, f := range s.files {
		if prefix == "" || f.Path == prefix || strings.HasPrefix(f.Path, prefix+"/") {
			out = append(out, f)
		}
	}
	return out, s.seq
}

func TestHub_FilesAndReadFile(t *testing.T) {
	root := t.TempDir()
	dir := filepath.Join(root, "docs")
	outside := filepath.Join(root, "outside")
	for _, d := range []string{filepath.Join(dir, "sub"), outside} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	write := func(p, s string) {
		if err := os.WriteFile(p, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write(filepath.Join(dir, "a.txt"), "alpha\n")
	write(filepath.Join(dir, "sub", "b.txt"), "beta\n")
	write(filepath.Join(outside, "secret.txt"), "secret\n")
	if err := os.Symlink(filepath.Join(outside, "secret.txt"), filepath.Join(dir, "escape")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("a.txt", filepath.Join(dir, "inner")); err != nil {
		t.Fatal(err)
	}
	w, err := workspace.Parse("docs=" + dir)
	if err != nil {
		t.Fatal(err)
	}
	log := newMemLog()
	h, err := hub.New(hub.Options{Workspaces: []workspace.Workspace{w}, Log: log})
	if err != nil {
		t.Fatal(err)
	}
	runHub(t, h)
	appendN(t, h, "docs", 2)
	ctx := context.Background()

	// No index yet: an empty listing at the head.
	waitFor(t, "listing at head", func() bool {
		l, err := h.Files(ctx, "docs", "")
		return err == nil && l.Cursor == 2 && l.Files != nil && len(l.Files) == 0
	})

	idx := stubIndex{seq: 7, files: []events.FileInfo{
		{Path: "a.txt", Size: 6, Version: 5},
		{Path: "sub/b.txt", Size: 5, Version: 0},
	}}
	h.SetIndex("docs", idx)
	for _, tc := range []struct {
		prefix string
		want   []string
	}{
		{"", []string{"a.txt", "sub/b.txt"}},
		{"/", []string{"a.txt", "sub/b.txt"}},
		{"sub/", []string{"sub/b.txt"}},
		{"./sub", []string{"sub/b.txt"}},
		{"none", []string{}},
	} {
		l, err := h.Files(ctx, "docs", tc.prefix)
		if err != nil {
			t.Fatalf("Files(%q): %v", tc.prefix, err)
		}
		var got []string
		for _, f := range l.Files {
			got = append(got, f.Path)
		}
		if diff := cmp.Diff(tc.want, got, cmpopts.EquateEmpty()); diff != "" || l.Cursor != 7 || l.Workspace != "docs" {
			t.Errorf("Files(%q) cursor %d ws %q (-want +got):\n%s", tc.prefix, l.Cursor, l.Workspace, diff)
		}
	}
	if _, err := h.Files(ctx, "docs", "../x"); !errors.Is(err, events.ErrBadPath) {
		t.Errorf("Files(../x) = %v, want ErrBadPath", err)
	}

	sum := func(s string) string { b := sha256.Sum256([]byte(s)); return hex.EncodeToString(b[:]) }
	st, err := os.Stat(filepath.Join(dir, "a.txt"))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		path string
		data string
		info events.FileInfo
	}{
		{"a.txt", "alpha\n", events.FileInfo{Path: "a.txt", Size: 6, SHA256: sum("alpha\n"), ModTime: st.ModTime(), Version: 5}},
		{"./sub//b.txt", "beta\n", events.FileInfo{Path: "sub/b.txt", Size: 5, SHA256: sum("beta\n")}},
		{"inner", "alpha\n", events.FileInfo{Path: "inner", Size: 6, SHA256: sum("alpha\n")}},
	} {
		data, info, err := h.ReadFile(ctx, "docs", tc.path)
		if err != nil {
			t.Fatalf("ReadFile(%q): %v", tc.path, err)
		}
		if string(data) != tc.data {
			t.Errorf("ReadFile(%q) data %q, want %q", tc.path, data, tc.data)
		}
		ignoreTime := cmpopts.IgnoreFields(events.FileInfo{}, "ModTime")
		if tc.info.ModTime.IsZero() {
			if info.ModTime.IsZero() {
				t.Errorf("ReadFile(%q) no ModTime", tc.path)
			}
		} else {
			ignoreTime = cmp.Options{}
		}
		if diff := cmp.Diff(tc.info, info, ignoreTime); diff != "" {
			t.Errorf("ReadFile(%q) info (-want +got):\n%s", tc.path, diff)
		}
	}
	for _, tc := range []struct {
		path string
		want []error
	}{
		{"escape", []error{events.ErrBadPath, events.ErrNotFound}},
		{"../outside/secret.txt", []error{events.ErrBadPath}},
		{"/etc/passwd", []error{events.ErrBadPath}},
		{"missing.txt", []error{events.ErrNotFound}},
		{"sub", []error{events.ErrNotFound}},
	} {
		data, _, err := h.ReadFile(ctx, "docs", tc.path)
		ok := false
		for _, w := range tc.want {
			ok = ok || errors.Is(err, w)
		}
		if !ok || data != nil {
			t.Errorf("ReadFile(%q) = %q, %v; want one of %v", tc.path, data, err, tc.want)
		}
	}
	h.SetIndex("docs", nil)
	if l, err := h.Files(ctx, "docs", ""); err != nil || len(l.Files) != 0 || l.Cursor != 2 {
		t.Errorf("Files after removing the index = %+v, %v", l, err)
	}
}

func BenchmarkHub_FanOut(b *testing.B) {
	for _, subs := range []int{1, 100, 1000} {
		b.Run(fmt.Sprintf("subscribers=%d", subs), func(b *testing.B) {
			log := newMemLog()
			h := startHub(b, log, hub.Options{})
			ctx, cancel := context.WithCancel(context.Background())
			var delivered atomic.Int64
			var wg sync.WaitGroup
			for range subs {
				wg.Add(1)
				go func() {
					defer wg.Done()
					_ = h.Subscribe(ctx, "docs", 0, func(events.Event) error {
						delivered.Add(1)
						return nil
					})
				}()
			}
			defer func() { cancel(); wg.Wait() }()
			ev := fileEvent("docs", 0) // no ID: memLog stores every copy
			// One warm-up event reaches every subscriber before timing.
			if _, err := log.Append(ctx, ev); err != nil {
				b.Fatal(err)
			}
			waitDelivered := func(n int64) {
				for delivered.Load() < n {
					time.Sleep(50 * time.Microsecond)
				}
			}
			waitDelivered(int64(subs))
			b.ReportAllocs()
			b.ResetTimer()
			start := time.Now()
			for range b.N {
				if _, err := log.Append(ctx, ev); err != nil {
					b.Fatal(err)
				}
			}
			waitDelivered(int64(subs) * int64(b.N+1))
			b.StopTimer()
			b.ReportMetric(float64(subs)*float64(b.N)/time.Since(start).Seconds(), "events/s")
		})
	}
}
