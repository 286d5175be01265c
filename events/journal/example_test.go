package journal_test

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/filecast/filecast/events"
	"github.com/filecast/filecast/events/journal"
	"github.com/filecast/filecast/events/natsd"
)

func Example() {
	dir, err := os.MkdirTemp("", "journal-example")
	if err != nil {
		panic(err)
	}
	defer os.RemoveAll(dir)
	ctx := context.Background()
	srv, err := natsd.Start(ctx, natsd.Options{StoreDir: dir})
	if err != nil {
		panic(err)
	}
	defer srv.Close()
	j, err := journal.Open(ctx, srv.Conn(), journal.Options{})
	if err != nil {
		panic(err)
	}
	defer j.Close()

	for i, p := range []string{"a.md", "b.md", "a.md"} {
		ev, err := j.Append(ctx, events.Event{
			ID: fmt.Sprint("id-", i), Type: events.FileUpdated, Workspace: "docs", Path: p,
			Actor: events.ActorFS, Time: time.Now(),
		})
		if err != nil {
			panic(err)
		}
		fmt.Println("appended", ev.Path, "at", ev.Seq)
	}
	evs, err := j.Read(ctx, "docs", 1, 100)
	if err != nil {
		panic(err)
	}
	for _, ev := range evs {
		fmt.Println("read", ev.Seq, ev.Path)
	}
	// Output:
	// appended a.md at 1
	// appended b.md at 2
	// appended a.md at 3
	// read 2 b.md
	// read 3 a.md
}
