package hub_test

import (
	"context"
	"errors"
	"sync"

	"github.com/filecast/filecast/events"
	"github.com/filecast/filecast/events/hub"
)

// memLog is an in-memory hub.Log: a slice of events per workspace with
// seqs 1, 2, 3…, a broadcast channel for followers, optional retention
// (drop) and injected Follow failures. Tests run on the journal
// (newJournal) unless they make the log fail, lag or forget, hold it back
// (gatedLog), or load it with more events than the journal takes quickly.
type memLog struct {
	mu         sync.Mutex
	logs       map[string][]events.Event // kept events, oldest first
	dropped    map[string]uint64         // every seq up to this one was dropped
	head       map[string]uint64
	ids        map[string]uint64 // seq by event ID, for dedup
	changed    chan struct{}     // closed and replaced at every append
	failFollow int               // Follow calls that fail at once
	follows    int
}

var _ hub.DirectLog = (*memLog)(nil)

var errFollowFailed = errors.New("memlog: follow failed")

func newMemLog() *memLog {
	return &memLog{
		logs:    map[string][]events.Event{},
		dropped: map[string]uint64{},
		head:    map[string]uint64{},
		ids:     map[string]uint64{},
		changed: make(chan struct{}),
	}
}

func (m *memLog) Append(ctx context.Context, ev events.Event) (events.Event, error) {
	ev, _, err := m.AppendStored(ctx, ev)
	return ev, err
}

// AppendStored appends like Append; an event whose ID the log already
// holds is not stored again (like the journal's dedup window).
func (m *memLog) AppendStored(ctx context.Context, ev events.Event) (events.Event, bool, error) {
	if err := ctx.Err(); err != nil {
		return events.Event{}, false, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if seq, ok := m.ids[ev.ID]; ok && ev.ID != "" {
		ev.Seq = seq
		return ev, false, nil
	}
	m.head[ev.Workspace]++
	ev.Seq = m.head[ev.Workspace]
	m.logs[ev.Workspace] = append(m.logs[ev.Workspace], ev)
	if ev.ID != "" {
		m.ids[ev.ID] = ev.Seq
	}
	close(m.changed)
	m.changed = make(chan struct{})
	return ev, true, nil
}

// drop applies retention: events up to seq upTo are gone.
func (m *memLog) drop(ws string, upTo uint64) {
	m.mu.Lock()
	defer m.mu.Unlock()
	n := int(upTo - m.dropped[ws])
	m.logs[ws] = append([]events.Event(nil), m.logs[ws][n:]...)
	m.dropped[ws] = upTo
}

func (m *memLog) read(ws string, after uint64, limit int) ([]events.Event, error) {
	if after < m.dropped[ws] {
		return nil, events.ErrCursorExpired
	}
	kept := m.logs[ws]
	i := min(int(after-m.dropped[ws]), len(kept))
	j := min(i+limit, len(kept))
	return append([]events.Event(nil), kept[i:j]...), nil
}

func (m *memLog) Read(ctx context.Context, ws string, after uint64, limit int) ([]events.Event, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.read(ws, after, limit)
}

func (m *memLog) Head(ctx context.Context, ws string) (uint64, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.head[ws], nil
}

func (m *memLog) Follow(ctx context.Context, ws string, after uint64, fn func(events.Event) error) error {
	return m.FollowSkipping(ctx, ws, after, nil, fn)
}

func (m *memLog) FollowSkipping(ctx context.Context, ws string, after uint64, skip func(uint64) bool, fn func(events.Event) error) error {
	m.mu.Lock()
	m.follows++
	if m.failFollow > 0 {
		m.failFollow--
		m.mu.Unlock()
		return errFollowFailed
	}
	m.mu.Unlock()
	for {
		m.mu.Lock()
		evs, err := m.read(ws, after, 256)
		changed := m.changed
		m.mu.Unlock()
		if err != nil {
			return err
		}
		for _, ev := range evs {
			if skip == nil || !skip(ev.Seq) {
				if err := fn(ev); err != nil {
					return err
				}
			}
			after = ev.Seq
		}
		if len(evs) > 0 {
			continue
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

func (m *memLog) followCalls() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.follows
}
