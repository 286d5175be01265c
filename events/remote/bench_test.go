package remote_test

import (
	"context"
	"errors"
	"testing"

	"github.com/filecast/filecast/events"
	"github.com/filecast/filecast/events/remote"
)

// BenchmarkClient_Subscribe measures receiving events from a hub: parsing
// the stream and decoding each event.
func BenchmarkClient_Subscribe(b *testing.B) {
	src, _ := newSource(b)
	h := startHub(b, src, "")
	src.Append("docs", createdN(b.N)...)
	c, err := remote.New(h.srv.URL, remote.Options{})
	if err != nil {
		b.Fatal(err)
	}
	done := errors.New("done")
	b.ReportAllocs()
	b.ResetTimer()
	err = c.Subscribe(context.Background(), "docs", 0, func(ev events.Event) error {
		if ev.Seq == uint64(b.N) {
			return done
		}
		return nil
	})
	if err != done {
		b.Fatal(err)
	}
}
