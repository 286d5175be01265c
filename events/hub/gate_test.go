package hub_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/filecast/filecast/events"
	"github.com/filecast/filecast/events/hub"
	"github.com/filecast/filecast/events/journal"
	"github.com/filecast/filecast/events/natsd/natstest"
	"github.com/filecast/filecast/events/workspace"
)

// TestGate_WaitsForTheIndex: listings, reads and pages of changes of a
// workspace wait for its first index; workspaces, subscriptions and the
// calls of a workspace without a gate do not.
func TestGate_WaitsForTheIndex(t *testing.T) {
	srv := natstest.Start(t)
	ctx := t.Context()
	j, err := journal.Open(ctx, srv.Conn(), journal.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = j.Close() })
	var wss []workspace.Workspace
	for _, name := range []string{"docs", "free"} {
		if err := j.Ensure(ctx, name); err != nil {
			t.Fatal(err)
		}
		wss = append(wss, workspace.Workspace{Name: name, Dir: t.TempDir()})
	}
	h, err := hub.New(hub.Options{Workspaces: wss, Log: j})
	if err != nil {
		t.Fatal(err)
	}
	rctx, stop := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- h.Run(rctx) }()
	t.Cleanup(func() { stop(); <-done })
	<-h.Ready()
	if _, err := h.Append(ctx, events.Event{Workspace: "docs", Type: events.FileCreated, Path: "a.txt", Actor: events.ActorFS}); err != nil {
		t.Fatal(err)
	}

	indexed := make(chan struct{})
	g := hub.NewGate(h, map[string]<-chan struct{}{"docs": indexed})
	held := func(name string, call func(context.Context) error) {
		t.Helper()
		cctx, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
		defer cancel()
		if err := call(cctx); !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("%s before the index = %v, want it held until its context ended", name, err)
		}
	}
	held("Files", func(ctx context.Context) error { _, err := g.Files(ctx, "docs", ""); return err })
	held("ReadFile", func(ctx context.Context) error {
		_, _, err := g.ReadFile(ctx, "docs", "a.txt", events.Range{})
		return err
	})
	held("Changes", func(ctx context.Context) error { _, err := g.Changes(ctx, "docs", 0, 10, 0); return err })

	if _, err := g.Workspaces(ctx); err != nil {
		t.Errorf("Workspaces before the index: %v", err)
	}
	if _, err := g.Changes(ctx, "free", 0, 10, 0); err != nil {
		t.Errorf("Changes of a workspace without a gate: %v", err)
	}
	sctx, cancel := context.WithCancel(ctx)
	var got []string
	err = g.Subscribe(sctx, "docs", 0, func(ev events.Event) error {
		got = append(got, ev.Path)
		cancel()
		return nil
	})
	if !errors.Is(err, context.Canceled) || len(got) != 1 {
		t.Errorf("Subscribe before the index = %v with %v, want the event at once", err, got)
	}

	close(indexed)
	page, err := g.Changes(ctx, "docs", 0, 10, 0)
	if err != nil || len(page.Events) != 1 {
		t.Fatalf("Changes once indexed = %d events, %v; want 1", len(page.Events), err)
	}
	if _, err := g.Files(ctx, "docs", ""); err != nil {
		t.Errorf("Files once indexed: %v", err)
	}
}
