package eventstest_test

import (
	"sync/atomic"
	"testing"
	"time"

	"github.com/filecast/filecast/events/eventstest"
)

func TestPoll(t *testing.T) {
	var n atomic.Int32
	if !eventstest.Poll(time.Minute, func() bool { return n.Add(1) == 5 }) {
		t.Fatal("Poll gave up on a condition that became true")
	}
	if got := n.Load(); got != 5 {
		t.Fatalf("cond called %d times, want 5", got)
	}
	if eventstest.Poll(30*time.Millisecond, func() bool { return false }) {
		t.Fatal("Poll reported a condition that never held")
	}
}

func ExampleEventually() {
	t := &testing.T{}
	done := make(chan struct{})
	go close(done)
	eventstest.Eventually(t, "the goroutine to finish", func() bool {
		select {
		case <-done:
			return true
		default:
			return false
		}
	})
}
