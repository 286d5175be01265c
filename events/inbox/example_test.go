package inbox_test

import (
	"context"
	"fmt"

	"github.com/filecast/filecast/events"
	"github.com/filecast/filecast/events/inbox"
)

func Example() {
	b := inbox.New(inbox.Options{Workspaces: []string{"docs"}, Capacity: 100})
	defer b.Close()

	f, err := events.NewFilter("", []string{"reports/**"}, []string{"created", "updated"})
	if err != nil {
		panic(err)
	}
	sub, err := b.Subscribe(f, false)
	if err != nil {
		panic(err)
	}

	// The router offers every event; the inbox keeps what sub selects.
	b.Offer(events.Event{ID: "e1", Seq: 1, Type: events.FileCreated, Workspace: "docs", Path: "reports/q3.md"})
	b.Offer(events.Event{ID: "e2", Seq: 2, Type: events.FileUpdated, Workspace: "docs", Path: "reports/q3.md"})
	b.Offer(events.Event{ID: "e3", Seq: 3, Type: events.FileUpdated, Workspace: "docs", Path: "notes.txt"})
	b.Offer(events.Event{ID: "e4", Seq: 4, Type: events.FileUpdated, Workspace: "docs", Path: "reports/q3.md"})

	res, err := b.Take(context.Background(), sub.ID, 10, 0)
	if err != nil {
		panic(err)
	}
	for _, ev := range res.Events {
		fmt.Println(ev.Seq, ev.Type, ev.Path)
	}
	fmt.Println("cursor", res.Cursor)
	// Output:
	// 1 file.created reports/q3.md
	// 4 file.updated reports/q3.md
	// cursor docs:4
}
