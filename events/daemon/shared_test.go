package daemon_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/filecast/filecast/events"
	"github.com/filecast/filecast/events/daemon"
	"github.com/filecast/filecast/events/eventstest"
)

func TestShared_TakeoverKeepsSubscription(t *testing.T) {
	e := newEnv(t)
	ctx, cancel := context.WithTimeout(context.Background(), 25*time.Second)
	defer cancel()

	a := start(t, e.options("a"))
	a.ready(t)
	if !a.IsOwner() {
		t.Fatal("the first process is not the owner")
	}
	first := e.hubs.last()
	<-first.Ready()
	fi, err := os.Lstat(filepath.Join(e.data, daemon.SocketName))
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Type() != os.ModeSocket || fi.Mode().Perm() != 0o600 {
		t.Fatalf("socket mode = %v, want a socket with 0600", fi.Mode())
	}

	polling := make(chan struct{}, 1) // a long poll went out to the owner
	e.sent = func(r *http.Request) {
		if strings.HasSuffix(r.URL.Path, "/changes") && r.URL.Query().Get("wait") != "" {
			select {
			case polling <- struct{}{}:
			default:
			}
		}
	}
	b := start(t, e.options("b"))
	b.ready(t)
	if b.IsOwner() {
		t.Fatal("the second process owns the hub too")
	}
	wss, err := b.Workspaces(ctx)
	if err != nil || len(wss) != 1 || wss[0].Name != wsName {
		t.Fatalf("Workspaces through the socket = %v, %v", wss, err)
	}
	// A lock taken through the socket must outlive the owner that granted it.
	lease, err := b.Lock(ctx, events.LockRequest{Workspace: wsName, Path: "a.md", Holder: "agent-b#1", TTL: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	var base uint64 // events before the test's own: the lock's
	eventstest.Within(t, 5*time.Second, "lock.acquired logged", func() bool {
		wss, err := b.Workspaces(ctx)
		if err == nil && len(wss) == 1 {
			base = wss[0].Head
		}
		return base > 0
	})

	c := subscribe(ctx, b, base)
	if _, err := appendN(ctx, first, 1, 5); err != nil {
		t.Fatal(err)
	}
	c.waitFor(t, base+5, 5*time.Second)

	// A long poll in flight when the owner goes is answered by the next one.
	type result struct {
		page events.Page
		err  error
	}
	polled := make(chan result, 1)
	go func() {
		p, err := b.Changes(ctx, wsName, base+5, 10, 15*time.Second)
		polled <- result{p, err}
	}()
	select {
	case <-polling:
	case <-ctx.Done():
		t.Fatal("the long poll never went out")
	}

	if err := a.stop(t); err != nil {
		t.Fatalf("owner's Run = %v", err)
	}
	if a.IsOwner() {
		t.Fatal("IsOwner after Run returned")
	}
	if _, err := a.Workspaces(ctx); !errors.Is(err, daemon.ErrStopped) || !errors.Is(err, events.ErrClosed) {
		t.Fatalf("Workspaces after Run returned = %v, want ErrStopped", err)
	}
	took := time.Now()
	eventstest.Within(t, 5*time.Second, "second process takes over", b.IsOwner)
	t.Logf("takeover in %v", time.Since(took))
	second := e.hubs.last()
	if second == first {
		t.Fatal("the new owner did not start its own hub")
	}
	if _, err := appendN(ctx, second, 6, 5); err != nil {
		t.Fatal(err)
	}
	c.waitFor(t, base+10, 5*time.Second)
	if diff := cmp.Diff(seqs(base+1, base+10), c.got()); diff != "" {
		t.Fatalf("delivered seqs (-want +got):\n%s", diff)
	}
	r := <-polled
	if r.err != nil || len(r.page.Events) == 0 || r.page.Events[0].Seq != base+6 {
		t.Fatalf("long poll across the takeover = %+v, %v; want events from seq %d", r.page, r.err, base+6)
	}

	leases, err := b.Locks(ctx, wsName)
	if err != nil || len(leases) != 1 || leases[0].Holder != "agent-b#1" || leases[0].FencingToken != lease.FencingToken {
		t.Fatalf("Locks on the new owner = %+v, %v; want the lease of agent-b#1 (fencing %d)", leases, err, lease.FencingToken)
	}

	// A third process now connects to the new owner.
	d := start(t, e.options("d"))
	d.ready(t)
	if d.IsOwner() {
		t.Fatal("the third process owns the hub too")
	}
	if _, err := d.Lock(ctx, events.LockRequest{Workspace: wsName, Path: "a.md", Holder: "agent-d#3"}); !errors.Is(err, events.ErrLockConflict) {
		t.Fatalf("Lock of a held path through the new owner = %v, want ErrLockConflict", err)
	}
	if err := d.Unlock(ctx, wsName, "a.md", lease.Token); err != nil {
		t.Fatalf("Unlock with the token the first owner granted: %v", err)
	}
	page, err := d.Changes(ctx, wsName, 0, 100, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(page.Events) < int(base)+10 || page.Events[base].Path != "f001.txt" {
		t.Fatalf("Changes from the third process: %d events, want at least %d", len(page.Events), base+10)
	}
}

func TestShared_StaleSocket(t *testing.T) {
	e := newEnv(t)
	if err := os.MkdirAll(e.data, 0o700); err != nil {
		t.Fatal(err)
	}
	socket := filepath.Join(e.data, daemon.SocketName)
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: socket, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	ln.SetUnlinkOnClose(false)
	_ = ln.Close() // what a killed owner leaves behind

	a := start(t, e.options("a"))
	a.ready(t)
	if !a.IsOwner() {
		t.Fatal("not the owner despite a dead socket")
	}
	conn, err := net.Dial("unix", socket)
	if err != nil {
		t.Fatalf("the new owner does not serve on %s: %v", socket, err)
	}
	_ = conn.Close()
	if err := a.stop(t); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Lstat(socket); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("socket left behind after a clean stop: %v", err)
	}
	if l, err := daemon.Acquire(e.data); err != nil {
		t.Fatalf("flock still held after a clean stop: %v", err)
	} else {
		_ = l.Release()
	}
}

func TestShared_CheckRefusesOwner(t *testing.T) {
	e := newEnv(t)
	a := start(t, e.options("a"))
	a.ready(t)

	opts := e.options("b")
	opts.Check = func(ctx context.Context, b daemon.Backend) error {
		wss, err := b.Workspaces(ctx)
		if err != nil {
			return err
		}
		return fmt.Errorf("the hub serves %d workspace(s) but not %q", len(wss), "other")
	}
	b := start(t, opts)
	err := b.wait(t, 10*time.Second)
	if want := `the hub serves 1 workspace(s) but not "other"`; err == nil || err.Error() != want {
		t.Fatalf("Run = %v, want %q", err, want)
	}
	select {
	case <-b.Ready():
		t.Fatal("Ready closed although Check refused the owner")
	default:
	}
	if !a.IsOwner() {
		t.Fatal("the owner lost its hub")
	}
}

func TestNewShared_Options(t *testing.T) {
	become := func(context.Context) (*daemon.Owner, error) { return nil, errors.New("unused") }
	connect := func(string) (daemon.Backend, error) { return nil, errors.New("unused") }
	long := "/" + strings.Repeat("d", 100)
	tests := []struct {
		name string
		opts daemon.Options
	}{
		{"no dir", daemon.Options{Become: become, Connect: connect}},
		{"no become", daemon.Options{Dir: "/tmp/x", Connect: connect}},
		{"no connect", daemon.Options{Dir: "/tmp/x", Become: become}},
		{"socket path too long", daemon.Options{Dir: long, Become: become, Connect: connect}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := daemon.NewShared(tt.opts); !errors.Is(err, daemon.ErrOptions) {
				t.Fatalf("NewShared = %v, want ErrOptions", err)
			}
		})
	}
	sh, err := daemon.NewShared(daemon.Options{Dir: "/tmp/x", Become: become, Connect: connect})
	if err != nil {
		t.Fatal(err)
	}
	if want := "/tmp/x/" + daemon.SocketName; sh.Socket() != want {
		t.Fatalf("Socket() = %q, want %q", sh.Socket(), want)
	}
}

func TestShared_BusyWithoutOwner(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	l, err := daemon.Acquire(dir) // a process that guards the folder but shares nothing
	if err != nil {
		t.Fatal(err)
	}
	defer l.Release()
	p := start(t, daemon.Options{
		Dir:         dir,
		Become:      func(context.Context) (*daemon.Owner, error) { return nil, errors.New("the flock is never free") },
		Connect:     func(string) (daemon.Backend, error) { return nil, errors.New("nobody answers") },
		BusyTimeout: 300 * time.Millisecond,
	})
	err = p.wait(t, 5*time.Second)
	var busy *daemon.BusyError
	if !errors.As(err, &busy) || busy.PID != os.Getpid() {
		t.Fatalf("Run = %v, want a BusyError naming pid %d", err, os.Getpid())
	}
	select {
	case <-p.Ready():
		t.Fatal("Ready although nobody serves the hub")
	default:
	}
}
