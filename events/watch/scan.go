package watch

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"time"
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
	id      fileID
}

// hash reads the file st describes, streaming it into sha256, and returns
// its index entry. It never follows a symlink at the final component (a
// link's target was resolved by lstat) and refuses anything that is not a
// regular file by the time it is opened.
func hash(st stat) (*entry, error) {
	h := sha256.New()
	buf := bufPool.Get().(*[]byte)
	n, meta, err := readFile(st.read, *buf, h)
	bufPool.Put(buf)
	if err != nil {
		return nil, err
	}
	if !meta.regular {
		return nil, fmt.Errorf("hash %s: %w", st.read, errNotRegular)
	}
	e := &entry{Size: n, SHA256: hex.EncodeToString(h.Sum(nil)), ModTime: meta.mtime, Hashed: time.Now(), Link: st.link}
	e.Dev, e.Ino = st.id.dev, st.id.ino
	if st.link == "" {
		e.Dev, e.Ino = meta.id.dev, meta.id.ino
	}
	return e, nil
}

var errNotRegular = errors.New("not a regular file")

// gone reports whether a hashing error means the file is no longer there
// (or is no longer something the index holds).
func gone(err error) bool {
	return errors.Is(err, fs.ErrNotExist) || errors.Is(err, errNotRegular) || errors.Is(err, syscall.ELOOP)
}

// walk visits every folder and indexable file under prefix ("" for the
// whole tree), skipping ignored paths. It adds a watch to each folder
// before listing it, so that nothing created during the walk is missed.
// A prefix that no longer exists gives nothing.
func (w *Watcher) walk(prefix string, visit func(rel string, st stat)) {
	root := w.ws.Dir
	if prefix != "" {
		root = w.ws.Abs(prefix)
	}
	n := 0
	_ = filepath.WalkDir(root, func(abs string, d fs.DirEntry, err error) error {
		rel := prefix
		if abs != root {
			var ok bool
			if rel, ok = w.rel(abs); !ok {
				if d != nil && d.IsDir() {
					return fs.SkipDir
				}
				return nil
			}
		}
		if err != nil {
			// Vanished or unreadable: a later event or rescan tells.
			if !errors.Is(err, fs.ErrNotExist) {
				w.log.Warn("cannot read a folder; its files are not indexed", "path", rel, "err", err)
			}
			if d != nil && d.IsDir() {
				return fs.SkipDir
			}
			return nil
		}
		if d.IsDir() {
			if rel != "" && w.ignore.IgnoredDir(rel) {
				return fs.SkipDir
			}
			fi, err := d.Info()
			if err != nil {
				return fs.SkipDir
			}
			w.addWatch(rel, idOf(fi))
			return nil
		}
		if w.ignore.Ignored(rel, false) {
			return nil
		}
		st := w.lstat(rel)
		if st.kind != kindFile {
			return nil
		}
		visit(rel, st)
		if n++; w.progress != nil && n%progressEvery == 0 {
			fmt.Fprintf(w.progress, "filecast: indexing %s: %d files\n", w.ws.Name, n)
		}
		return nil
	})
}
