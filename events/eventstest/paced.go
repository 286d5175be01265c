package eventstest

import (
	"testing"
	"time"
)

// PacedCPU runs op b.N times, one a millisecond when paced (the runtime
// then idles between operations, as at a steady 1,000 a second), and
// reports the process's CPU per operation in microseconds as the metric
// unit (say "cpu-µs/event").
func PacedCPU(b *testing.B, paced bool, unit string, op func(i int) error) {
	b.Helper()
	var tick *time.Ticker
	if paced {
		tick = time.NewTicker(time.Millisecond)
		defer tick.Stop()
	}
	start := CPUTime(b)
	i := 0
	for b.Loop() {
		i++
		if paced {
			<-tick.C
		}
		if err := op(i); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64((CPUTime(b)-start).Nanoseconds())/1e3/float64(b.N), unit)
}
