package watch

import (
	"context"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// Polling: where notifications cannot be trusted (see choose.go), the
// Watcher walks the polled folders every PollInterval and turns what
// changed since the last round into the notifications inotify would have
// given — Create, Write, Remove, Rename of a path — for handle, so that
// the events follow the same rules: a new file is reported once it has
// settled, a rewrite that leaves the content as it was is silent, a file
// removed (or moved out) is deleted once its path has stayed gone for the
// settle time, and a file or folder that left one name for another with
// the same inode is moved. A round sees only the state of the tree when it
// looks: a file created and removed between two rounds is never reported,
// and a file removed and created again between them is one file.updated
// (or nothing), as the settle time folds them with notifications.
//
// What a round costs: every file is lstat'ed in every round, since
// writing to a file does not change its folder. A folder is listed again
// only when its mtime or inode changed (an entry added, removed or
// renamed), where the file system keeps folder times (keepsDirTimes) and
// its listing is not racy (taken at least racyWindow after the folder's
// mtime); every fullEvery rounds every folder is listed all the same, and
// a folder found changed then without a new mtime turns that saving off.
// Only what changed is read and hashed. A round on a big tree is spaced
// further apart than the interval: the next round starts dutyFactor times
// the last one's duration after it began, at the soonest, so that polling
// never takes more than a tenth of a core.

const (
	// fullEvery is how often (in rounds) every folder is listed, whatever
	// its mtime says.
	fullEvery = 30
	// dutyFactor spaces rounds at least this many times their duration.
	dutyFactor = 10
)

// poller is the polling side of a Watcher, owned by Run's goroutine.
type poller struct {
	roots    []string // the polled folders, relative ("" for the whole workspace), none under another
	interval time.Duration
	timer    *time.Timer
	trust    bool                // folder mtimes change with their entries: an unchanged folder is not listed again
	dirs     map[string]*listing // the last listing of every folder walked
	round    uint64
	counters *Counters
}

// listing is what a round learnt of one folder.
type listing struct {
	id    fileID
	mtime time.Time
	at    time.Time // when it was listed (just before)
	files []string  // the entries that are not folders (relative), ignored ones left out
	dirs  []string  // the folders in it (relative), ignored ones left out
	stale bool      // list it again in the next round, whatever its mtime
	round uint64    // the last round that walked it
}

func newPoller(roots []string, interval time.Duration, trust bool, c *Counters) *poller {
	return &poller{roots: roots, interval: interval, timer: time.NewTimer(interval), trust: trust, dirs: map[string]*listing{}, counters: c}
}

// tick is the channel of the next round; nil (never ready) without a
// poller.
func (p *poller) tick() <-chan time.Time {
	if p == nil {
		return nil
	}
	return p.timer.C
}

func (p *poller) stop() {
	if p != nil {
		p.timer.Stop()
	}
}

// schedule sets the next round, for one that began at start.
func (p *poller) schedule(start time.Time) {
	took := time.Since(start)
	p.counters.PollRounds.Add(1)
	p.counters.PollNanos.Add(uint64(took)) //nolint:gosec // a duration is never negative
	p.timer.Reset(nextRound(p.interval, took))
}

// nextRound is how long after the end of a round that took took the next
// one starts: rounds start interval apart, or dutyFactor times their
// duration when that is longer.
func nextRound(interval, took time.Duration) time.Duration {
	return max(interval, dutyFactor*took) - took
}

// still reports whether the listing l describes the folder fi as it is:
// same inode, same mtime, listed well after that mtime.
func (l *listing) still(fi fs.FileInfo) bool {
	return !l.stale && l.id == idOf(fi) && l.mtime.Equal(fi.ModTime()) && l.at.Sub(l.mtime) > racyWindow
}

// found is what one round found changed, to hand to handle.
type found struct {
	gone     []string        // known files whose name went
	goneDirs []string        // watched folders whose name went
	replaced []string        // watched folders replaced by another one at the same name
	created  []string        // paths to look at as created: new names, or a new inode at a known name
	newDirs  []string        // folders not watched yet, the first of each new tree
	written  []string        // known files whose size, mtime or link changed
	ids      map[string]stat // how created files and folders look, for pairing
	inNew    []string        // files inside new folders: for pairing only (newDir looks at them)
	dirsNew  []string        // folders inside new folders: for pairing only
}

// pollRound walks the polled folders once and hands what changed to
// handle. It runs on Run's goroutine.
func (w *Watcher) pollRound(ctx context.Context) error {
	p := w.st.poll
	start := time.Now()
	defer p.schedule(start)
	if err := w.checkRoot(ctx); err != nil || w.st.root.gone {
		return err
	}
	if err := w.flush(ctx); err != nil {
		return err // the index holds every change the log has
	}
	p.round++
	full := p.round%fullEvery == 0
	f := found{ids: map[string]stat{}}
	var kids *children
	for _, r := range p.roots {
		if err := ctx.Err(); err != nil {
			return err
		}
		w.pollTree(r, full, &f, &kids)
	}
	for d, l := range p.dirs {
		if l.round != p.round {
			delete(p.dirs, d) // gone, or no longer under a polled folder
		}
	}
	return w.applyPolled(ctx, &f)
}

// children are the known files and watched folders of each folder, from
// the index: what a folder held before the round, for one the poller has
// no listing of yet.
type children struct{ files, dirs map[string][]string }

func (w *Watcher) children() *children {
	c := &children{files: map[string][]string{}, dirs: map[string][]string{}}
	w.mu.RLock()
	for p := range w.files {
		c.files[parentOf(p)] = append(c.files[parentOf(p)], p)
	}
	w.mu.RUnlock()
	for d := range w.st.dirs {
		if d != "" {
			c.dirs[parentOf(d)] = append(c.dirs[parentOf(d)], d)
		}
	}
	return c
}

func parentOf(rel string) string {
	if i := strings.LastIndexByte(rel, '/'); i >= 0 {
		return rel[:i]
	}
	return ""
}

// pollTree walks one polled folder, depth first, noting in f what
// changed. A folder not watched yet (new since the last round) is walked
// too, its files only noted for pairing.
func (w *Watcher) pollTree(root string, full bool, f *found, kids **children) {
	st, p := w.st, w.st.poll
	type frame struct {
		rel   string
		fresh bool // not watched yet
	}
	stack := []frame{{rel: root}}
	for len(stack) > 0 {
		fr := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		d := fr.rel
		fi, err := os.Lstat(w.ws.Abs(d))
		if !fr.fresh {
			id, watched := st.dirs[d]
			switch {
			case !watched:
				continue
			case err == nil && fi.IsDir() && idOf(fi) == id:
			case err == nil && fi.IsDir():
				if d != "" { // the workspace folder's own is checkRoot's
					f.replaced = append(f.replaced, d)
					f.ids[d] = stat{kind: kindDir, exists: true, id: idOf(fi)}
				}
				continue
			case err == nil || gone(err):
				if d != "" {
					f.goneDirs = append(f.goneDirs, d)
				}
				continue
			default:
				continue // cannot look now; the next round will
			}
		} else if err != nil || !fi.IsDir() {
			continue
		} else {
			f.ids[d] = stat{kind: kindDir, exists: true, id: idOf(fi)}
		}
		l := p.dirs[d]
		if l == nil || full || !p.trust || !l.still(fi) {
			nl, err := w.listPolled(d, fi)
			switch {
			case err == nil:
				if !fr.fresh {
					w.diffListing(d, l, nl, f, kids)
				}
				l = nl
				p.dirs[d] = l
			case l == nil:
				continue // cannot list it now; the next round will
			default:
				l.stale = true
			}
		}
		l.round = p.round
		if fr.fresh {
			w.statNew(l.files, f)
		} else {
			w.statPolled(l, f)
		}
		for _, sd := range l.dirs {
			_, watched := st.dirs[sd]
			switch {
			case watched && !fr.fresh:
				stack = append(stack, frame{rel: sd})
			case fr.fresh:
				f.dirsNew = append(f.dirsNew, sd)
				stack = append(stack, frame{rel: sd, fresh: true})
			case st.retries[sd] == nil && !slices.Contains(f.newDirs, sd):
				// Not watched yet: new since the last round (or a folder
				// whose watch went with a move or a removal handled since).
				f.newDirs = append(f.newDirs, sd)
				stack = append(stack, frame{rel: sd, fresh: true})
			}
		}
	}
}

// listPolled lists the folder rel, which fi describes, leaving out ignored
// entries and names that cannot be reported.
func (w *Watcher) listPolled(rel string, fi fs.FileInfo) (*listing, error) {
	at := time.Now()
	if w.readFault != nil {
		if err := w.readFault(w.ws.Abs(rel)); err != nil {
			return nil, err
		}
	}
	fd, err := openDir(w.ws.Abs(rel))
	if err != nil {
		return nil, err
	}
	ents, err := fd.ReadDir(-1)
	fd.Close()
	if err != nil {
		return nil, err
	}
	l := &listing{id: idOf(fi), mtime: fi.ModTime(), at: at}
	abs := w.ws.Abs(rel)
	for _, e := range ents {
		name := e.Name()
		r := name
		if rel != "" {
			r = rel + "/" + name
		}
		if c, ok := w.rel(abs + string(os.PathSeparator) + name); !ok || c != r {
			continue
		}
		isDir := e.IsDir()
		if w.ignore.IgnoredChild(r, isDir) {
			continue
		}
		if isDir {
			l.dirs = append(l.dirs, r)
		} else {
			l.files = append(l.files, r)
		}
	}
	return l, nil
}

// diffListing notes what left the folder d between its old listing (nil:
// what the index holds under it) and the new one: known files gone and
// watched folders gone. A change found without a new mtime in a listing
// that was not racy means the file system does not keep folder times:
// every folder is listed in every round from then on.
func (w *Watcher) diffListing(d string, old, nl *listing, f *found, kids **children) {
	var files, dirs []string
	if old != nil {
		files, dirs = old.files, old.dirs
	} else {
		if *kids == nil {
			*kids = w.children()
		}
		files, dirs = (*kids).files[d], (*kids).dirs[d]
	}
	now := map[string]bool{}
	for _, p := range nl.files {
		now[p] = true
	}
	for _, p := range nl.dirs {
		now[p] = true
	}
	changed := len(files)+len(dirs) != len(nl.files)+len(nl.dirs)
	for _, p := range files {
		if !now[p] {
			changed = true
			if w.known(p) != nil {
				f.gone = append(f.gone, p)
			}
		}
	}
	for _, p := range dirs {
		if !now[p] {
			changed = true
			if _, ok := w.st.dirs[p]; ok {
				f.goneDirs = append(f.goneDirs, p)
			}
		}
	}
	p := w.st.poll
	if changed && old != nil && p.trust && old.id == nl.id && old.mtime.Equal(nl.mtime) && old.at.Sub(old.mtime) > racyWindow {
		p.trust = false
		w.log.Info("folder times do not change with their entries on this file system: every folder is listed in every poll round", "path", d)
	}
}

// statPolled looks at every file of a listing and notes those that
// changed since the index took them in.
func (w *Watcher) statPolled(l *listing, f *found) {
	st := w.st
	waiting := len(st.creates)+len(st.updates)+len(st.deletes)+len(st.renames)+len(st.retries) > 0
	stats := make([]stat, len(l.files))
	skip := make([]bool, len(l.files))
	for i, rel := range l.files {
		if skip[i] = waiting && w.waiting(rel); !skip[i] {
			stats[i] = w.pollStat(rel)
		}
	}
	entries := make([]*entry, len(l.files))
	w.mu.RLock()
	for i, rel := range l.files {
		entries[i] = w.files[rel]
	}
	w.mu.RUnlock()
	for i, rel := range l.files {
		s, e := stats[i], entries[i]
		switch {
		case skip[i]:
			// waiting: its deadline looks at it, not the round
		case !s.exists:
			l.stale = true // its folder's mtime did not say so (yet)
			if e != nil {
				f.gone = append(f.gone, rel)
			}
		case s.kind == kindDir:
			l.stale = true
			f.created = append(f.created, rel) // a file became a folder: onCreate says how
			f.ids[rel] = s
		case s.kind == kindNone:
			if e != nil {
				f.written = append(f.written, rel) // no longer something the index holds: checkStat deletes it
			}
		case e == nil:
			f.created = append(f.created, rel)
			f.ids[rel] = s
		case unchanged(s, e):
		case e.Ino != 0 && s.id != (fileID{e.Dev, e.Ino}):
			f.created = append(f.created, rel) // another file at a known name: moved there, or saved by rename
			f.ids[rel] = s
		default:
			f.written = append(f.written, rel)
		}
	}
}

// pollStat is lstat for a round: the same answer, for less.
func (w *Watcher) pollStat(rel string) stat {
	abs := w.ws.Dir + string(os.PathSeparator) + filepath.FromSlash(rel)
	fi, err := os.Lstat(abs)
	if err != nil {
		return stat{}
	}
	m := fi.Mode()
	if m&fs.ModeSymlink != 0 {
		return w.lstat(rel)
	}
	s := stat{exists: true, id: idOf(fi), size: fi.Size(), mtime: fi.ModTime(), read: abs}
	switch {
	case m.IsDir():
		s.kind = kindDir
	case m.IsRegular():
		s.kind = kindFile
	}
	return s
}

// statNew notes the files of a new folder, for pairing with files gone
// elsewhere.
func (w *Watcher) statNew(files []string, f *found) {
	for _, rel := range files {
		if s := w.lstat(rel); s.kind == kindFile {
			f.inNew = append(f.inNew, rel)
			f.ids[rel] = s
		}
	}
}

// waiting reports whether rel waits for quiet, for its pair or for a retry:
// the deadline looks at it, not the round.
func (w *Watcher) waiting(rel string) bool {
	st := w.st
	if _, ok := st.creates[rel]; ok {
		return true
	}
	if _, ok := st.updates[rel]; ok {
		return true
	}
	if _, ok := st.deletes[rel]; ok {
		return true
	}
	if _, ok := st.renames[rel]; ok {
		return true
	}
	_, ok := st.retries[rel]
	return ok
}

// unchanged reports whether a file is, by size, mtime, inode and link
// target, the one its index entry describes, hashed well after (or, for a
// file dated in the future, well before) its mtime: see stat.sameAs.
func unchanged(s stat, e *entry) bool {
	return s.size == e.Size && s.mtime.Equal(e.ModTime) && s.id == (fileID{e.Dev, e.Ino}) && s.link == e.Link &&
		(e.Hashed.Sub(e.ModTime) > racyWindow || e.ModTime.Sub(e.Hashed) > racyWindow)
}

// applyPolled hands what a round found to handle as notifications, in an
// order that lets handle pair moves by inode: folders replaced at their
// name are removed first; then every path that left is renamed away when
// it turned up elsewhere (or removed when not); then what appeared is
// created — a move's new name pairs with its old one — and last, files
// written are looked at again.
//
// A file turned up elsewhere when a new name has its inode, size and
// mtime (a rename keeps them; a new file given a freed inode does not); a
// folder when a new folder has its inode and holds, at the same place,
// one of its files at least (or it held none).
func (w *Watcher) applyPolled(ctx context.Context, f *found) error {
	goneFile := map[fileID]string{}
	for _, p := range f.gone {
		if e := w.known(p); e != nil && e.Ino != 0 {
			goneFile[fileID{e.Dev, e.Ino}] = p
		}
	}
	goneDir := map[fileID]string{}
	for _, d := range f.goneDirs {
		if id, ok := w.st.dirs[d]; ok && id != (fileID{}) {
			goneDir[id] = d
		}
	}
	renamed := map[string]bool{}     // old names that turned up elsewhere
	movedDirs := map[string]string{} // new folder → old
	var removedFirst []string        // files removed from a folder before it moved
	var pairedNew []string           // folders inside new folders that are moved ones
	for _, d := range sorted(slices.Concat(f.newDirs, f.replaced, f.dirsNew)) {
		old, ok := goneDir[f.ids[d].id]
		if !ok {
			continue
		}
		files := w.paths(old)
		var removed []string
		survived := 0
		for _, p := range files {
			e := w.known(p)
			switch s := w.lstat(d + p[len(old):]); {
			case !s.exists:
				removed = append(removed, p)
			case e == nil || e.Ino == 0 || s.id == (fileID{e.Dev, e.Ino}):
				survived++
			}
		}
		if len(files) > 0 && survived == 0 {
			continue // another folder given the freed inode
		}
		delete(goneDir, f.ids[d].id)
		renamed[old] = true
		movedDirs[d] = old
		if slices.Contains(f.dirsNew, d) {
			pairedNew = append(pairedNew, d)
		}
		removedFirst = append(removedFirst, removed...)
	}
	moved := mapKeys(movedDirs)
	var creates []string
	for _, p := range sorted(append(slices.Clone(f.created), f.inNew...)) {
		if underAnyOf(p, moved) && !slices.Contains(moved, p) {
			continue // moved with its folder
		}
		s := f.ids[p]
		if old, ok := goneFile[s.id]; ok && s.kind == kindFile {
			if e := w.known(old); e != nil && e.Size == s.size && e.ModTime.Equal(s.mtime) {
				delete(goneFile, s.id)
				renamed[old] = true
				creates = append(creates, p)
				continue
			}
		}
		if !slices.Contains(f.inNew, p) {
			creates = append(creates, p) // (the files of a new folder are newDir's)
		}
	}
	creates = append(creates, f.newDirs...)
	creates = append(creates, f.replaced...)
	creates = append(creates, pairedNew...)
	slices.Sort(creates)
	creates = slices.Compact(creates)
	left := append(slices.Clone(f.gone), f.goneDirs...)
	slices.Sort(left)

	for _, d := range sorted(f.replaced) {
		if err := w.handle(ctx, w.ws.Abs(d), opRemove); err != nil {
			return err
		}
	}
	for _, p := range removedFirst {
		if err := w.handle(ctx, w.ws.Abs(p), opRemove); err != nil {
			return err
		}
	}
	for _, p := range left {
		if renamed[p] {
			if err := w.handle(ctx, w.ws.Abs(p), opRename); err != nil {
				return err
			}
		}
	}
	for _, p := range left {
		if !renamed[p] {
			if err := w.handle(ctx, w.ws.Abs(p), opRemove); err != nil {
				return err
			}
		}
	}
	for _, p := range creates {
		if err := w.handle(ctx, w.ws.Abs(p), opCreate); err != nil {
			return err
		}
	}
	for _, p := range sorted(f.written) {
		if err := w.handle(ctx, w.ws.Abs(p), opWrite); err != nil {
			return err
		}
	}
	return nil
}

func sorted(s []string) []string {
	s = slices.Clone(s)
	slices.Sort(s)
	return s
}

func mapKeys(m map[string]string) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}

// nopKernel is the kernel of a Watcher that polls its whole workspace: it
// adds no watch.
type nopKernel struct{}

func (nopKernel) Add(string) error    { return nil }
func (nopKernel) Remove(string) error { return nil }
func (nopKernel) Close() error        { return nil }

// splitKernel watches with the kernel the folders that are not under a
// polled one (absolute); those are the poller's.
type splitKernel struct {
	kernel
	polled []string
}

func (k splitKernel) polls(dir string) bool {
	for _, p := range k.polled {
		if dir == p || strings.HasPrefix(dir, p) && len(dir) > len(p) && os.IsPathSeparator(dir[len(p)]) {
			return true
		}
	}
	return false
}

func (k splitKernel) Add(dir string) error {
	if k.polls(dir) {
		return nil
	}
	return k.kernel.Add(dir)
}

func (k splitKernel) Remove(dir string) error {
	if k.polls(dir) {
		return nil
	}
	return k.kernel.Remove(dir)
}
