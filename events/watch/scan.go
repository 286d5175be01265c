package watch

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/sourcegraph/conc/pool"
)

// kind is what a path holds, as far as the index cares.
type kind uint8

const (
	kindNone kind = iota // nothing, or something that is not indexed (a fifo, a link that escapes, …)
	kindFile             // a regular file, or a symlink to one inside the workspace
	kindDir              // a folder (never a symlink to one)
)

// fileID names an inode; a rename keeps it.
type fileID struct{ dev, ino uint64 }

// stat is one look at a path, without reading its content.
type stat struct {
	kind   kind
	exists bool // something is at the path, even if kind is kindNone
	id     fileID
	size   int64
	mtime  time.Time
	link   string // for a symlink: the target relative to the root
	read   string // the absolute path to read the content from
}

// racyWindow: a file hashed less than this after its mtime may have been
// written again within the same clock tick, so its size and mtime alone do
// not prove that it is unchanged.
const racyWindow = time.Second

// sameAs reports whether the file is, by size, mtime and inode, the one e
// describes, so that its hash need not be computed again. The sha256
// decides in every other case.
func (s stat) sameAs(e *entry) bool {
	return e != nil && s.size == e.Size && s.mtime.Equal(e.ModTime) && s.id == (fileID{e.Dev, e.Ino}) &&
		s.link == e.Link && e.Hashed.Sub(e.ModTime) > racyWindow
}

// lstat looks at rel without following a symlink at rel itself; a link is
// resolved only to decide whether its target is a regular file inside the
// workspace and not ignored.
func (w *Watcher) lstat(rel string) stat {
	abs := w.ws.Abs(rel)
	fi, err := os.Lstat(abs)
	if err != nil {
		return stat{}
	}
	st := stat{exists: true, id: idOf(fi), size: fi.Size(), mtime: fi.ModTime(), read: abs}
	switch m := fi.Mode(); {
	case m.IsDir():
		st.kind = kindDir
	case m.IsRegular():
		st.kind = kindFile
	case m&fs.ModeSymlink != 0:
		real, err := filepath.EvalSymlinks(abs)
		if err != nil {
			return st
		}
		target, inside := w.ws.Rel(real)
		if !inside || w.ignore.Ignored(target, false) {
			return st
		}
		ti, err := os.Stat(real)
		if err != nil || !ti.Mode().IsRegular() {
			return st
		}
		st.kind, st.size, st.mtime, st.link, st.read = kindFile, ti.Size(), ti.ModTime(), target, real
	}
	return st
}

var bufPool = sync.Pool{New: func() any { b := make([]byte, 64<<10); return &b }}

// fileMeta is what hashing learns of the file it opened.
type fileMeta struct {
	regular bool
	mtime   time.Time
	ctime   time.Time // when the inode last changed, if the platform says (zero otherwise)
	id      fileID
}

// hash reads the file st describes, streaming it into sha256, and returns
// its index entry. It never follows a symlink at the final component (a
// link's target was resolved by lstat) and refuses anything that is not a
// regular file by the time it is opened.
func (w *Watcher) hash(st stat) (*entry, error) {
	e, _, err := w.hashChanged(st)
	return e, err
}

// hashKeep is hash that, with Options.Contents, also keeps what it read
// of a file no larger than the contents' limit, for capture (see keep.go).
// It runs on Run's goroutine.
func (w *Watcher) hashKeep(st stat) (*entry, error) {
	if w.contents == nil || st.size > w.contents.MaxFileSize() {
		return w.hash(st)
	}
	c := newCapture(st.size, w.contents.MaxFileSize())
	e, _, err := w.read(st, c)
	if err == nil && !c.over && int64(len(c.data)) == e.Size {
		w.capture(e.SHA256, c.data)
	}
	return e, err
}

// hashChanged is hash that also returns the file's ctime as the open file
// gave it before it was read, where the platform tells (zero otherwise).
// It is safe for concurrent use.
func (w *Watcher) hashChanged(st stat) (*entry, time.Time, error) {
	return w.read(st, nil)
}

// read is hashChanged that also writes what it reads to also, if set.
func (w *Watcher) read(st stat, also io.Writer) (*entry, time.Time, error) {
	if w.readFault != nil {
		if err := w.readFault(st.read); err != nil {
			return nil, time.Time{}, &fs.PathError{Op: "open", Path: st.read, Err: err}
		}
	}
	h := sha256.New()
	var dst io.Writer = h
	if also != nil {
		dst = io.MultiWriter(h, also)
	}
	buf := bufPool.Get().(*[]byte)
	n, meta, err := readFile(st.read, *buf, dst)
	bufPool.Put(buf)
	if err != nil {
		return nil, time.Time{}, err
	}
	if !meta.regular {
		return nil, time.Time{}, fmt.Errorf("hash %s: %w", st.read, errNotRegular)
	}
	e := &entry{Size: n, SHA256: hex.EncodeToString(h.Sum(nil)), ModTime: meta.mtime, Hashed: time.Now(), Link: st.link}
	e.Dev, e.Ino = st.id.dev, st.id.ino
	if st.link == "" {
		e.Dev, e.Ino = meta.id.dev, meta.id.ino
	}
	return e, meta.ctime, nil
}

var errNotRegular = errors.New("not a regular file")

// gone reports whether a hashing error means the file is no longer there
// (or is no longer something the index holds: a folder on its path became
// a file, or the path is too long for the system to open).
func gone(err error) bool {
	return errors.Is(err, fs.ErrNotExist) || errors.Is(err, errNotRegular) || errors.Is(err, syscall.ELOOP) ||
		errors.Is(err, syscall.ENOTDIR) || errors.Is(err, syscall.ENAMETOOLONG)
}

// walk visits every indexable file under prefix ("" for the whole tree),
// or prefix itself when it is a file, skipping ignored paths, for a folder
// that has just appeared. It adds a watch to each folder before listing it
// (see listTree), so that nothing created during the walk is missed, and
// does not go into a folder already watched: that one was listed once its
// watch was in place, and its changes since are notified. A prefix that no
// longer exists gives nothing; a folder that cannot be listed now is read
// again later (retryLater). It runs on Run's goroutine.
func (w *Watcher) walk(prefix string, visit func(rel string, st stat)) {
	unread, _ := w.listTree(context.Background(), prefix, true, func(batch []listed) {
		for _, l := range batch {
			if st, ok := w.indexable(l); ok {
				visit(l.rel, st)
			}
		}
	})
	for _, d := range slices.Sorted(maps.Keys(unread)) {
		w.retryLater(d, unread[d], false)
	}
}

// listed is a path listTree found, and whether its folder entry says it
// is a regular file (it may have changed since).
type listed struct {
	rel     string
	regular bool
	top     bool // the prefix listTree was given, not found in a folder it walked
}

// ignoredListed reports whether a path listTree found is ignored. One
// found in a folder that the walk went into needs only its own name
// checked: its parents are not ignored.
func (w *Watcher) ignoredListed(l listed) bool {
	if l.top {
		return w.ignore.Ignored(l.rel, false)
	}
	return w.ignore.IgnoredChild(l.rel, false)
}

// ignored reports whether rel, a path a notification named, is ignored;
// only its own name is checked when its folder is watched (a watched
// folder is never an ignored one). It runs on Run's goroutine.
func (w *Watcher) ignored(rel string, isDir bool) bool {
	parent := ""
	if i := strings.LastIndexByte(rel, '/'); i >= 0 {
		parent = rel[:i]
	}
	if _, ok := w.st.dirs[parent]; ok {
		return w.ignore.IgnoredChild(rel, isDir)
	}
	return w.ignore.Ignored(rel, isDir)
}

// indexable looks at one path the walk listed: ok is false when it is
// ignored or not something the index holds.
func (w *Watcher) indexable(l listed) (stat, bool) {
	if w.ignoredListed(l) {
		return stat{}, false
	}
	st := w.lstat(l.rel)
	return st, st.kind == kindFile
}

// listBatch bounds how many paths listTree hands over at once, so that
// the files of one big folder are still spread over the scan's workers.
const listBatch = 256

// listTree walks the folders under prefix depth first on the caller's
// goroutine (Run's: it adds the watches), skipping ignored folders and
// names filecast cannot report; when fresh, it also skips the folders
// below prefix that are already watched (see walk). Each folder is watched
// before it is listed, so that a file created while the tree is walked is
// either listed or reported by its notification. Every other entry
// (files, symlinks, anything that is not a folder) is handed to files, in
// batches of at most listBatch paths, for the caller to look at. When
// prefix is not a folder, files gets prefix itself. A folder that could
// not be listed for a reason other than being gone (no descriptor to
// spare, say) is returned in unread with the error, so that the caller
// neither takes its files for deleted nor forgets it. It returns ctx.Err()
// when ctx ends before the walk does.
//
// Each path is checked against the ignore patterns by its own name only
// (its parents were checked on the way down), so that a deep tree costs
// time in proportion to its size, not to its depth squared.
func (w *Watcher) listTree(ctx context.Context, prefix string, fresh bool, files func(batch []listed)) (unread map[string]error, err error) {
	root := w.ws.Dir
	if prefix != "" {
		root = w.ws.Abs(prefix)
	}
	fi, err := os.Lstat(root)
	switch {
	case err != nil:
		if transient(err) {
			unread = map[string]error{prefix: err}
		}
		return unread, nil
	case !fi.IsDir():
		if prefix != "" {
			files([]listed{{rel: prefix, top: true}})
		}
		return nil, nil
	case prefix != "" && w.ignore.IgnoredDir(prefix):
		return nil, nil
	}
	stack := []string{prefix}
	var batch []listed
	for len(stack) > 0 {
		if err := ctx.Err(); err != nil {
			return unread, err
		}
		dir := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		ents, err := w.listDir(dir)
		if err != nil {
			// Gone, or no longer a folder: a later event or rescan tells.
			if errors.Is(err, syscall.ENAMETOOLONG) {
				w.warnName(dir, err)
			}
			if transient(err) {
				if unread == nil {
					unread = map[string]error{}
				}
				unread[dir] = err
			}
			continue
		}
		abs := w.ws.Abs(dir)
		for _, d := range ents {
			rel, ok := w.rel(filepath.Join(abs, d.Name()))
			if !ok {
				continue
			}
			if d.IsDir() {
				if w.ignore.IgnoredChild(rel, true) {
					continue
				}
				if _, watched := w.st.dirs[rel]; fresh && watched {
					continue
				}
				stack = append(stack, rel)
				continue
			}
			if w.st != nil && w.st.sweep && w.removeLeftover(rel, d) {
				continue
			}
			if batch = append(batch, listed{rel: rel, regular: d.Type().IsRegular()}); len(batch) == listBatch {
				files(batch)
				batch = nil
			}
		}
	}
	if len(batch) > 0 {
		files(batch)
	}
	return unread, nil
}

// listDir watches the folder rel, then lists it. It never follows a
// symlink put in the folder's place, nor blocks on a fifo.
func (w *Watcher) listDir(rel string) ([]fs.DirEntry, error) {
	if w.readFault != nil {
		if err := w.readFault(w.ws.Abs(rel)); err != nil {
			return nil, &fs.PathError{Op: "open", Path: w.ws.Abs(rel), Err: err}
		}
	}
	f, err := openDir(w.ws.Abs(rel))
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if !fi.IsDir() {
		return nil, fmt.Errorf("list %s: %w", rel, syscall.ENOTDIR)
	}
	w.addWatch(rel, idOf(fi))
	return f.ReadDir(-1)
}

// hashed is what a scan learnt of the files it found: their stat, and
// the entry (or the error) of each file it hashed because the index did
// not prove it unchanged.
type hashed map[string]hashResult

type hashResult struct {
	e       *entry
	changed time.Time // the file's ctime when it was read, where known
	err     error
}

// get returns the entry of rel as the scan hashed it, or hashes it now
// when the scan did not (the index changed since).
func (h hashed) get(w *Watcher, rel string, st stat) (*entry, error) {
	if r, ok := h[rel]; ok {
		return r.e, r.err
	}
	return w.hash(st)
}

// scanned is one file a scan found, and its entry if it hashed it.
type scanned struct {
	rel string
	st  stat
	r   *hashResult
}

// readNew hashes a regular file the index does not hold without looking
// at it first: the stat of the open file is the one to keep, which saves
// a system call per file on a first start. ok is false when the file is
// ignored, known, not (or no longer) a regular file, or cannot be read:
// the caller then looks at it the usual way.
func (w *Watcher) readNew(l listed) (scanned, bool) {
	if !l.regular || w.indexed(l.rel) != nil || w.ignoredListed(l) {
		return scanned{}, false
	}
	abs := w.ws.Abs(l.rel)
	e, changed, err := w.hashChanged(stat{kind: kindFile, exists: true, read: abs})
	if err != nil {
		return scanned{}, false
	}
	st := stat{kind: kindFile, exists: true, id: fileID{e.Dev, e.Ino}, size: e.Size, mtime: e.ModTime, read: abs}
	return scanned{rel: l.rel, st: st, r: &hashResult{e: e, changed: changed}}, true
}

// scanWorkers returns how many goroutines look at and hash files during
// a scan: twice the usable CPUs, so that a file waiting for the disk does
// not leave a CPU idle, within [4, 16].
func scanWorkers() int { return min(max(2*runtime.GOMAXPROCS(0), 4), 16) }

// scan finds every indexable file under prefix, as walk does (without
// skipping watched folders), and hashes those whose size, mtime and inode
// do not match the index (stat.sameAs), on a bounded pool of workers while
// the tree is still being listed. The folders are listed and watched on
// the caller's goroutine (Run's); those that could not be listed are
// returned in unread (see listTree). It returns ctx.Err() when ctx ends
// first. It writes a progress line to Options.Progress every
// progressEvery files.
func (w *Watcher) scan(ctx context.Context, prefix string) (map[string]stat, hashed, map[string]error, error) {
	w.mu.RLock()
	known := len(w.files) // what a rescan or a restart will find, about
	w.mu.RUnlock()
	var (
		mu    sync.Mutex
		found = make(map[string]stat, known)
		sums  = hashed{}
		n     int
	)
	p := pool.New().WithMaxGoroutines(scanWorkers())
	unread, err := w.listTree(ctx, prefix, false, func(batch []listed) {
		p.Go(func() {
			out := make([]scanned, 0, len(batch))
			for _, l := range batch {
				if ctx.Err() != nil {
					return
				}
				if x, ok := w.readNew(l); ok {
					out = append(out, x)
					continue
				}
				st, ok := w.indexable(l)
				if !ok {
					continue
				}
				x := scanned{rel: l.rel, st: st}
				if !st.sameAs(w.indexed(l.rel)) {
					e, changed, err := w.hashChanged(st)
					x.r = &hashResult{e, changed, err}
				}
				out = append(out, x)
			}
			mu.Lock()
			defer mu.Unlock()
			for _, x := range out {
				found[x.rel] = x.st
				if x.r != nil {
					sums[x.rel] = *x.r
				}
				if n++; w.progress != nil && n%progressEvery == 0 {
					fmt.Fprintf(w.progress, "filecast: indexing %s: %d files\n", w.ws.Name, n)
				}
			}
		})
	})
	p.Wait()
	if err == nil {
		err = ctx.Err()
	}
	if err != nil {
		return nil, nil, nil, err
	}
	return found, sums, unread, nil
}
