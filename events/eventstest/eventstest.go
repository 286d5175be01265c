// Package eventstest holds what filecast's tests share to wait for a
// condition: one way to poll with a deadline, so that no test sleeps for a
// guessed duration and hopes.
//
//	eventstest.Eventually(t, "the event in the log", func() bool {
//		return head(t) == 3
//	})
//
// Time-driven logic (debounce, heartbeats, TTLs, backoff) is better tested
// under testing/synctest; Eventually is for waiting on other processes,
// real files and real servers.
package eventstest

import (
	"testing"
	"time"
)

// Timeout is how long Eventually waits: generous, for loaded machines and
// the race detector; a condition that holds returns at once.
const Timeout = 20 * time.Second

// Eventually polls cond until it reports true, and fails the test (from
// the calling goroutine, with t.Fatalf) naming what it waited for if that
// takes longer than Timeout.
func Eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	Within(t, Timeout, what, cond)
}

// Within is Eventually with a deadline of its own.
func Within(t testing.TB, d time.Duration, what string, cond func() bool) {
	t.Helper()
	if !Poll(d, cond) {
		t.Fatalf("timed out after %s waiting for %s", d, what)
	}
}

// Poll calls cond until it reports true or d has passed, and reports
// whether it did. The pause between calls grows from 1 ms to 20 ms, so a
// quick condition is seen quickly and a slow one costs little CPU.
func Poll(d time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(d)
	pause := time.Millisecond
	for !cond() {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(pause)
		pause = min(pause*2, 20*time.Millisecond)
	}
	return true
}
