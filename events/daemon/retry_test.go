package daemon_test

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/filecast/filecast/events"
	"github.com/filecast/filecast/events/daemon"
)

// faulty is a Backend whose calls fail with scripted errors, to inject
// the faults a vanishing owner causes. It is safe for concurrent use.
type faulty struct {
	mu     sync.Mutex
	script map[string][]error // per method: the errors of its next calls
	calls  map[string]int
	replay []uint64 // seqs every Subscribe delivers, whatever its after
	afters []uint64 // the after of every Subscribe
}

func newFaulty() *faulty { return &faulty{script: map[string][]error{}, calls: map[string]int{}} }

func (f *faulty) fail(method string, errs ...error) {
	f.mu.Lock()
	f.script[method] = errs
	f.calls[method] = 0
	f.mu.Unlock()
}

func (f *faulty) count(method string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls[method]
}

func (f *faulty) next(method string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls[method]++
	if errs := f.script[method]; len(errs) > 0 {
		f.script[method] = errs[1:]
		return errs[0]
	}
	return nil
}

func (f *faulty) Workspaces(context.Context) ([]events.WorkspaceInfo, error) {
	if err := f.next("Workspaces"); err != nil {
		return nil, err
	}
	return []events.WorkspaceInfo{{Name: wsName, Head: 7}}, nil
}

func (f *faulty) Subscribe(ctx context.Context, ws string, after uint64, fn func(events.Event) error) error {
	if err := f.next("Subscribe"); err != nil {
		return err
	}
	f.mu.Lock()
	f.afters = append(f.afters, after)
	replay := f.replay
	f.mu.Unlock()
	for _, seq := range replay {
		if err := fn(events.Event{Seq: seq, Workspace: ws, Type: events.FileUpdated, Path: "a.md"}); err != nil {
			return err
		}
	}
	<-ctx.Done()
	return ctx.Err()
}

func (f *faulty) Changes(_ context.Context, _ string, after uint64, _ int, _ time.Duration) (events.Page, error) {
	if err := f.next("Changes"); err != nil {
		return events.Page{}, err
	}
	return events.Page{Next: after}, nil
}

func (f *faulty) Files(context.Context, string, string) (events.Listing, error) {
	return events.Listing{}, f.next("Files")
}

func (f *faulty) ReadFile(context.Context, string, string, events.Range) ([]byte, events.FileInfo, error) {
	if err := f.next("ReadFile"); err != nil {
		return nil, events.FileInfo{}, err
	}
	return []byte("hello"), events.FileInfo{Path: "a.md", Size: 5}, nil
}

func (f *faulty) Content(context.Context, string, string) ([]byte, error) {
	if err := f.next("Content"); err != nil {
		return nil, err
	}
	return []byte("hello"), nil
}

func (f *faulty) Lock(_ context.Context, r events.LockRequest) (events.Lease, error) {
	if err := f.next("Lock"); err != nil {
		return events.Lease{}, err
	}
	return events.Lease{Workspace: r.Workspace, Path: r.Path, FencingToken: 1}, nil
}

func (f *faulty) Unlock(context.Context, string, string, string) error { return f.next("Unlock") }

func (f *faulty) Locks(context.Context, string) ([]events.Lease, error) {
	return nil, f.next("Locks")
}

func (f *faulty) WriteFile(context.Context, events.WriteRequest) (events.Event, error) {
	if err := f.next("WriteFile"); err != nil {
		return events.Event{}, err
	}
	return events.Event{Seq: 8}, nil
}

// fakeOwner becomes an owner whose stack is b, without any real hub.
func fakeOwner(b daemon.Backend) func(context.Context) (*daemon.Owner, error) {
	return func(context.Context) (*daemon.Owner, error) {
		return &daemon.Owner{
			Backend: b,
			Handler: http.NotFoundHandler(),
			Run: func(ctx context.Context) error {
				<-ctx.Done()
				return nil
			},
			Close: func() {},
		}, nil
	}
}

// TestShared_RetryRules checks which failures of a client's backend are
// retried: reads on any connection error, changes only when the request
// never reached the owner.
func TestShared_RetryRules(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	owner := start(t, daemon.Options{
		Dir:     dir,
		Become:  fakeOwner(newFaulty()),
		Connect: func(string) (daemon.Backend, error) { return nil, errors.New("the owner never connects") },
	})
	owner.ready(t)
	f := newFaulty()
	client := start(t, daemon.Options{
		Dir:     dir,
		Become:  func(context.Context) (*daemon.Owner, error) { return nil, errors.New("the client never owns") },
		Connect: func(string) (daemon.Backend, error) { return f, nil },
	})
	client.ready(t)

	dial := &net.OpError{Op: "dial", Net: "unix", Err: syscall.ECONNREFUSED}
	reset := &net.OpError{Op: "read", Net: "unix", Err: syscall.ECONNRESET}
	answer := &events.Error{Kind: events.ErrNotFound, Value: "a.md"}
	ctx := context.Background()
	calls := map[string]func() error{
		"Workspaces": func() error { _, err := client.Workspaces(ctx); return err },
		"Changes":    func() error { _, err := client.Changes(ctx, wsName, 3, 10, 0); return err },
		"Files":      func() error { _, err := client.Files(ctx, wsName, ""); return err },
		"ReadFile":   func() error { _, _, err := client.ReadFile(ctx, wsName, "a.md", events.Range{}); return err },
		"Locks":      func() error { _, err := client.Locks(ctx, wsName); return err },
		"Content":    func() error { _, err := client.Content(ctx, wsName, strings.Repeat("a", 64)); return err },
		"Lock": func() error {
			_, err := client.Lock(ctx, events.LockRequest{Workspace: wsName, Path: "a.md"})
			return err
		},
		"Unlock": func() error { return client.Unlock(ctx, wsName, "a.md", "tok") },
		"WriteFile": func() error {
			_, err := client.WriteFile(ctx, events.WriteRequest{Workspace: wsName, Path: "a.md"})
			return err
		},
	}
	tests := []struct {
		method string
		fault  error
		calls  int  // calls that reach the backend
		fails  bool // the caller sees an error
	}{
		{"Workspaces", io.EOF, 2, false},
		{"Changes", reset, 2, false},
		{"Files", dial, 2, false},
		{"ReadFile", io.ErrUnexpectedEOF, 2, false},
		{"Locks", events.ErrClosed, 2, false},
		{"ReadFile", answer, 1, true},
		{"Content", reset, 2, false},
		{"Content", &events.Error{Kind: events.ErrNotStored, Value: "aaaa"}, 1, true},
		{"WriteFile", io.EOF, 1, true},
		{"WriteFile", reset, 1, true},
		{"WriteFile", dial, 2, false},
		{"WriteFile", answer, 1, true},
		{"Lock", io.EOF, 1, true},
		{"Lock", dial, 2, false},
		{"Unlock", reset, 1, true},
		{"Unlock", dial, 2, false},
	}
	for _, tt := range tests {
		t.Run(tt.method+"/"+tt.fault.Error(), func(t *testing.T) {
			f.fail(tt.method, tt.fault)
			err := calls[tt.method]()
			if got := f.count(tt.method); got != tt.calls {
				t.Errorf("%d calls reached the backend, want %d", got, tt.calls)
			}
			if (err != nil) != tt.fails {
				t.Errorf("error = %v, want failure %v", err, tt.fails)
			}
			if tt.fails && !errors.Is(err, tt.fault) {
				t.Errorf("error = %v, want the backend's %v", err, tt.fault)
			}
		})
	}

	t.Run("Subscribe/permanent", func(t *testing.T) {
		f.fail("Subscribe", answer)
		err := client.Subscribe(ctx, wsName, 0, func(events.Event) error { return nil })
		if !errors.Is(err, events.ErrNotFound) || f.count("Subscribe") != 1 {
			t.Fatalf("Subscribe = %v after %d tries; want the backend's error after 1", err, f.count("Subscribe"))
		}
	})
	t.Run("Subscribe/cursor expired", func(t *testing.T) {
		f.fail("Subscribe", &events.Error{Kind: events.ErrCursorExpired, Value: "3"})
		err := client.Subscribe(ctx, wsName, 3, func(events.Event) error { return nil })
		if !errors.Is(err, events.ErrCursorExpired) || f.count("Subscribe") != 1 {
			t.Fatalf("Subscribe = %v after %d tries; want ErrCursorExpired after 1", err, f.count("Subscribe"))
		}
	})
	t.Run("Subscribe/lost", func(t *testing.T) {
		f.fail("Subscribe", reset)
		err := client.Subscribe(ctx, wsName, 3, func(events.Event) error { return nil })
		if !errors.Is(err, syscall.ECONNRESET) || f.count("Subscribe") != 1 {
			t.Fatalf("Subscribe = %v after %d tries; want the lost connection after 1: the caller resumes", err, f.count("Subscribe"))
		}
	})
	t.Run("Subscribe/ctx", func(t *testing.T) {
		f.fail("Subscribe")
		sctx, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
		defer cancel()
		if err := client.Subscribe(sctx, wsName, 0, func(events.Event) error { return nil }); !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("Subscribe = %v, want ctx's error", err)
		}
	})

	// Once the client's Run has returned, calls fail at once.
	if err := client.stop(t); err != nil {
		t.Fatal(err)
	}
	if _, err := client.Workspaces(ctx); !errors.Is(err, daemon.ErrStopped) {
		t.Fatalf("Workspaces after Run = %v, want ErrStopped", err)
	}
	if err := client.Subscribe(ctx, wsName, 0, func(events.Event) error { return nil }); !errors.Is(err, daemon.ErrStopped) {
		t.Fatalf("Subscribe after Run = %v, want ErrStopped", err)
	}
}

// TestShared_SubscribeEndsWithItsOwner: a subscription passes the events
// of the current backend on and ends with ErrOwnerGone when the owner
// goes; events.Follow then resumes on the next owner after the last seq
// delivered, and nothing is delivered twice even if a backend replays.
func TestShared_SubscribeEndsWithItsOwner(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	owner := start(t, daemon.Options{
		Dir:     dir,
		Become:  fakeOwner(newFaulty()),
		Connect: func(string) (daemon.Backend, error) { return nil, errors.New("the owner never connects") },
	})
	owner.ready(t)
	remote, local := newFaulty(), newFaulty()
	remote.replay = []uint64{1, 2, 3}
	local.replay = []uint64{2, 3, 4, 5}
	client := start(t, daemon.Options{
		Dir:     dir,
		Become:  fakeOwner(local),
		Connect: func(string) (daemon.Backend, error) { return remote, nil },
	})
	client.ready(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	stopAt := errors.New("enough")
	var got []uint64
	var ends []error // how each of the client's subscriptions ended
	src := endings{client, &ends}
	err := events.Follow(ctx, src, wsName, 0, func(ev events.Event) error {
		got = append(got, ev.Seq)
		if ev.Seq == 3 {
			owner.cancel()
		}
		if ev.Seq == 5 {
			return stopAt
		}
		return nil
	}, events.FollowOptions{})
	if !errors.Is(err, stopAt) {
		t.Fatalf("Follow = %v, want fn's error", err)
	}
	if len(ends) != 2 || !errors.Is(ends[0], daemon.ErrOwnerGone) {
		t.Fatalf("subscriptions ended with %v, want ErrOwnerGone, then fn's error", ends)
	}
	if diff := cmp.Diff([]uint64{1, 2, 3, 4, 5}, got); diff != "" {
		t.Fatalf("delivered (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]uint64{3}, local.afters); diff != "" {
		t.Fatalf("the new owner was subscribed after (-want +got):\n%s", diff)
	}
	if !client.IsOwner() {
		t.Fatal("the client did not take over")
	}
}

// endings records how each subscription of a Source ended.
type endings struct {
	events.Source
	errs *[]error
}

func (e endings) Subscribe(ctx context.Context, ws string, after uint64, fn func(events.Event) error) error {
	err := e.Source.Subscribe(ctx, ws, after, fn)
	*e.errs = append(*e.errs, err)
	return err
}

// TestShared_WaitsForBackend checks that calls made before Run has a
// backend wait for it, bounded by their ctx.
func TestShared_WaitsForBackend(t *testing.T) {
	f := newFaulty()
	sh, err := daemon.NewShared(daemon.Options{
		Dir:     filepath.Join(t.TempDir(), "data"),
		Become:  fakeOwner(f),
		Connect: func(string) (daemon.Backend, error) { return nil, errors.New("unused") },
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Millisecond)
	_, err = sh.Workspaces(ctx)
	cancel()
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Workspaces before Run = %v, want ctx's deadline", err)
	}

	got := make(chan error, 1)
	go func() {
		_, err := sh.Workspaces(context.Background())
		got <- err
	}()
	rctx, stop := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- sh.Run(rctx) }()
	select {
	case err := <-got:
		if err != nil {
			t.Fatalf("Workspaces once Run owns = %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("a waiting call was not served once Run became the owner")
	}
	if !sh.IsOwner() {
		t.Fatal("IsOwner = false for the only process")
	}
	if err := sh.Run(rctx); !errors.Is(err, daemon.ErrRunning) {
		t.Fatalf("second Run = %v, want ErrRunning", err)
	}
	stop()
	if err := <-done; err != nil {
		t.Fatalf("Run = %v", err)
	}
}

// BenchmarkShared_Changes measures what delegation adds to a call on the
// owner's own backend.
func BenchmarkShared_Changes(b *testing.B) {
	sh, err := daemon.NewShared(daemon.Options{
		Dir:     filepath.Join(b.TempDir(), "data"),
		Become:  fakeOwner(newFaulty()),
		Connect: func(string) (daemon.Backend, error) { return nil, errors.New("unused") },
	})
	if err != nil {
		b.Fatal(err)
	}
	ctx, stop := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- sh.Run(ctx) }()
	<-sh.Ready()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := sh.Changes(ctx, wsName, 1, 10, 0); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	stop()
	if err := <-done; err != nil {
		b.Fatal(err)
	}
}
