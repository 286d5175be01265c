package journal

import (
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/filecast/filecast/events"
	"github.com/filecast/filecast/events/natsd"
)

// Backoff of Room without Options.Room: after a refusal the log counts as
// full for roomRetry, doubling with each refusal in a row up to
// roomRetryMax; then one append may try again.
const (
	roomRetry    = time.Second
	roomRetryMax = 30 * time.Second
)

// IsStorageRefusal reports whether err says the server could not store
// an event for want of room (see natsd.NoRoom); such a refusal stored
// nothing.
func IsStorageRefusal(err error) bool {
	return errors.Is(err, events.ErrInsufficientStorage) || natsd.NoRoom(err)
}

// fullness is whether the log can take more events, as Options.Room and
// the outcome of the last appends tell.
type fullness struct {
	mu       sync.Mutex
	full     bool
	since    time.Time
	reason   string
	refusals int       // in a row
	retryAt  time.Time // without Options.Room: when an append may try again
}

// Full reports whether the log is full: since when and why. With
// Options.Room it asks it first.
func (j *Journal) Full() (since time.Time, reason string, full bool) {
	if j.opts.Room != nil {
		_ = j.roomToAppend()
	}
	f := &j.full
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.since, f.reason, f.full
}

// Room returns nil when an append may go ahead, and otherwise an error
// wrapping events.ErrInsufficientStorage that says why. With Options.Room
// the answer is Options.Room's; without it, the log counts as full from a
// refusal until a backoff has passed (a second, doubling with each refusal
// in a row up to 30 s), when one append may try again. Callers that are
// about to change something only an appended event can report (a file
// written through the hub) ask first. Safe for concurrent use.
func (j *Journal) Room() error {
	if j.opts.Room != nil {
		return j.roomToAppend()
	}
	f := &j.full
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.full && time.Now().Before(f.retryAt) {
		return noRoom(f.reason)
	}
	return nil
}

// roomToAppend asks Options.Room, when set, and records its answer.
func (j *Journal) roomToAppend() error {
	if j.opts.Room == nil {
		return nil
	}
	if err := j.opts.Room(); err != nil {
		j.setFull(err.Error())
		return noRoom(err.Error())
	}
	j.clearFull()
	return nil
}

// noteAppend records the outcome of an append and returns its error,
// wrapping events.ErrInsufficientStorage when it was a refusal for want of
// room.
func (j *Journal) noteAppend(err error) error {
	switch {
	case err == nil:
		j.clearFull()
		return nil
	case !IsStorageRefusal(err):
		if j.opts.Room == nil || j.opts.Room() == nil {
			return err
		}
		// No answer, and the store has no room now: it failed the write
		// for want of space (and then does not answer), so nothing was
		// stored.
		err = fmt.Errorf("%w: %w", noRoom(j.opts.Room().Error()), err)
	}
	j.setFull(err.Error())
	if errors.Is(err, events.ErrInsufficientStorage) {
		return err
	}
	return fmt.Errorf("%w: the server refused to store the event: %w", events.ErrInsufficientStorage, err)
}

func noRoom(reason string) error {
	return fmt.Errorf("%w: the event log cannot take more events: %s", events.ErrInsufficientStorage, reason)
}

func (j *Journal) setFull(reason string) {
	f := &j.full
	f.mu.Lock()
	defer f.mu.Unlock()
	now := time.Now()
	if !f.full {
		f.full, f.since, f.refusals = true, now, 0
		j.log.Warn("the event log is full: writes through filecast are refused and changes on disk are held until it has room", "reason", reason)
	}
	f.reason = reason
	f.refusals++
	f.retryAt = now.Add(min(roomRetry<<min(f.refusals-1, 5), roomRetryMax))
}

func (j *Journal) clearFull() {
	f := &j.full
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.full {
		j.log.Info("the event log has room again", "full_for", time.Since(f.since).Round(time.Millisecond))
	}
	f.full, f.reason, f.refusals = false, "", 0
}
