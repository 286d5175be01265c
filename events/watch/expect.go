package watch

import (
	"context"
	"maps"
	"os"
	"slices"
	"time"

	"github.com/filecast/filecast/events"
)

// Changes the hub makes itself (a write or delete through its API) are
// reported by the hub, with the writer as actor and the lock it held. The
// Watcher must then not report the same change again as actor "fs": the
// hub calls Expect before it touches the file, and Applied once its event
// is in the log (or Abandon if it could not append it). When the Watcher
// sees the expected content at the expected path (or the path gone, for a
// delete), it updates its index silently instead of appending an event, and
// the index takes the version of the hub's event.
//
// Applied takes the change into the index at once, so that whatever the
// Watcher observes next is judged against the hub's change: a file the hub
// created and someone edited before the Watcher looked is file.updated; one
// the hub created and someone deleted is file.deleted.
//
// An expectation the Watcher never sees fulfilled — the file was changed
// again before the Watcher looked — is dropped when the Watcher sees other
// content at that path more than expectGrace after it was made, and in any
// case after expectTTL.

const (
	// expectGrace covers a Watcher that reads a file just before the hub's
	// rename lands: what it sees then is older than the expectation and
	// must not cancel it.
	expectGrace = time.Second
	// expectTTL bounds how long an unfulfilled expectation is kept.
	expectTTL = time.Minute
)

// expectation is one change the hub announced at a path.
type expectation struct {
	sha     string // the new content's sha256; "" for a delete
	deleted bool
	at      time.Time
	seq     uint64 // the hub's event, once Applied; 0 before
	seen    bool   // the Watcher saw it and updated its index silently
	prev    *entry // when seen before Applied: the index entry before (nil: none) ...
	applied *entry // ... and the one the Watcher put (nil for a delete), for Undo
}

func (x *expectation) matches(sha string, deleted bool) bool {
	return x.deleted == deleted && (deleted || x.sha == sha)
}

// Expect tells the Watcher that the caller is about to change rel: write
// content with the given sha256 (hex), or delete it. When the Watcher next
// sees exactly that, it reports nothing and updates its index silently.
// Call Applied with the event the caller appended, or Abandon if it
// appended none. Expect is safe for concurrent use; rel must be clean.
func (w *Watcher) Expect(rel, sha256 string, deleted bool) {
	if deleted {
		sha256 = ""
	}
	now := time.Now()
	w.xmu.Lock()
	defer w.xmu.Unlock()
	w.sweepExpects(now)
	w.expects[rel] = append(w.expects[rel], &expectation{sha: sha256, deleted: deleted, at: now})
}

// Applied records the event the caller appended for a change it announced
// with Expect, and takes the change into the index at once: the entry of
// ev.Path gets the new content and ev.Seq as its version (or goes, for a
// delete), so that what the Watcher observes next is judged against it.
// Events that match no expectation are ignored. Applied is safe for
// concurrent use.
func (w *Watcher) Applied(ev events.Event) {
	deleted := ev.Type == events.FileDeleted
	w.xmu.Lock()
	defer w.xmu.Unlock()
	list := w.expects[ev.Path]
	for i, x := range list {
		if x.seq != 0 || !x.matches(ev.SHA256, deleted) {
			continue
		}
		if x.seen {
			w.expects[ev.Path] = deleteAt(list, i)
		} else {
			x.seq = ev.Seq // consumed when the Watcher sees the change
		}
		w.mu.Lock()
		defer w.mu.Unlock()
		w.seq = max(w.seq, ev.Seq)
		cur := w.files[ev.Path]
		if cur != nil && cur.Link != "" {
			return // a symlink's entry is the Watcher's own business
		}
		newSHA := ""
		if !deleted {
			newSHA = ev.SHA256
		}
		w.replaced(cur, newSHA)
		switch {
		case deleted:
			delete(w.files, ev.Path)
		case cur != nil && cur.SHA256 == ev.SHA256:
			if cur.Version < ev.Seq {
				ne := *cur
				ne.Version = ev.Seq
				w.files[ev.Path] = &ne
			}
		default:
			e := &entry{Size: ev.Size, SHA256: ev.SHA256, Version: ev.Seq}
			if fi, err := os.Lstat(w.ws.Abs(ev.Path)); err == nil && fi.Mode().IsRegular() {
				e.ModTime = fi.ModTime()
			}
			w.files[ev.Path] = e
		}
		return
	}
}

// Abandon withdraws an expectation made with Expect for a change the
// caller did not make or could not append: the Watcher then reports the
// change itself if it happened. If the Watcher had already taken the
// change into its index silently, the index gets its previous entry back
// (unless the path changed again since) and the Watcher looks at the path
// again, so that the change is reported. Abandon is safe for concurrent
// use.
func (w *Watcher) Abandon(rel, sha256 string, deleted bool) {
	_ = w.withdraw(rel, sha256, deleted, nil)
}

// fulfil is called from Run's goroutine before it reports a change: when
// the change is one the hub announced, it applies it to the index silently
// and reports true. e is the new content (nil for a delete). Otherwise it
// returns the type to report: when the change overtook one the hub already
// reported (the file changed again before the Watcher looked), the type is
// relative to the hub's change — a file the hub created and someone then
// edited is updated, one it deleted and someone re-created is created.
func (w *Watcher) fulfil(typ events.Type, rel string, e *entry) (bool, events.Type) {
	deleted := typ == events.FileDeleted
	if !deleted && typ != events.FileCreated && typ != events.FileUpdated {
		return false, typ
	}
	sha := ""
	if !deleted {
		sha = e.SHA256
	}
	now := time.Now()
	w.xmu.Lock()
	defer w.xmu.Unlock()
	list := w.expects[rel]
	if len(list) == 0 {
		return false, typ
	}
	fresh := list[:0]
	for _, x := range list {
		if now.Sub(x.at) < expectTTL {
			fresh = append(fresh, x)
		}
	}
	list = fresh
	found := -1
	for i := len(list) - 1; i >= 0; i-- {
		if !list[i].seen && list[i].matches(sha, deleted) {
			found = i
			break
		}
	}
	if found < 0 {
		// Something else is there: the changes the hub already reported, and
		// announcements made long enough ago, were overtaken by another one.
		var last *expectation
		keep := list[:0]
		for _, x := range list {
			switch {
			case x.seq != 0:
				last = x
			case now.Sub(x.at) < expectGrace:
				keep = append(keep, x)
			}
		}
		w.setExpects(rel, keep)
		if last != nil {
			switch {
			case last.deleted && typ == events.FileUpdated:
				typ = events.FileCreated
			case !last.deleted && typ == events.FileCreated:
				typ = events.FileUpdated
			}
			w.mu.Lock()
			w.seq = max(w.seq, last.seq)
			w.mu.Unlock()
		}
		return false, typ
	}
	x := list[found]
	// Earlier announcements at the path are superseded by this one.
	rest := list[found+1:]
	if x.seq == 0 {
		x.seen = true
		rest = append([]*expectation{x}, rest...)
	}
	w.setExpects(rel, rest)

	w.mu.Lock()
	prev := w.files[rel]
	w.replaced(prev, sha)
	if deleted {
		w.drop(rel)
	} else {
		ne := *e
		if old := w.files[rel]; old != nil {
			ne.Version = old.Version
		}
		if x.seq != 0 {
			ne.Version = x.seq
		}
		w.put(rel, &ne)
	}
	if x.seq == 0 {
		x.prev, x.applied = prev, w.files[rel]
	}
	w.seq = max(w.seq, x.seq)
	w.mu.Unlock()
	w.st.dirty = true
	return true, typ
}

// forgetExpects drops every expectation at the given paths, for a change
// the Watcher reports that no expectation describes (a move).
func (w *Watcher) forgetExpects(paths ...string) {
	w.xmu.Lock()
	defer w.xmu.Unlock()
	for _, p := range paths {
		delete(w.expects, p)
	}
}

func (w *Watcher) setExpects(rel string, list []*expectation) {
	if len(list) == 0 {
		delete(w.expects, rel)
		return
	}
	w.expects[rel] = list
}

// sweepExpects drops expectations older than expectTTL; w.xmu is held.
func (w *Watcher) sweepExpects(now time.Time) {
	for rel, list := range w.expects {
		keep := list[:0]
		for _, x := range list {
			if now.Sub(x.at) < expectTTL {
				keep = append(keep, x)
			}
		}
		w.setExpects(rel, keep)
	}
}

func deleteAt(list []*expectation, i int) []*expectation {
	out := make([]*expectation, 0, len(list)-1)
	out = append(out, list[:i]...)
	return append(out, list[i+1:]...)
}

// Undo is Abandon for a change the caller made and then takes back (its
// event could not be appended): restore puts the file back as it was,
// while nothing is judged against the file, so that the Watcher reports
// neither the change nor its undoing. It returns restore's error; the
// change then stays and the Watcher reports it. Undo is safe for
// concurrent use.
func (w *Watcher) Undo(rel, sha256 string, deleted bool, restore func() error) error {
	return w.withdraw(rel, sha256, deleted, restore)
}

// withdraw removes the expectation and takes back what the Watcher
// applied silently for it, then runs restore (if any), all while holding
// w.xmu: the only notification that makes the Watcher look at the path
// meanwhile is restore's own, which it judges against the entry taken
// back.
func (w *Watcher) withdraw(rel, sha256 string, deleted bool, restore func() error) error {
	w.xmu.Lock()
	defer w.xmu.Unlock()
	list := w.expects[rel]
	var x *expectation
	for i := len(list) - 1; i >= 0; i-- {
		if list[i].seq == 0 && list[i].matches(sha256, deleted) {
			x = list[i]
			w.setExpects(rel, deleteAt(list, i))
			break
		}
	}
	if x != nil && x.seen {
		w.mu.Lock()
		switch cur := w.files[rel]; {
		case cur != x.applied:
			// Changed again since: the Watcher judges what is there now.
		case cur != nil && cur.Link != "" || x.prev != nil && x.prev.Link != "":
			// A symlink's entry is the Watcher's own business.
		case x.prev == nil:
			delete(w.files, rel)
		default:
			w.files[rel] = x.prev
		}
		w.mu.Unlock()
		w.recheckLater(rel)
	}
	if restore != nil {
		return restore()
	}
	return nil
}

// recheckLater has Run's goroutine look at rel again (every pollEvery):
// the index entry of rel changed behind its back. w.xmu is held.
func (w *Watcher) recheckLater(rel string) {
	if w.recheck == nil {
		w.recheck = map[string]bool{}
	}
	w.recheck[rel] = true
}

// recheckNow looks again at the paths recheckLater named, on Run's
// goroutine, reporting what differs from the index.
func (w *Watcher) recheckNow(ctx context.Context) error {
	w.xmu.Lock()
	paths := w.recheck
	w.recheck = nil
	w.xmu.Unlock()
	if len(paths) == 0 {
		return nil
	}
	w.st.dirty = true
	for _, p := range slices.Sorted(maps.Keys(paths)) {
		if err := w.check(ctx, p, true); err != nil {
			return err
		}
	}
	return nil
}
