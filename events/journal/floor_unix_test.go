//go:build unix

package journal_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/filecast/filecast/events/eventstest"
	"github.com/filecast/filecast/events/journal"
)

// BenchmarkJournal_Floor is what the log costs at least per event: one
// publish and its acknowledgement on the embedded JetStream, of a
// message as big as an encoded event (~250 bytes) with its Nats-Msg-Id,
// straight through nats.go ("jetstream") and through Journal.Append
// ("append", which encodes the event too). "paced" appends one event a
// millisecond (1,000/s, the rate of filecast bench's mixed scenario:
// the runtime idles between events, as in use); "cpu-µs/event" is the
// whole process's CPU per event, the embedded server's included.
func BenchmarkJournal_Floor(b *testing.B) {
	for _, paced := range []bool{false, true} {
		b.Run(fmt.Sprintf("jetstream/paced=%v", paced), func(b *testing.B) {
			j, nc := openConn(b, b.TempDir(), journal.Options{})
			ctx := context.Background()
			if err := j.Ensure(ctx, "bench"); err != nil {
				b.Fatal(err)
			}
			js, err := jetstream.New(nc)
			if err != nil {
				b.Fatal(err)
			}
			data, err := event("bench", 1).MarshalJSON()
			if err != nil {
				b.Fatal(err)
			}
			subj := journal.Subject("bench")
			b.ReportAllocs()
			eventstest.PacedCPU(b, paced, "cpu-µs/event", func(i int) error {
				_, err := js.Publish(ctx, subj, data, jetstream.WithMsgID(fmt.Sprint("e", i)))
				return err
			})
		})
		b.Run(fmt.Sprintf("append/paced=%v", paced), func(b *testing.B) {
			j := open(b, b.TempDir(), journal.Options{})
			ctx := context.Background()
			if err := j.Ensure(ctx, "bench"); err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			eventstest.PacedCPU(b, paced, "cpu-µs/event", func(i int) error {
				_, err := j.Append(ctx, event("bench", i))
				return err
			})
		})
	}
}
