package inbox_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/filecast/filecast/events"
	"github.com/filecast/filecast/events/inbox"
)

// benchStream is a cycle of events over many paths, about half of which
// the glob subscriptions below select.
func benchStream(n int) []events.Event {
	exts := []string{".md", ".go", ".txt", ".json"}
	types := []events.Type{events.FileCreated, events.FileUpdated, events.FileUpdated, events.FileDeleted}
	out := make([]events.Event, n)
	for i := range out {
		out[i] = events.Event{ID: fmt.Sprint("ev", i), Type: types[i%len(types)], Workspace: "docs",
			Path: fmt.Sprintf("dir%d/sub/file%d%s", i%7, i%97, exts[i%len(exts)]), Actor: events.ActorFS}
	}
	return out
}

func benchInbox(b *testing.B, subs int) *inbox.Inbox {
	in := inbox.New(inbox.Options{Workspaces: []string{"docs"}, Capacity: 1 << 20, Holder: me})
	for i := range subs {
		globs := []string{fmt.Sprintf("dir%d/**/*.md", i%7), "*.go"}
		if _, err := in.Subscribe(filter(b, "", globs, nil), i%2 == 0); err != nil {
			b.Fatal(err)
		}
	}
	return in
}

func BenchmarkInbox_Offer(b *testing.B) {
	stream := benchStream(4096)
	for _, subs := range []int{0, 1, 10} {
		b.Run(fmt.Sprintf("subs=%d", subs), func(b *testing.B) {
			in := benchInbox(b, subs)
			b.ReportAllocs()
			seq := uint64(0)
			for b.Loop() {
				seq++
				if seq%uint64(len(stream)) == 0 {
					b.StopTimer()
					for { // drain, so that every Offer is measured on a buffer with room
						res, err := in.Take(context.Background(), "", inbox.MaxLimit, 0)
						if err != nil {
							b.Fatal(err)
						}
						if !res.HasMore {
							break
						}
					}
					b.StartTimer()
				}
				e := stream[seq%uint64(len(stream))]
				e.Seq = seq
				in.Offer(e)
			}
		})
	}
}

func BenchmarkInbox_OfferTake(b *testing.B) {
	stream := benchStream(4096)
	for _, subs := range []int{0, 10} {
		b.Run(fmt.Sprintf("subs=%d", subs), func(b *testing.B) {
			in := benchInbox(b, subs)
			ctx := context.Background()
			b.ReportAllocs()
			seq := uint64(0)
			for b.Loop() {
				for range 10 {
					seq++
					e := stream[seq%uint64(len(stream))]
					e.Seq = seq
					in.Offer(e)
				}
				if _, err := in.Take(ctx, "", 0, 0); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
