package hub

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"sync"
	"time"

	"github.com/filecast/filecast/events"
)

// Two conditions keep a hub from serving everything, and both pass by
// themselves:
//
//   - a workspace whose folder is missing (removed, or moved away) is
//     unavailable: reading, writing, listing and locking its files fail with
//     events.ErrWorkspaceUnavailable (HTTP 503) until the folder is back,
//     while its log (events, cursors, SSE) is still served. The watcher
//     watches the folder again as soon as it reappears and reports what
//     changed meanwhile;
//   - a log that cannot take more events (its disk full, its storage limit
//     reached) is full: writes through the hub are refused with
//     events.ErrInsufficientStorage (HTTP 507) before the file is touched,
//     and so are new locks; reads, listings, the log and existing locks are
//     served as usual, and the watcher holds the changes it sees until the
//     log has room again.
//
// Problems lists them for /healthz and the dashboard.

// Presence is an Index that knows whether its workspace's folder is there
// (satisfied by *watch.Watcher). Missing is safe for concurrent use and
// does no I/O.
type Presence interface {
	// Missing reports whether the folder is missing, and since when.
	Missing() (since time.Time, missing bool)
}

// RoomLog is a Log that knows whether it can take more events (satisfied
// by *journal.Journal). Its methods are safe for concurrent use.
type RoomLog interface {
	// Room returns nil when an append may go ahead, else an error
	// wrapping events.ErrInsufficientStorage.
	Room() error
	// Full reports whether the log is full, since when and why.
	Full() (since time.Time, reason string, full bool)
}

// missingSince remembers, per workspace without a Presence index, when
// the hub first found its folder missing.
type missingSince struct {
	mu    sync.Mutex
	since time.Time
}

// unavailable returns events.ErrWorkspaceUnavailable (as an *events.Error)
// when the folder of st is missing, and since when: as its watcher says,
// or, without one, as a look at the folder tells.
func (h *Hub) unavailable(st *wsState) (time.Time, error) {
	var since time.Time
	missing := false
	if p, ok := st.presence(); ok {
		since, missing = p.Missing()
	} else {
		since, missing = st.lookAtRoot()
	}
	if !missing {
		return time.Time{}, nil
	}
	return since, &events.Error{Kind: events.ErrWorkspaceUnavailable, Value: st.w.Name,
		Why: fmt.Sprintf("its folder is missing (removed or moved away) since %s; filecast watches it again as soon as it is back", since.UTC().Format(time.RFC3339))}
}

// present returns events.ErrWorkspaceUnavailable when the watcher of st
// knows its folder is missing; it does no I/O.
func (h *Hub) present(st *wsState) error {
	p, ok := st.presence()
	if !ok {
		return nil
	}
	if _, missing := p.Missing(); !missing {
		return nil
	}
	_, err := h.unavailable(st)
	return err
}

// presence returns the index of st when it is a Presence.
func (st *wsState) presence() (Presence, bool) {
	box := st.index.Load()
	if box == nil {
		return nil, false
	}
	p, ok := box.Index.(Presence)
	return p, ok
}

// lookAtRoot reports whether the folder of st is missing now.
func (st *wsState) lookAtRoot() (time.Time, bool) {
	fi, err := os.Stat(st.w.Dir)
	missing := errors.Is(err, fs.ErrNotExist) || err == nil && !fi.IsDir()
	st.missing.mu.Lock()
	defer st.missing.mu.Unlock()
	switch {
	case !missing:
		st.missing.since = time.Time{}
	case st.missing.since.IsZero():
		st.missing.since = time.Now()
	}
	return st.missing.since, missing
}

// missingRoot turns an error met opening the folder of st into
// events.ErrWorkspaceUnavailable when the folder is missing; other errors
// are returned as they are.
func (h *Hub) missingRoot(st *wsState, err error) error {
	if _, missing := st.lookAtRoot(); missing {
		_, uerr := h.unavailable(st)
		if uerr == nil { // the watcher has not noticed yet
			uerr = &events.Error{Kind: events.ErrWorkspaceUnavailable, Value: st.w.Name,
				Why: "its folder is missing (removed or moved away); filecast watches it again as soon as it is back"}
		}
		return uerr
	}
	return err
}

// Room returns nil while the log can take more events, else an error
// wrapping events.ErrInsufficientStorage that says why. A log that cannot
// tell always has room.
func (h *Hub) Room() error {
	if h.roomLog == nil {
		return nil
	}
	return h.roomLog.Room()
}

// Problems returns what keeps the hub from serving everything now: each
// unavailable workspace, sorted by name, then a full log. It is empty when
// all is well. Safe for concurrent use; it looks at each folder that has
// no watcher.
func (h *Hub) Problems() []events.Problem {
	var out []events.Problem
	for _, name := range h.names {
		if since, err := h.unavailable(h.ws[name]); err != nil {
			out = append(out, events.Problem{Code: events.ProblemWorkspaceUnavailable, Workspace: name, Message: err.Error(), Since: since})
		}
	}
	if h.roomLog != nil {
		if since, reason, full := h.roomLog.Full(); full {
			out = append(out, events.Problem{
				Code:    events.ProblemInsufficientStorage,
				Message: "the event log cannot take more events (" + reason + "); writes through filecast are refused and changes on disk are held until it has room",
				Since:   since,
			})
		}
	}
	return out
}

// Holder is an Index that holds changes while the log has no room
// (satisfied by *watch.Watcher).
type Holder interface {
	// HeldChanges reports how many changed paths it holds, and whether it
	// will compare the whole workspace instead.
	HeldChanges() (paths int, rescan bool)
}

// Held returns, per workspace whose index is a Holder here, how many
// changed paths it holds until the log has room; -1 means it will compare
// the whole workspace then.
func (h *Hub) Held() map[string]int {
	out := map[string]int{}
	for _, name := range h.names {
		box := h.ws[name].index.Load()
		if box == nil {
			continue
		}
		if hd, ok := box.Index.(Holder); ok {
			n, rescan := hd.HeldChanges()
			if rescan {
				n = -1
			}
			out[name] = n
		}
	}
	return out
}
