package watch_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/filecast/filecast/events"
	"github.com/filecast/filecast/events/watch"
	"github.com/filecast/filecast/events/workspace"
)

// printer is an Appender that numbers events and hands them on.
type printer struct {
	seq uint64
	out chan events.Event
}

func (p *printer) Append(_ context.Context, ev events.Event) (events.Event, error) {
	p.seq++
	ev.Seq = p.seq
	p.out <- ev
	return ev, nil
}

func Example() {
	dir, _ := os.MkdirTemp("", "ws")
	defer os.RemoveAll(dir)
	state, _ := os.MkdirTemp("", "state")
	defer os.RemoveAll(state)
	os.WriteFile(filepath.Join(dir, "notes.md"), []byte("draft"), 0o644) // indexed silently on the first start

	ws, _ := workspace.Parse("docs=" + dir)
	app := &printer{out: make(chan events.Event, 8)}
	w, err := watch.New(watch.Options{Workspace: ws, IndexPath: filepath.Join(state, "docs.json")}, app)
	if err != nil {
		fmt.Println(err)
		return
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	<-w.Ready()

	os.WriteFile(filepath.Join(dir, "notes.md"), []byte("final"), 0o644)
	ev := <-app.out
	fmt.Println(ev.Seq, ev.Type, ev.Path)

	os.Rename(filepath.Join(dir, "notes.md"), filepath.Join(dir, "report.md"))
	ev = <-app.out
	fmt.Println(ev.Seq, ev.Type, ev.OldPath, "->", ev.Path)

	cancel()
	fmt.Println(<-done)

	// The listing and the cursor it is consistent with; Files is safe to
	// call at any time, also after Run returned.
	files, cursor := w.Files("")
	fmt.Println(len(files), files[0].Path, files[0].Version, cursor)
	// Output:
	// 1 file.updated notes.md
	// 2 file.moved notes.md -> report.md
	// context canceled
	// 1 report.md 2 2
}
