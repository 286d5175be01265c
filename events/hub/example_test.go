package hub_test

import (
	"context"
	"fmt"
	"os"

	"github.com/filecast/filecast/events"
	"github.com/filecast/filecast/events/hub"
	"github.com/filecast/filecast/events/workspace"
)

func ExampleHub() {
	h, err := hub.New(hub.Options{
		Workspaces: []workspace.Workspace{{Name: "docs", Dir: os.TempDir()}},
		Log:        newMemLog(), // in production: the JetStream journal
	})
	if err != nil {
		panic(err)
	}
	ctx, stop := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- h.Run(ctx) }()
	<-h.Ready()

	for _, p := range []string{"notes.md", "./reports/../q3.md"} {
		if _, err := h.Append(ctx, events.Event{Workspace: "docs", Type: events.FileCreated, Path: p}); err != nil {
			panic(err)
		}
	}
	_ = h.Subscribe(ctx, "docs", 0, func(ev events.Event) error {
		fmt.Println(ev.Seq, ev.Type, ev.Path)
		if ev.Seq == 2 {
			stop()
		}
		return nil
	})
	<-done
	// Output:
	// 1 file.created notes.md
	// 2 file.created q3.md
}
