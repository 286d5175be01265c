package hub_test

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/filecast/filecast/events"
	"github.com/filecast/filecast/events/hub"
)

func BenchmarkHub_FanOut(b *testing.B) {
	for _, subs := range []int{1, 100, 1000} {
		b.Run(fmt.Sprintf("subscribers=%d", subs), func(b *testing.B) {
			log := newMemLog()
			h := startHub(b, log, hub.Options{})
			ctx, cancel := context.WithCancel(context.Background())
			var delivered atomic.Int64
			var wg sync.WaitGroup
			for range subs {
				wg.Add(1)
				go func() {
					defer wg.Done()
					_ = h.Subscribe(ctx, "docs", 0, func(events.Event) error {
						delivered.Add(1)
						return nil
					})
				}()
			}
			defer func() { cancel(); wg.Wait() }()
			ev := fileEvent("docs", 0) // no ID: memLog stores every copy
			// One warm-up event reaches every subscriber before timing.
			if _, err := log.Append(ctx, ev); err != nil {
				b.Fatal(err)
			}
			waitDelivered := func(n int64) {
				for delivered.Load() < n {
					time.Sleep(50 * time.Microsecond)
				}
			}
			waitDelivered(int64(subs))
			b.ReportAllocs()
			b.ResetTimer()
			start := time.Now()
			for range b.N {
				if _, err := log.Append(ctx, ev); err != nil {
					b.Fatal(err)
				}
			}
			waitDelivered(int64(subs) * int64(b.N+1))
			b.StopTimer()
			b.ReportMetric(float64(subs)*float64(b.N)/time.Since(start).Seconds(), "events/s")
		})
	}
}
