package natsd_test

import (
	"context"
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/sourcegraph/conc"

	"github.com/filecast/filecast/events"
	"github.com/filecast/filecast/events/journal"
	"github.com/filecast/filecast/events/natsd"
)

// TestStart_ExternalReconnect restarts the external server under a running
// journal follower: the connection comes back by itself and the follower
// goes on from where it was, with no gap and no duplicate.
func TestStart_ExternalReconnect(t *testing.T) {
	store := t.TempDir()
	ns := external(t, true, store)
	port := ns.Addr().(*net.TCPAddr).Port
	s := start(t, natsd.Options{URL: ns.ClientURL()})
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	j, err := journal.Open(ctx, s.Conn(), journal.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()

	got := make(chan events.Event, 100)
	wg := conc.NewWaitGroup()
	fctx, stop := context.WithCancel(ctx)
	wg.Go(func() {
		_ = j.Follow(fctx, "docs", 0, func(ev events.Event) error { got <- ev; return nil })
	})
	defer func() { stop(); wg.Wait() }()

	appendEv := func(i int) {
		t.Helper()
		ev := events.Event{ID: fmt.Sprint("ev", i), Type: events.FileCreated, Workspace: "docs", Path: fmt.Sprint("f", i), Actor: "fs"}
		for {
			actx, acancel := context.WithTimeout(ctx, time.Second)
			_, err := j.Append(actx, ev) // retried with the same ID: stored once
			acancel()
			if err == nil {
				return
			}
			if ctx.Err() != nil {
				t.Fatalf("append %d: %v", i, err)
			}
		}
	}
	expect := func(seq uint64) {
		t.Helper()
		select {
		case ev := <-got:
			if ev.Seq != seq {
				t.Fatalf("got seq %d, want %d", ev.Seq, seq)
			}
		case <-ctx.Done():
			t.Fatalf("seq %d not delivered", seq)
		}
	}
	appendEv(1)
	appendEv(2)
	expect(1)
	expect(2)

	ns.Shutdown()
	ns.WaitForShutdown()
	ns2, err := server.NewServer(&server.Options{
		Host: "127.0.0.1", Port: port, JetStream: true, StoreDir: store, NoSigs: true, NoLog: true,
	})
	if err != nil {
		t.Fatal(err)
	}
	ns2.Start()
	t.Cleanup(func() { ns2.Shutdown(); ns2.WaitForShutdown() })
	if !ns2.ReadyForConnections(10 * time.Second) {
		t.Fatal("restarted server not ready")
	}
	appendEv(3)
	expect(3)
}
