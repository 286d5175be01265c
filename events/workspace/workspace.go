// Package workspace names the folders filecast serves and turns every path
// that reaches filecast — from the file system, an HTTP request or an agent —
// into a clean, slash-separated path relative to a workspace root, or an
// error. Nothing outside a root is ever read through it: reads go through
// [os.Root], which refuses symbolic links that resolve outside the root.
//
//	ws, err := workspace.Parse("docs=/srv/docs")   // or just "/srv/docs"
//	rel, err := workspace.Clean("reports/../q3.md") // "q3.md"
//	data, info, err := ws.ReadFile(rel, events.MaxReadSize)
package workspace

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
	"unicode/utf8"

	"github.com/filecast/filecast/events"
)

// MaxPathLen bounds a relative path.
const MaxPathLen = 4096

// Workspace is one named root folder. Dir is absolute and has no symlinks.
type Workspace struct {
	Name string
	Dir  string
}

// Parse reads a --root value: "DIR" or "NAME=DIR". The name defaults to
// the folder's base name. The folder must exist.
func Parse(spec string) (Workspace, error) {
	name, dir, ok := strings.Cut(spec, "=")
	if !ok {
		dir, name = spec, ""
	}
	if dir == "" {
		return Workspace{}, fmt.Errorf("workspace: empty folder in %q", spec)
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return Workspace{}, fmt.Errorf("workspace: resolve %q: %w", dir, err)
	}
	real, err := filepath.EvalSymlinks(abs)
	if err != nil {
		return Workspace{}, fmt.Errorf("workspace: %w", err)
	}
	st, err := os.Stat(real)
	if err != nil {
		return Workspace{}, fmt.Errorf("workspace: %w", err)
	}
	if !st.IsDir() {
		return Workspace{}, fmt.Errorf("workspace: %s is not a folder", dir)
	}
	if name == "" {
		name = filepath.Base(real)
	}
	if err := events.ValidWorkspaceName(name); err != nil {
		return Workspace{}, fmt.Errorf("workspace: name %q: %w (give one as NAME=DIR)", name, err)
	}
	return Workspace{Name: name, Dir: real}, nil
}

// Clean normalises the path of a file given relative to a workspace root:
// it accepts "/" separators, drops "." segments and a leading "./",
// resolves ".." lexically, and refuses an absolute path, a path that
// climbs out of the root, an empty path, a path ending in "/" (a folder:
// "in.txt/" is not "in.txt"), NUL bytes, invalid UTF-8, control characters
// and over-long input, each with an *events.Error wrapping
// events.ErrBadPath. A path that is or lies in a version-control folder
// (see InVCS) is refused with events.ErrVCSInternal. The result never
// starts or ends with "/".
func Clean(p string) (string, error) {
	return clean(p, false)
}

func clean(p string, folder bool) (string, error) {
	bad := func(why string) (string, error) {
		v := p
		if len(v) > 200 {
			v = v[:200] + "…"
		}
		return "", &events.Error{Kind: events.ErrBadPath, Value: v, Why: why}
	}
	switch {
	case p == "":
		return bad("empty path")
	case len(p) > MaxPathLen:
		return bad("longer than 4096 bytes")
	case !utf8.ValidString(p):
		return bad("not valid UTF-8")
	case strings.HasPrefix(p, "/"), filepath.IsAbs(p):
		return bad("absolute paths are not allowed; give a path relative to the workspace root")
	}
	for _, r := range p {
		if r < 0x20 || r == 0x7f {
			return bad("control characters (including NUL and newline) are not allowed")
		}
	}
	if strings.Contains(p, "\\") {
		return bad("use / to separate folders")
	}
	c := path.Clean(p)
	if c == ".." || strings.HasPrefix(c, "../") {
		return bad("the path leaves the workspace")
	}
	if c == "." {
		return bad("the path names the workspace root, not a file")
	}
	if seg, ok := vcsSegment(c); ok {
		v := c
		if len(v) > 200 {
			v = v[:200] + "…"
		}
		return "", vcsError(v, seg)
	}
	if !folder && (strings.HasSuffix(p, "/") || strings.HasSuffix(p, "/.")) {
		return bad("the path ends in /, so it names a folder; give the file's path without the trailing /")
	}
	return c, nil
}

// CleanPrefix is Clean for a folder prefix: a trailing "/" is allowed, and
// "" and "/" mean the root and give "". A version-control folder is
// refused as in Clean.
func CleanPrefix(p string) (string, error) {
	p = strings.TrimSuffix(p, "/")
	if p == "" || p == "." {
		return "", nil
	}
	return clean(p, true)
}

// Rel turns an absolute file-system path under the root into a clean
// relative path; ok is false for the root itself or a path outside it.
func (w Workspace) Rel(abs string) (rel string, ok bool) {
	r, err := filepath.Rel(w.Dir, abs)
	if err != nil || r == "." || r == ".." || strings.HasPrefix(r, ".."+string(filepath.Separator)) {
		return "", false
	}
	return filepath.ToSlash(r), true
}

// Abs returns the file-system path of a clean relative path. It does not
// resolve symlinks: use Open or ReadFile to read safely.
func (w Workspace) Abs(rel string) string { return filepath.Join(w.Dir, filepath.FromSlash(rel)) }

// ReadFile reads a regular file by its clean relative path, refusing
// symlinks that resolve outside the root or into a version-control folder
// (events.ErrVCSInternal), anything but a regular file (events.ErrNotFound;
// see OpenRegular) and files larger than max.
func (w Workspace) ReadFile(rel string, max int64) ([]byte, fs.FileInfo, error) {
	root, err := os.OpenRoot(w.Dir)
	if err != nil {
		return nil, nil, fmt.Errorf("open workspace %s: %w", w.Name, err)
	}
	defer root.Close()
	f, st, err := OpenRegular(root, rel)
	if err != nil {
		return nil, nil, err
	}
	defer f.Close()
	if err := w.checkResolved(rel); err != nil {
		return nil, nil, err
	}
	if st.Size() > max {
		return nil, nil, &events.Error{Kind: events.ErrTooLarge, Value: rel, Why: fmt.Sprintf("%d bytes, the limit is %d", st.Size(), max)}
	}
	data, err := io.ReadAll(io.LimitReader(f, max+1))
	if err != nil {
		return nil, nil, fmt.Errorf("read %s: %w", rel, err)
	}
	if int64(len(data)) > max {
		return nil, nil, &events.Error{Kind: events.ErrTooLarge, Value: rel, Why: fmt.Sprintf("the limit is %d bytes", max)}
	}
	return data, st, nil
}

// Part is what ReadRange read of a file.
type Part struct {
	Data   []byte      // the bytes read
	Info   fs.FileInfo // the whole file's, as opened
	SHA256 string      // hex SHA-256 of the whole file
}

// ReadRange reads up to n bytes from byte off of a regular file, with the
// checks of ReadFile but whatever the file's size (none at or past its
// end), and the SHA-256 of the whole file: of the bytes read when they are
// all of it; else what known returns for the file as opened, when it
// knows it (an index entry of the same size and mtime); else computed by
// reading the whole open file. known may be nil.
func (w Workspace) ReadRange(rel string, off, n int64, known func(fs.FileInfo) string) (Part, error) {
	if off < 0 || n < 0 {
		return Part{}, fmt.Errorf("workspace: read %s: negative range %d+%d", rel, off, n)
	}
	root, err := os.OpenRoot(w.Dir)
	if err != nil {
		return Part{}, fmt.Errorf("open workspace %s: %w", w.Name, err)
	}
	defer root.Close()
	f, st, err := OpenRegular(root, rel)
	if err != nil {
		return Part{}, err
	}
	defer f.Close()
	if err := w.checkResolved(rel); err != nil {
		return Part{}, err
	}
	size := st.Size()
	var data []byte
	if off < size {
		data = make([]byte, min(n, size-off))
		m, err := f.ReadAt(data, off)
		if err != nil && !errors.Is(err, io.EOF) {
			return Part{}, fmt.Errorf("read %s: %w", rel, err)
		}
		data = data[:m] // shorter if the file shrank meanwhile
	}
	p := Part{Data: data, Info: st}
	if off == 0 && int64(len(data)) == size {
		sum := sha256.Sum256(data)
		p.SHA256 = hex.EncodeToString(sum[:])
		return p, nil
	}
	if known != nil {
		p.SHA256 = known(st)
	}
	if p.SHA256 == "" {
		h := sha256.New()
		if _, err := io.Copy(h, io.NewSectionReader(f, 0, size)); err != nil {
			return Part{}, fmt.Errorf("hash %s: %w", rel, err)
		}
		p.SHA256 = hex.EncodeToString(h.Sum(nil))
	}
	return p, nil
}

// checkResolved refuses rel when symbolic links on its way lead into a
// version-control folder ("notes -> .git", "cfg -> .git/config").
func (w Workspace) checkResolved(rel string) error {
	real, err := filepath.EvalSymlinks(w.Abs(rel))
	if err != nil {
		return nil // gone meanwhile: the open file is what is read
	}
	if r, ok := w.Rel(real); ok {
		if seg, in := vcsSegment(r); in {
			return vcsError(rel, seg)
		}
	}
	return nil
}

// OpenRegular opens a regular file of root by its clean relative path for
// reading, and refuses anything else at once, before it can block or hold
// a descriptor: a folder, a fifo, a socket or a device is an
// events.ErrNotFound that says what it is. It looks first (a symlink is
// followed only inside root, to a regular file), then opens without
// blocking and checks the open file again, in case something else was put
// in the file's place meanwhile. The caller closes the file.
func OpenRegular(root *os.Root, rel string) (*os.File, fs.FileInfo, error) {
	name := filepath.FromSlash(rel)
	fi, err := root.Lstat(name)
	if err == nil && fi.Mode()&fs.ModeSymlink != 0 {
		fi, err = root.Stat(name)
	}
	if err != nil {
		return nil, nil, mapOpenError(rel, err)
	}
	if !fi.Mode().IsRegular() {
		return nil, nil, notRegular(rel, fi.Mode())
	}
	f, err := root.OpenFile(name, os.O_RDONLY|nonBlock, 0)
	if err != nil {
		return nil, nil, mapOpenError(rel, err)
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, nil, fmt.Errorf("stat %s: %w", rel, err)
	}
	if !st.Mode().IsRegular() {
		f.Close()
		return nil, nil, notRegular(rel, st.Mode())
	}
	return f, st, nil
}

// notRegular is the error for a path that is there but is not a regular
// file.
func notRegular(rel string, m fs.FileMode) error {
	what := "not a regular file"
	switch {
	case m.IsDir():
		what = "a folder, not a file"
	case m&fs.ModeNamedPipe != 0:
		what = "a named pipe (fifo), not a regular file"
	case m&fs.ModeSocket != 0:
		what = "a socket, not a regular file"
	case m&fs.ModeDevice != 0:
		what = "a device, not a regular file"
	}
	return &events.Error{Kind: events.ErrNotFound, Value: rel, Why: what + "; filecast reads only regular files"}
}

func mapOpenError(rel string, err error) error {
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return &events.Error{Kind: events.ErrNotFound, Value: rel, Why: "no such file"}
	case strings.Contains(err.Error(), "escapes from parent"), strings.Contains(err.Error(), "path escapes"):
		return &events.Error{Kind: events.ErrBadPath, Value: rel, Why: "it resolves outside the workspace"}
	}
	return fmt.Errorf("open %s: %w", rel, err)
}
