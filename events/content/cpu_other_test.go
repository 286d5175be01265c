//go:build !unix

package content_test

import (
	"testing"
	"time"
)

// cpuTime is elapsed time where the process's CPU time is not at hand.
func cpuTime(testing.TB) time.Duration { return time.Duration(time.Now().UnixNano()) }
