package webhook

import (
	"testing"
	"time"
)

// TestNextTry: each entry of the schedule is the delay before the next
// try, counted from the failed one, moved by at most 20 % either way; the
// schedule's length caps the tries.
func TestNextTry(t *testing.T) {
	schedule := []time.Duration{100 * time.Millisecond, time.Minute, 2 * time.Hour}
	failed := time.Date(2026, 11, 27, 10, 0, 0, 0, time.UTC)
	for attempt, d := range schedule {
		lo, hi := failed.Add(d*8/10), failed.Add(d*12/10)
		var below, above bool
		for range 1000 {
			at, more := nextTry(schedule, attempt+1, failed)
			if !more {
				t.Fatalf("attempt %d of %d: no next try", attempt+1, len(schedule))
			}
			if at.Before(lo) || at.After(hi) {
				t.Fatalf("attempt %d: next try at %v, want within %v ± 20%% of %v", attempt+1, at.Sub(failed), d, failed)
			}
			below = below || at.Before(failed.Add(d))
			above = above || at.After(failed.Add(d))
		}
		if !below || !above {
			t.Errorf("attempt %d: 1000 delays all on one side of %v: no jitter", attempt+1, d)
		}
	}
	for _, attempt := range []int{0, len(schedule) + 1, len(schedule) + 5} {
		if at, more := nextTry(schedule, attempt, failed); more {
			t.Errorf("attempt %d: next try at %v, want none", attempt, at)
		}
	}
	if _, more := nextTry(nil, 1, failed); more {
		t.Error("an empty schedule allows a retry")
	}
}
