package watch

import (
	"maps"
	"slices"
	"time"
)

// A notification rarely tells the whole story at once: a new file is
// written after it is created, a rewrite starts with a truncation, a
// rename is two notifications, and git checkout removes a file to create
// it again. So a path the Watcher hears of usually waits — until it has
// been quiet for a while, or until its pair arrives — before it is looked
// at and reported. settling is the set of those waits; it does no I/O and
// knows nothing of where notifications come from: the caller says what
// happened and when, and asks what is due (see Watcher.expire).

// pending is a path waiting to be quiet; first bounds the wait, so that a
// file written without pause is still reported.
type pending struct{ first, deadline time.Time }

// pendingRename is a path renamed away, waiting for the notification of
// where it went.
type pendingRename struct {
	id       fileID
	dir      bool
	deadline time.Time
}

// settling is every path waiting for quiet or for its pair, and the
// earliest deadline among them (and among the retries, which share it).
// It is owned by Run's goroutine.
type settling struct {
	creates map[string]*pending       // new files waiting to settle
	whole   map[string]bool           // of creates, those their writer closed: settled once the kernel is quiet
	updates map[string]*pending       // known files to look at again once quiet (big, truncated, or written while read)
	deletes map[string]*pending       // known files removed, reported once the path has stayed gone for the settle time
	gone    map[string]bool           // of deletes, those reported once the kernel is quiet, unless a replacement may be under way (see removal.go)
	renames map[string]*pendingRename // renamed-away paths waiting for their Create
	byID    map[fileID]string         // renames by inode
	next    time.Time                 // no deadline is before it; zero when nothing is pending
}

func newSettling() settling {
	return settling{
		creates: map[string]*pending{},
		whole:   map[string]bool{},
		updates: map[string]*pending{},
		deletes: map[string]*pending{},
		gone:    map[string]bool{},
		renames: map[string]*pendingRename{},
		byID:    map[fileID]string{},
	}
}

// wait (re)sets the deadline of rel in m (creates, updates or deletes) to
// now+d, at most maxSettle (or d, if longer) after it started waiting.
func (s *settling) wait(m map[string]*pending, rel string, d time.Duration, now time.Time) {
	p := m[rel]
	if p == nil {
		p = &pending{first: now}
		m[rel] = p
	}
	p.deadline = now.Add(d)
	if limit := p.first.Add(max(maxSettle, d)); p.deadline.After(limit) {
		p.deadline = limit
	}
	s.due(p.deadline)
}

// due notes a deadline: the Watcher looks at what is due by then.
func (s *settling) due(t time.Time) {
	if s.next.IsZero() || t.Before(s.next) {
		s.next = t
	}
}

// renamed notes that rel — a file with inode id, or a folder when dir —
// was renamed away at now: it waits pairWindow for the notification of
// its new name (see renamedFrom), and is gone after that. A path already
// waiting keeps its deadline.
func (s *settling) renamed(rel string, id fileID, dir bool, now time.Time) {
	if _, ok := s.renames[rel]; ok {
		return
	}
	pr := &pendingRename{id: id, dir: dir, deadline: now.Add(pairWindow)}
	s.renames[rel] = pr
	if id != (fileID{}) {
		s.byID[id] = rel
	}
	s.due(pr.deadline)
}

// renamedFrom returns the path, other than rel, that the file (or the
// folder, when dir) with inode id was renamed away from and that still
// waits for its new name.
func (s *settling) renamedFrom(id fileID, dir bool, rel string) (string, bool) {
	old, ok := s.byID[id]
	if !ok || old == rel {
		return "", false
	}
	pr := s.renames[old]
	if pr == nil || pr.dir != dir {
		return "", false
	}
	return old, true
}

// dropRename stops waiting for the new name of rel.
func (s *settling) dropRename(rel string) {
	if pr, ok := s.renames[rel]; ok {
		delete(s.renames, rel)
		if s.byID[pr.id] == rel {
			delete(s.byID, pr.id)
		}
	}
}

// sortedRenames lists the paths waiting for their new name, sorted.
func (s *settling) sortedRenames() []string {
	return slices.Sorted(maps.Keys(s.renames))
}

// forget stops every wait of the paths under prefix ("" for all): their
// folder is about to be compared with the index, is gone, or moved.
func (s *settling) forget(prefix string) {
	if prefix == "" {
		clear(s.creates)
		clear(s.whole)
		clear(s.updates)
		clear(s.deletes)
		clear(s.gone)
		clear(s.renames)
		clear(s.byID)
		return
	}
	for _, m := range []map[string]*pending{s.creates, s.updates, s.deletes} {
		for p := range m {
			if under(p, prefix) {
				delete(m, p)
			}
		}
	}
	for _, m := range []map[string]bool{s.whole, s.gone} {
		for p := range m {
			if under(p, prefix) {
				delete(m, p)
			}
		}
	}
	for p := range s.renames {
		if under(p, prefix) {
			s.dropRename(p)
		}
	}
}

// dueNow lists the paths whose wait is over, each sorted.
type dueNow struct {
	renames []string // renamed away, and no new name came: gone
	deletes []string // removed, and still gone (or back, to compare)
	creates []string // new files, settled
	updates []string // known files to look at again
}

// expired returns the paths whose deadline is at or before now, leaving
// them in place for the caller to take out as it handles them, and sets
// next to the earliest deadline still ahead.
func (s *settling) expired(now time.Time) dueNow {
	s.next = time.Time{}
	var d dueNow
	for p, pr := range s.renames {
		if now.Before(pr.deadline) {
			s.due(pr.deadline)
		} else {
			d.renames = append(d.renames, p)
		}
	}
	for _, x := range []struct {
		m   map[string]*pending
		out *[]string
	}{{s.deletes, &d.deletes}, {s.creates, &d.creates}, {s.updates, &d.updates}} {
		for p, pd := range x.m {
			if now.Before(pd.deadline) {
				s.due(pd.deadline)
			} else {
				*x.out = append(*x.out, p)
			}
		}
	}
	slices.Sort(d.renames)
	slices.Sort(d.deletes)
	slices.Sort(d.creates)
	slices.Sort(d.updates)
	return d
}

// under reports whether rel is prefix or lies under the folder prefix (""
// is the root: everything is under it).
func under(rel, prefix string) bool {
	return prefix == "" || rel == prefix || len(rel) > len(prefix) && rel[len(prefix)] == '/' && rel[:len(prefix)] == prefix
}
