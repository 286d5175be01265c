package webhook

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"time"
)

// DefaultScheduleText is the default retry schedule in the form
// ParseSchedule reads (and the default of --webhook-schedule).
const DefaultScheduleText = "5s,5m,30m,2h,5h,10h,14h,20h,24h"

// Schedule limits: at most MaxScheduleLen entries, each from MinDelay to
// MaxDelay.
const (
	MaxScheduleLen = 50
	MinDelay       = time.Millisecond
	MaxDelay       = 7 * 24 * time.Hour
)

// jitterFraction is the most a delay is moved either way.
const jitterFraction = 0.2

// DefaultSchedule returns the default retry schedule, DefaultScheduleText.
func DefaultSchedule() []time.Duration {
	s, err := ParseSchedule(DefaultScheduleText)
	if err != nil {
		panic(err) // the constant is valid
	}
	return s
}

// ParseSchedule reads a retry schedule: comma-separated Go durations
// ("5s,5m,30m"), each the delay before the next try counted from the end of
// the previous one. Spaces around entries are ignored. There are 1 to
// MaxScheduleLen entries, each from MinDelay to MaxDelay; the errors match
// ErrBadSchedule.
func ParseSchedule(s string) ([]time.Duration, error) {
	bad := func(why string, args ...any) ([]time.Duration, error) {
		return nil, fmt.Errorf("%w %q: %s", ErrBadSchedule, truncate(s, 80), fmt.Sprintf(why, args...))
	}
	if strings.TrimSpace(s) == "" {
		return bad("empty; give delays such as %s", DefaultScheduleText)
	}
	parts := strings.Split(s, ",")
	if len(parts) > MaxScheduleLen {
		return bad("more than %d entries", MaxScheduleLen)
	}
	out := make([]time.Duration, 0, len(parts))
	for i, p := range parts {
		p = strings.TrimSpace(p)
		d, err := time.ParseDuration(p)
		if err != nil {
			return bad("entry %d (%q) is not a duration such as 5s, 30m or 2h", i+1, truncate(p, 40))
		}
		if d < MinDelay || d > MaxDelay {
			return bad("entry %d (%s) is not between %v and %v", i+1, p, MinDelay, MaxDelay)
		}
		out = append(out, d)
	}
	return out, nil
}

// nextTry returns when the try after the attempt-th one (counted from 1)
// is due, that attempt having failed at now: the schedule's attempt-th
// delay, jittered, after now. It returns false when the schedule allows no
// more tries.
func nextTry(schedule []time.Duration, attempt int, now time.Time) (time.Time, bool) {
	if attempt < 1 || attempt > len(schedule) {
		return time.Time{}, false
	}
	return now.Add(jitter(schedule[attempt-1])), true
}

// jitter moves d by a random amount of at most jitterFraction either way.
func jitter(d time.Duration) time.Duration {
	f := 1 + jitterFraction*(2*rand.Float64()-1)
	return time.Duration(float64(d) * f)
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
