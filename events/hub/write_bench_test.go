package hub_test

import (
	"context"
	"strconv"
	"testing"

	"github.com/filecast/filecast/events"
	"github.com/filecast/filecast/events/hub/hubtest"
)

// BenchmarkHub_WriteFile measures a locked write through a real stack:
// the lock check, the atomic write (with fsync), the append to JetStream
// and the watcher's silent catch-up.
func BenchmarkHub_WriteFile(b *testing.B) {
	st := hubtest.Start(b, hubtest.Options{})
	ctx := context.Background()
	l, err := st.Hub.Lock(ctx, events.LockRequest{Workspace: "docs", Path: "bench.txt", Holder: "bench"})
	if err != nil {
		b.Fatal(err)
	}
	content := make([]byte, 4096)
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		copy(content, strconv.Itoa(i))
		if _, err := st.Hub.WriteFile(ctx, events.WriteRequest{Workspace: "docs", Path: "bench.txt", Content: content,
			LockToken: l.Token, FencingToken: l.FencingToken, Actor: "api:bench"}); err != nil {
			b.Fatal(err)
		}
	}
}
