package journal

import (
	"errors"
	"fmt"
	"log/slog"
	"testing"
	"testing/synctest"
	"time"

	"github.com/filecast/filecast/events"
)

// TestRoom_Backoff: without Options.Room, a refusal makes the log count as
// full for a second, doubling with each refusal in a row up to 30 s; an
// append that succeeds ends it at once, and the next refusal starts again
// at a second. Under synctest, so the instants are exact.
func TestRoom_Backoff(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		j := &Journal{log: slog.New(slog.DiscardHandler)}
		refuse := func() {
			t.Helper()
			err := j.noteAppend(fmt.Errorf("store full: %w", events.ErrInsufficientStorage))
			if !errors.Is(err, events.ErrInsufficientStorage) {
				t.Fatalf("noteAppend of a refusal = %v", err)
			}
		}
		fullFor := func(d time.Duration) {
			t.Helper()
			start := time.Now()
			time.Sleep(d - time.Nanosecond)
			if err := j.Room(); !errors.Is(err, events.ErrInsufficientStorage) {
				t.Fatalf("Room() %v after a refusal = %v, want the log full for %v", time.Since(start), err, d)
			}
			time.Sleep(time.Nanosecond)
			if err := j.Room(); err != nil {
				t.Fatalf("Room() %v after a refusal = %v, want room again", d, err)
			}
		}
		if err := j.Room(); err != nil {
			t.Fatalf("Room() of a new journal = %v", err)
		}
		for _, d := range []time.Duration{time.Second, 2 * time.Second, 4 * time.Second, 8 * time.Second,
			16 * time.Second, 30 * time.Second, 30 * time.Second} {
			refuse()
			fullFor(d)
		}
		if since, _, full := j.Full(); !full || !since.Equal(time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)) {
			t.Errorf("Full() = %v, %v; want full since the first refusal", since, full)
		}
		refuse()
		if err := j.noteAppend(nil); err != nil {
			t.Fatal(err)
		}
		if err := j.Room(); err != nil {
			t.Errorf("Room() after an append succeeded = %v", err)
		}
		if _, _, full := j.Full(); full {
			t.Error("Full() after an append succeeded")
		}
		refuse()
		fullFor(time.Second)
	})
}
