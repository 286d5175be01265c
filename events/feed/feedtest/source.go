// Package feedtest provides an in-memory [events.Source] for tests of the
// packages that serve or consume events, in the spirit of net/http/httptest.
// Events live in a slice per workspace; files are read from a real folder.
//
//	src := feedtest.New()
//	src.AddWorkspace("docs", t.TempDir())
//	src.Append("docs", events.Event{Type: events.FileCreated, Path: "a.md"})
//	srv := httptest.NewServer(api.New(src, nil, api.Options{}))
package feedtest

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/filecast/filecast/events"
	"github.com/filecast/filecast/events/workspace"
)

// Source is an in-memory [events.Source]. It is safe for concurrent use.
type Source struct {
	mu      sync.Mutex
	logs    map[string]*wsLog
	changed chan struct{} // closed and replaced on every change
	closed  bool
}

type wsLog struct {
	ws       workspace.Workspace
	contents map[string]kept // by sha256
	events   []events.Event  // seq order, all > trimmed
	head     uint64
	trimmed  uint64            // events up to this seq were dropped
	version  map[string]uint64 // path → seq of the last event that touched it
}

// kept is a content of the store, or why it is not kept.
type kept struct {
	data []byte
	err  error
}

var _ events.Source = (*Source)(nil)

// New returns an empty Source.
func New() *Source {
	return &Source{logs: map[string]*wsLog{}, changed: make(chan struct{})}
}

// AddWorkspace serves the folder dir as workspace name with an empty log.
func (s *Source) AddWorkspace(name, dir string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.logs[name] = &wsLog{ws: workspace.Workspace{Name: name, Dir: dir}, version: map[string]uint64{}, contents: map[string]kept{}}
	s.notifyLocked()
}

// Dir returns the folder of workspace ws, or "" for an unknown workspace.
func (s *Source) Dir(ws string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if l := s.logs[ws]; l != nil {
		return l.ws.Dir
	}
	return ""
}

// Append adds events to the log of ws, filling in Seq, Workspace, and when
// empty ID, Actor and Time; it returns them as stored. It panics for an
// unknown workspace.
func (s *Source) Append(ws string, evs ...events.Event) []events.Event {
	s.mu.Lock()
	defer s.mu.Unlock()
	l := s.logs[ws]
	if l == nil {
		panic("feedtest: append to unknown workspace " + ws)
	}
	out := make([]events.Event, 0, len(evs))
	for _, ev := range evs {
		l.head++
		ev.Seq = l.head
		ev.Workspace = ws
		if ev.ID == "" {
			ev.ID = fmt.Sprintf("ev-%s-%d", ws, ev.Seq)
		}
		if ev.Actor == "" {
			ev.Actor = events.ActorFS
		}
		if ev.Time.IsZero() {
			ev.Time = time.Now().UTC()
		}
		l.events = append(l.events, ev)
		l.version[ev.Path] = ev.Seq
		out = append(out, ev)
	}
	s.notifyLocked()
	return out
}

// Trim drops the events of ws up to and including seq, so that reading
// after an earlier position fails with ErrCursorExpired.
func (s *Source) Trim(ws string, seq uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	l := s.logs[ws]
	l.trimmed = max(l.trimmed, seq)
	l.events = slices.DeleteFunc(l.events, func(ev events.Event) bool { return ev.Seq <= seq })
}

// Close ends every Subscribe and Changes wait with ErrClosed.
func (s *Source) Close() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed = true
	s.notifyLocked()
}

func (s *Source) notifyLocked() {
	close(s.changed)
	s.changed = make(chan struct{})
}

func (s *Source) log(ws string) (*wsLog, error) {
	if s.closed {
		return nil, events.ErrClosed
	}
	l := s.logs[ws]
	if l == nil {
		return nil, &events.Error{Kind: events.ErrUnknownWorkspace, Value: ws}
	}
	return l, nil
}

// read returns up to limit events after after, and a channel closed on the
// next change.
func (s *Source) read(ws string, after uint64, limit int) ([]events.Event, uint64, <-chan struct{}, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	l, err := s.log(ws)
	if err != nil {
		return nil, 0, nil, err
	}
	if after < l.trimmed {
		return nil, 0, nil, &events.Error{Kind: events.ErrCursorExpired, Value: fmt.Sprint(after)}
	}
	i, _ := slices.BinarySearchFunc(l.events, after+1, func(ev events.Event, seq uint64) int {
		return cmp.Compare(ev.Seq, seq)
	})
	n := min(len(l.events)-i, limit)
	return slices.Clone(l.events[i : i+n]), l.head, s.changed, nil
}

// Workspaces implements [events.Source].
func (s *Source) Workspaces(ctx context.Context) ([]events.WorkspaceInfo, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, events.ErrClosed
	}
	var out []events.WorkspaceInfo
	for name, l := range s.logs {
		out = append(out, events.WorkspaceInfo{Name: name, Head: l.head})
	}
	slices.SortFunc(out, func(a, b events.WorkspaceInfo) int { return strings.Compare(a.Name, b.Name) })
	return out, nil
}

// Subscribe implements [events.Source]; fn runs on the caller's goroutine.
func (s *Source) Subscribe(ctx context.Context, ws string, after uint64, fn func(events.Event) error) error {
	for {
		evs, _, changed, err := s.read(ws, after, 256)
		if err != nil {
			return err
		}
		for _, ev := range evs {
			if err := fn(ev); err != nil {
				return err
			}
			after = ev.Seq
		}
		if len(evs) > 0 {
			continue
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-changed:
		}
	}
}

// Changes implements [events.Source].
func (s *Source) Changes(ctx context.Context, ws string, after uint64, limit int, wait time.Duration) (events.Page, error) {
	if limit <= 0 {
		limit = 100
	}
	var timeout <-chan time.Time
	if wait > 0 {
		t := time.NewTimer(wait)
		defer t.Stop()
		timeout = t.C
	}
	for {
		evs, head, changed, err := s.read(ws, after, limit+1)
		if err != nil {
			return events.Page{}, err
		}
		if len(evs) > 0 {
			p := events.Page{Events: evs[:min(len(evs), limit)]}
			p.HasMore = len(evs) > limit
			p.Next = p.Events[len(p.Events)-1].Seq
			return p, nil
		}
		if timeout == nil {
			return events.Page{Next: max(head, after)}, nil
		}
		select {
		case <-ctx.Done():
			return events.Page{}, ctx.Err()
		case <-timeout:
			timeout = nil
		case <-changed:
		}
	}
}

// Files implements [events.Source] by walking the workspace folder.
func (s *Source) Files(ctx context.Context, ws, prefix string) (events.Listing, error) {
	s.mu.Lock()
	l, err := s.log(ws)
	var head uint64
	var version map[string]uint64
	if err == nil {
		head = l.head
		version = maps.Clone(l.version)
	}
	s.mu.Unlock()
	if err != nil {
		return events.Listing{}, err
	}
	list := events.Listing{Workspace: ws, Cursor: head, Files: []events.FileInfo{}}
	err = filepath.WalkDir(l.ws.Dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, ok := l.ws.Rel(p)
		if !ok || !d.Type().IsRegular() {
			return nil
		}
		if prefix != "" && rel != prefix && !strings.HasPrefix(rel, prefix+"/") {
			return nil
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		st, err := d.Info()
		if err != nil {
			return err
		}
		sum := sha256.Sum256(data)
		list.Files = append(list.Files, events.FileInfo{
			Path: rel, Size: int64(len(data)), SHA256: hex.EncodeToString(sum[:]),
			ModTime: st.ModTime().UTC(), Version: version[rel],
		})
		return nil
	})
	if err != nil {
		return events.Listing{}, fmt.Errorf("list files: %w", err)
	}
	return list, nil
}

// ReadFile implements [events.Source] through [workspace.Workspace.ReadFile]
// and, for a part, [workspace.Workspace.ReadRange].
func (s *Source) ReadFile(ctx context.Context, ws, path string, r events.Range) ([]byte, events.FileInfo, error) {
	s.mu.Lock()
	l, err := s.log(ws)
	var version uint64
	if err == nil {
		version = l.version[path]
	}
	s.mu.Unlock()
	if err != nil {
		return nil, events.FileInfo{}, err
	}
	rel, err := workspace.Clean(path)
	if err != nil {
		return nil, events.FileInfo{}, err
	}
	if rel != path {
		return nil, events.FileInfo{}, &events.Error{Kind: events.ErrBadPath, Value: path, Why: "not a normalised path"}
	}
	if !r.Whole() {
		p, err := l.ws.ReadRange(rel, r.Offset, r.Limit(), nil)
		if err != nil {
			return nil, events.FileInfo{}, err
		}
		return p.Data, events.FileInfo{
			Path: rel, Size: p.Info.Size(), SHA256: p.SHA256, ModTime: p.Info.ModTime().UTC(), Version: version,
		}, nil
	}
	data, st, err := l.ws.ReadFile(rel, events.MaxReadSize)
	if err != nil {
		return nil, events.FileInfo{}, err
	}
	sum := sha256.Sum256(data)
	return data, events.FileInfo{
		Path: rel, Size: int64(len(data)), SHA256: hex.EncodeToString(sum[:]),
		ModTime: st.ModTime().UTC(), Version: version,
	}, nil
}

// PutContent keeps data as a content of ws, as a hub's content store
// does, and returns its sha256. It panics for an unknown workspace.
func (s *Source) PutContent(ws string, data []byte) string {
	sum := sha256.Sum256(data)
	sha := hex.EncodeToString(sum[:])
	s.keep(ws, sha, kept{data: slices.Clone(data)})
	return sha
}

// MarkContent makes Content of sha in ws fail with err (events.ErrBinary,
// events.ErrTooLarge, …), as for a content the store knows but does not
// keep. It panics for an unknown workspace.
func (s *Source) MarkContent(ws, sha string, err error) { s.keep(ws, sha, kept{err: err}) }

// DropContent forgets the content under sha in ws, as a content store
// does when its size cap or retention drops it.
func (s *Source) DropContent(ws, sha string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if l := s.logs[ws]; l != nil {
		delete(l.contents, sha)
	}
}

func (s *Source) keep(ws, sha string, k kept) {
	s.mu.Lock()
	defer s.mu.Unlock()
	l := s.logs[ws]
	if l == nil {
		panic("feedtest: content of unknown workspace " + ws)
	}
	l.contents[sha] = k
}

// Content implements [events.Source] from the contents given to
// PutContent and MarkContent.
func (s *Source) Content(ctx context.Context, ws, sha string) ([]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	l, err := s.log(ws)
	if err != nil {
		return nil, err
	}
	if !events.ValidSHA256(sha) {
		return nil, &events.Error{Kind: events.ErrBadPath, Value: sha, Why: "not a sha256"}
	}
	k, ok := l.contents[sha]
	switch {
	case !ok && sha == emptySHA256:
		return []byte{}, nil
	case !ok:
		return nil, &events.Error{Kind: events.ErrNotStored, Value: sha}
	case k.err != nil:
		return nil, &events.Error{Kind: k.err, Value: sha}
	}
	return slices.Clone(k.data), nil
}

// emptySHA256 is the sha256 of no bytes: its content is always known.
const emptySHA256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
