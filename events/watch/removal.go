package watch

import (
	"context"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/filecast/filecast/events"
	"github.com/filecast/filecast/events/workspace"
)

// A removed file may be on its way back: git checkout, tar and some
// editors replace a file by removing it and creating it again, and the
// creation can come a good while after the removal (git inflates the new
// content in between, a loaded machine deschedules it). Reported at once,
// such a replacement would be file.deleted then file.created; held for
// the settle time, it is one file.updated. Where the kernel says when its
// queue is empty (inotify), a removal is reported as soon as the queue
// has stayed empty for the quiet time after it, unless something says a
// replacement may be under way, in which case it waits out the settle
// time as everywhere else:
//
//   - a version-control operation holds the repository the file is in:
//     git keeps .git/index.lock for the whole of a checkout, reset, merge,
//     stash or rebase (taken before the first removal, renamed to the
//     index after the last creation), Mercurial .hg/wlock. Whether the
//     lock is there is learnt by lstat alone: nothing in a version-control
//     folder is ever opened, read, listed or written. A repository whose
//     .git is not a folder (a linked worktree, a submodule) keeps its lock
//     elsewhere, so every removal there waits out the settle time;
//   - a removal reported so was followed by the creation of its path
//     within the settle time: something in the workspace replaces files
//     that way without a visible lock (tar, some editors), and for
//     replaceHold after the last such sighting every removal waits out the
//     settle time.
//
// The lock is looked for when the removal is handled (one already there
// spares the wait for quiet) and again once the queue is quiet, before
// the path itself: an operation that lets go of its lock in between has
// put the path back by then. The repository a folder is in is found once
// and remembered until a version-control folder or a folder comes or
// goes there (or, above the workspace folder, which is not watched, for
// vcsAboveEvery).
//
// Everything here runs on Run's goroutine.

// replaceHold is how long after a replacement was split into file.deleted
// and file.created every removal waits out the settle time.
const replaceHold = 10 * time.Second

// lockFresh is how long a lock seen is taken as still there without
// another look (at most the settle time).
const lockFresh = time.Millisecond

// vcsAboveEvery is how often the folders above the workspace folder,
// which are not watched, are looked at again for a repository.
const vcsAboveEvery = 5 * time.Second

// removalState is what decides whether a removal may be reported once
// the queue is quiet.
type removalState struct {
	// quick holds the paths reported deleted once the queue was quiet,
	// with when they were removed, for the settle time: a creation of
	// one of them within it was a replacement split in two.
	quick     map[string]time.Time
	sweepAt   int       // the size of quick at which expired paths are swept out
	replacing time.Time // until when every removal waits out the settle time

	repos     map[string]repoRef   // folder → the repository that holds it, as found
	held      map[string]time.Time // lock → when it was last seen there: taken as still there for lockFresh after
	above     repoRef              // the repository above the workspace folder, if any
	aboveSeen time.Time            // when above was looked for
}

// repoRef is the nearest repository holding a folder: the lock files
// whose presence says an operation is under way, or hidden when its lock
// cannot be seen (.git is a file or a link), or above when none was found
// up to the workspace folder (the one above it, if any, then holds it).
type repoRef struct {
	locks  []string // absolute
	hidden bool
	above  bool
}

func newRemovalState() removalState {
	return removalState{quick: map[string]time.Time{}, repos: map[string]repoRef{}, held: map[string]time.Time{}}
}

// settleGone reports the removed files that waited for the queue to be
// quiet (see settling.gone) and are still gone, unless a replacement may
// be under way; those wait out the settle time. A path already back is
// compared with the index, as settleDelete does.
func (w *Watcher) settleGone(ctx context.Context) error {
	st := w.st
	now := time.Now()
	for _, p := range slices.Sorted(maps.Keys(st.gone)) {
		delete(st.gone, p)
		pd := st.deletes[p]
		if pd == nil {
			continue
		}
		// The lock first: an operation that ends between the two looks
		// has put the path back by then.
		if now.Before(st.rm.replacing) || w.vcsBusy(p, now) {
			continue // waits out the settle time
		}
		delete(st.deletes, p)
		s := w.lstat(p)
		if s.exists {
			if err := w.settleDeleteStat(ctx, p, s); err != nil {
				return err
			}
			continue
		}
		if w.known(p) == nil {
			continue
		}
		st.rm.reported(p, pd.first, w.settle, now)
		if err := w.emit(ctx, events.FileDeleted, p, "", nil); err != nil {
			return err
		}
	}
	return nil
}

// reported remembers that rel, removed at removed, was reported deleted
// at now without waiting out settle; paths older than settle are swept
// out as the set grows.
func (r *removalState) reported(rel string, removed time.Time, settle time.Duration, now time.Time) {
	r.quick[rel] = removed
	if len(r.quick) < r.sweepAt {
		return
	}
	for p, t := range r.quick {
		if now.Sub(t) >= settle {
			delete(r.quick, p)
		}
	}
	r.sweepAt = max(64, 2*len(r.quick))
}

// created notes that rel was created at now: when it was reported deleted
// less than settle ago, a replacement was split in two, and removals wait
// out the settle time for replaceHold.
func (r *removalState) created(rel string, settle time.Duration, now time.Time) bool {
	removed, ok := r.quick[rel]
	if !ok {
		return false
	}
	delete(r.quick, rel)
	if now.Sub(removed) >= settle {
		return false
	}
	r.replacing = now.Add(replaceHold)
	return true
}

// vcsBusy reports whether the repository holding rel (a file) is being
// changed by its version-control tool, or may be without it showing. A
// lock seen is taken as still there for lockFresh (or the settle time,
// if shorter) without another look: a removal held for nothing is only
// reported later, and a checkout removes thousands of files while it
// holds its lock.
func (w *Watcher) vcsBusy(rel string, now time.Time) bool {
	r := w.repoOf(parentOf(rel))
	if r.above {
		r = w.repoAbove()
	}
	if r.hidden {
		return true
	}
	rm := &w.st.rm
	for _, l := range r.locks {
		if seen, ok := rm.held[l]; ok && now.Sub(seen) < min(lockFresh, w.settle) {
			return true
		}
		if _, err := os.Lstat(l); err == nil {
			rm.held[l] = now
			return true
		}
		delete(rm.held, l)
	}
	return false
}

// repoOf returns the nearest repository holding the folder dir, looked
// for once and remembered until a folder's version-control folder, or a
// folder itself, comes or goes (see vcsForget).
func (w *Watcher) repoOf(dir string) repoRef {
	rm := &w.st.rm
	if r, ok := rm.repos[dir]; ok {
		return r
	}
	r, found := vcsAt(w.ws.Abs(dir))
	switch {
	case found:
	case dir == "":
		r = repoRef{above: true}
	default:
		r = w.repoOf(parentOf(dir))
	}
	rm.repos[dir] = r
	return r
}

// repoAbove returns the nearest repository holding the workspace folder
// itself, looked for in the folders above it at most every vcsAboveEvery
// (they are not watched).
func (w *Watcher) repoAbove() repoRef {
	rm := &w.st.rm
	now := time.Now()
	if !rm.aboveSeen.IsZero() && now.Sub(rm.aboveSeen) < vcsAboveEvery {
		return rm.above
	}
	rm.above, rm.aboveSeen = repoRef{}, now
	for d := filepath.Dir(w.ws.Dir); ; d = filepath.Dir(d) {
		if r, found := vcsAt(d); found {
			rm.above = r
			break
		}
		if filepath.Dir(d) == d {
			break
		}
	}
	return rm.above
}

// vcsAt looks at the absolute folder dir for a repository: a .git or .hg
// in it. Only their lstat is taken; nothing in them is opened or listed.
func vcsAt(dir string) (repoRef, bool) {
	var r repoRef
	found := false
	for _, v := range [...]struct{ name, lock string }{{".git", "index.lock"}, {".hg", "wlock"}} {
		fi, err := os.Lstat(filepath.Join(dir, v.name))
		if err != nil {
			continue
		}
		found = true
		if fi.IsDir() {
			r.locks = append(r.locks, filepath.Join(dir, v.name, v.lock))
		} else {
			r.hidden = true // a linked worktree's or a submodule's .git file, or a link
		}
	}
	return r, found
}

// vcsForget forgets the repositories found for the folders under prefix
// ("" for all): a version-control folder came or went there, or the
// folders themselves did.
func (w *Watcher) vcsForget(prefix string) {
	rm := &w.st.rm
	if len(rm.repos) == 0 {
		return
	}
	if prefix == "" {
		clear(rm.repos)
		return
	}
	for d := range rm.repos {
		if under(d, prefix) {
			delete(rm.repos, d)
		}
	}
}

// vcsNoticed forgets what was found under the folder of abs when abs
// names a version-control folder (its notifications are otherwise
// ignored): a repository was made, removed or moved there.
func (w *Watcher) vcsNoticed(abs string) {
	if !workspace.InVCS(filepath.Base(abs)) {
		return
	}
	dir := filepath.Dir(abs)
	if dir == w.ws.Dir {
		w.vcsForget("")
		return
	}
	if rel, ok := w.ws.Rel(dir); ok && !workspace.InVCS(rel) {
		w.vcsForget(rel)
	}
}
