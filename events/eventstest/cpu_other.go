//go:build !unix

package eventstest

import (
	"testing"
	"time"
)

// CPUTime is unknown here: benchmarks that report CPU time report 0.
func CPUTime(testing.TB) time.Duration { return 0 }
