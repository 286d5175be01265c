package server_test

import (
	"context"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/filecast/filecast/events"
	"github.com/filecast/filecast/events/workspace"
)

// memSource is an in-memory events.Source: a log per workspace in a
// slice, files in real folders.
type memSource struct {
	mu      sync.Mutex
	ws      map[string]*memLog
	routed  func(events.Event) // called after a subscriber's fn returned
	nextID  int
	subErrs int // fail this many Subscribe calls first
}

type memLog struct {
	dir    workspace.Workspace
	evs    []events.Event
	base   uint64 // events up to base were trimmed
	notify chan struct{}
}

var _ events.Source = (*memSource)(nil)

func newMemSource(t testing.TB, names ...string) *memSource {
	t.Helper()
	m := &memSource{ws: map[string]*memLog{}}
	for _, n := range names {
		dir := t.TempDir()
		real, err := filepath.EvalSymlinks(dir)
		if err != nil {
			t.Fatal(err)
		}
		m.ws[n] = &memLog{dir: workspace.Workspace{Name: n, Dir: real}, notify: make(chan struct{})}
	}
	return m
}

func (m *memSource) log(ws string) (*memLog, error) {
	l, ok := m.ws[ws]
	if !ok {
		return nil, &events.Error{Kind: events.ErrUnknownWorkspace, Value: ws}
	}
	return l, nil
}

// Dir returns the folder of a workspace.
func (m *memSource) Dir(ws string) string { return m.ws[ws].dir.Dir }

// Write creates a file in a workspace folder (no event).
func (m *memSource) Write(t testing.TB, ws, rel string, data []byte) {
	t.Helper()
	p := filepath.Join(m.Dir(ws), filepath.FromSlash(rel))
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
}

// Append adds an event to a workspace log and returns it.
func (m *memSource) Append(ws string, typ events.Type, path string, oldPath ...string) events.Event {
	m.mu.Lock()
	defer m.mu.Unlock()
	l := m.ws[ws]
	m.nextID++
	ev := events.Event{
		ID: fmt.Sprintf("ev%06d", m.nextID), Seq: l.base + uint64(len(l.evs)) + 1, Type: typ,
		Workspace: ws, Path: path, Actor: events.ActorFS, Time: time.Now(),
	}
	if len(oldPath) > 0 {
		ev.OldPath = oldPath[0]
	}
	l.evs = append(l.evs, ev)
	close(l.notify)
	l.notify = make(chan struct{})
	return ev
}

// AppendEvent adds ev to its workspace's log, setting its ID, Seq and
// (when zero) Time, and returns it.
func (m *memSource) AppendEvent(ev events.Event) events.Event {
	m.mu.Lock()
	defer m.mu.Unlock()
	l := m.ws[ev.Workspace]
	m.nextID++
	ev.ID = fmt.Sprintf("ev%06d", m.nextID)
	ev.Seq = l.base + uint64(len(l.evs)) + 1
	if ev.Time.IsZero() {
		ev.Time = time.Now()
	}
	l.evs = append(l.evs, ev)
	close(l.notify)
	l.notify = make(chan struct{})
	return ev
}

// has reports whether ws is a workspace of m.
func (m *memSource) has(ws string) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	_, ok := m.ws[ws]
	return ok
}

// Trim forgets the events up to and including seq.
func (m *memSource) Trim(ws string, seq uint64) {
	m.mu.Lock()
	defer m.mu.Unlock()
	l := m.ws[ws]
	n := int(seq - l.base)
	l.evs = slices.Clone(l.evs[n:])
	l.base = seq
}

func (m *memSource) Workspaces(context.Context) ([]events.WorkspaceInfo, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []events.WorkspaceInfo
	for name, l := range m.ws {
		out = append(out, events.WorkspaceInfo{Name: name, Head: l.base + uint64(len(l.evs))})
	}
	slices.SortFunc(out, func(a, b events.WorkspaceInfo) int { return compare(a.Name, b.Name) })
	return out, nil
}

func compare(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// after returns the events after seq (at most limit) and a channel closed
// on the next append.
func (m *memSource) after(ws string, seq uint64, limit int) ([]events.Event, bool, <-chan struct{}, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	l, err := m.log(ws)
	if err != nil {
		return nil, false, nil, err
	}
	if seq < l.base {
		return nil, false, nil, events.ErrCursorExpired
	}
	i := int(seq - l.base)
	if i > len(l.evs) {
		i = len(l.evs)
	}
	evs := l.evs[i:]
	more := false
	if limit > 0 && len(evs) > limit {
		evs, more = evs[:limit], true
	}
	return slices.Clone(evs), more, l.notify, nil
}

func (m *memSource) Subscribe(ctx context.Context, ws string, after uint64, fn func(events.Event) error) error {
	m.mu.Lock()
	if m.subErrs > 0 {
		m.subErrs--
		m.mu.Unlock()
		return fmt.Errorf("memsource: injected subscribe failure")
	}
	routed := m.routed
	m.mu.Unlock()
	for {
		evs, _, wake, err := m.after(ws, after, 0)
		if err != nil {
			return err
		}
		for _, ev := range evs {
			if err := fn(ev); err != nil {
				return err
			}
			if routed != nil {
				routed(ev)
			}
			after = ev.Seq
		}
		if len(evs) > 0 {
			continue
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-wake:
		}
	}
}

func (m *memSource) Changes(ctx context.Context, ws string, after uint64, limit int, wait time.Duration) (events.Page, error) {
	deadline := time.Now().Add(wait)
	for {
		evs, more, wake, err := m.after(ws, after, limit)
		if err != nil {
			return events.Page{}, err
		}
		if len(evs) > 0 || !time.Now().Before(deadline) {
			next := after
			if len(evs) > 0 {
				next = evs[len(evs)-1].Seq
			} else {
				m.mu.Lock()
				next = max(after, m.ws[ws].base+uint64(len(m.ws[ws].evs)))
				m.mu.Unlock()
			}
			if evs == nil {
				evs = []events.Event{}
			}
			return events.Page{Events: evs, Next: next, HasMore: more}, nil
		}
		t := time.NewTimer(time.Until(deadline))
		select {
		case <-ctx.Done():
			t.Stop()
			return events.Page{}, ctx.Err()
		case <-wake:
		case <-t.C:
		}
		t.Stop()
	}
}

func (m *memSource) Files(_ context.Context, ws, prefix string) (events.Listing, error) {
	m.mu.Lock()
	l, err := m.log(ws)
	var head uint64
	if err == nil {
		head = l.base + uint64(len(l.evs))
	}
	m.mu.Unlock()
	if err != nil {
		return events.Listing{}, err
	}
	out := events.Listing{Workspace: ws, Cursor: head, Files: []events.FileInfo{}}
	err = filepath.WalkDir(l.dir.Dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			return err
		}
		rel, ok := l.dir.Rel(p)
		if !ok || len(rel) < len(prefix) || rel[:len(prefix)] != prefix {
			return nil
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		out.Files = append(out.Files, events.FileInfo{Path: rel, Size: info.Size(), ModTime: info.ModTime()})
		return nil
	})
	return out, err
}

func (m *memSource) ReadFile(_ context.Context, ws, path string) ([]byte, events.FileInfo, error) {
	m.mu.Lock()
	l, err := m.log(ws)
	m.mu.Unlock()
	if err != nil {
		return nil, events.FileInfo{}, err
	}
	rel, err := workspace.Clean(path)
	if err != nil {
		return nil, events.FileInfo{}, err
	}
	data, st, err := l.dir.ReadFile(rel, events.MaxReadSize)
	if err != nil {
		return nil, events.FileInfo{}, err
	}
	return data, events.FileInfo{Path: rel, Size: st.Size(), ModTime: st.ModTime()}, nil
}
