package inbox_test

import (
	"context"
	"fmt"
	"runtime"
	"testing"

	"github.com/filecast/filecast/events"
	"github.com/filecast/filecast/events/inbox"
)

// TestInbox_MemoryBounded offers a session that never reads 20 times its
// capacity: the buffer stays at capacity, memory stops growing, and the
// next read reports the overflow.
func TestInbox_MemoryBounded(t *testing.T) {
	const capacity = 10_000
	b := inbox.New(inbox.Options{Workspaces: []string{"w"}, Capacity: capacity})
	defer b.Close()
	offer := func(from, n int) {
		for i := from; i < from+n; i++ {
			b.Offer(events.Event{ID: fmt.Sprint(i), Seq: uint64(i), Type: events.FileCreated, Workspace: "w",
				Path: fmt.Sprintf("dir/file-%07d.txt", i), SHA256: "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"})
		}
	}
	heap := func() uint64 {
		runtime.GC()
		var m runtime.MemStats
		runtime.ReadMemStats(&m)
		return m.HeapAlloc
	}
	offer(1, capacity)
	full := heap()
	offer(capacity+1, 19*capacity)
	after := heap()
	growth := int64(after) - int64(full)
	t.Logf("heap with a full buffer of %d events: %d KiB; after %d more offers: %+d KiB", capacity, full/1024, 19*capacity, growth/1024)
	if growth > 2<<20 {
		t.Fatalf("heap grew by %d KiB while the buffer was full", growth/1024)
	}
	res, err := b.Take(context.Background(), "", 1000, 0)
	if err != nil {
		t.Fatal(err)
	}
	if !res.Overflowed || len(res.Events) != 1000 || res.Cursor.For("w") != 1000 {
		t.Fatalf("Take after overflow: %d events, overflowed %v, cursor %v", len(res.Events), res.Overflowed, res.Cursor)
	}
}
