package inbox

import "github.com/filecast/filecast/events"

// seqKey names one event of one workspace.
type seqKey struct {
	ws  string
	seq uint64
}

// pathKey names one path of one workspace.
type pathKey struct {
	ws   string
	path string
}

// entry is one slot of the buffer; removed slots stay until compaction.
type entry struct {
	ev   events.Event
	live bool
}

// buffer holds events in arrival order (which is seq order within each
// workspace). Removal anywhere is O(1): the slot is marked and the slice is
// compacted once most of it is dead, so the cost is amortised.
type buffer struct {
	entries []entry
	start   int             // entries before start are all dead
	live    int             // live entries
	bySeq   map[seqKey]int  // index of every live entry
	updates map[pathKey]int // index of the live file.updated that a newer update of the same path replaces
}

// newBuffer returns an empty buffer; its maps are made by the first push,
// so that the buffer of a session that never gets an event stays small.
func newBuffer() *buffer { return &buffer{} }

// push appends ev; a file.updated becomes the coalescing target of its path.
func (q *buffer) push(ev events.Event) {
	i := len(q.entries)
	q.entries = append(q.entries, entry{ev: ev, live: true})
	q.live++
	if q.bySeq == nil {
		q.bySeq, q.updates = map[seqKey]int{}, map[pathKey]int{}
	}
	q.bySeq[seqKey{ev.Workspace, ev.Seq}] = i
	if ev.Type == events.FileUpdated {
		q.updates[pathKey{ev.Workspace, ev.Path}] = i
	}
}

// coalesce replaces the unread file.updated of ev's path, if there is one
// by the same actor under the same lock state, by ev at the end of the
// buffer, and reports whether it did. An update by someone else stays.
func (q *buffer) coalesce(ev events.Event) bool {
	i, ok := q.updates[pathKey{ev.Workspace, ev.Path}]
	if !ok || !sameWriter(q.entries[i].ev, ev) {
		return false
	}
	q.remove(i)
	q.push(ev)
	return true
}

// sameWriter reports whether two updates of a path were made by the same
// actor under the same lock state, so that the newer one may stand for
// both.
func sameWriter(a, b events.Event) bool {
	if a.Actor != b.Actor || a.Conflict != b.Conflict || (a.Lock == nil) != (b.Lock == nil) {
		return false
	}
	return a.Lock == nil || a.Lock.Holder == b.Lock.Holder
}

// forget ends coalescing for a path: a newer event touched it.
func (q *buffer) forget(ws, path string) {
	if path != "" {
		delete(q.updates, pathKey{ws, path})
	}
}

// find returns the index of the live entry with this workspace and seq.
func (q *buffer) find(ws string, seq uint64) (int, bool) {
	i, ok := q.bySeq[seqKey{ws, seq}]
	return i, ok
}

// remove kills the live entry at i and returns its event.
func (q *buffer) remove(i int) events.Event {
	e := &q.entries[i]
	ev := e.ev
	e.live = false
	e.ev = events.Event{} // release its strings
	q.live--
	delete(q.bySeq, seqKey{ev.Workspace, ev.Seq})
	pk := pathKey{ev.Workspace, ev.Path}
	if j, ok := q.updates[pk]; ok && j == i {
		delete(q.updates, pk)
	}
	return ev
}

// tidy skips the dead prefix and compacts when most slots are dead. It
// invalidates indices, so it runs only between scans.
func (q *buffer) tidy() {
	for q.start < len(q.entries) && !q.entries[q.start].live {
		q.start++
	}
	if q.start == len(q.entries) {
		clear(q.entries)
		q.entries = q.entries[:0]
		q.start = 0
		return
	}
	dead := len(q.entries) - q.live
	if dead < 64 || dead < q.live {
		return
	}
	n := 0
	for i := q.start; i < len(q.entries); i++ {
		if !q.entries[i].live {
			continue
		}
		ev := q.entries[i].ev
		q.entries[n] = q.entries[i]
		q.bySeq[seqKey{ev.Workspace, ev.Seq}] = n
		pk := pathKey{ev.Workspace, ev.Path}
		if j, ok := q.updates[pk]; ok && j == i {
			q.updates[pk] = n
		}
		n++
	}
	clear(q.entries[n:])
	q.entries = q.entries[:n]
	q.start = 0
}
