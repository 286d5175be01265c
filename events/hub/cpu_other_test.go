//go:build !unix

package hub_test

import (
	"testing"
	"time"
)

// cpuTime is unknown here: the benchmarks report 0.
func cpuTime(testing.TB) time.Duration { return 0 }
