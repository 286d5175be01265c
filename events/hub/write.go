package hub

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"strings"
	"syscall"
	"time"
	"unicode/utf8"

	"github.com/oklog/ulid/v2"

	"github.com/filecast/filecast/events"
	"github.com/filecast/filecast/events/workspace"
)

// Expecter is told about the hub's own changes to a workspace, so that
// the watcher that indexes it does not report them a second time as
// actor "fs" (satisfied by *watch.Watcher). SetIndex uses it when the index
// provides it. Its methods are safe for concurrent use and do not block.
type Expecter interface {
	// Expect announces that rel is about to get content with this sha256,
	// or be deleted.
	Expect(rel, sha256 string, deleted bool)
	// Applied reports the event the hub appended for an announced change.
	Applied(ev events.Event)
	// Abandon withdraws an announcement whose change was not made or whose
	// event could not be appended; the watcher then reports the change
	// itself if it was made.
	Abandon(rel, sha256 string, deleted bool)
	// Undo withdraws an announcement whose change is taken back: restore
	// puts the file back as it was, and neither the change nor its undoing
	// is reported. It returns restore's error (the change then stays, and
	// the watcher reports it).
	Undo(rel, sha256 string, deleted bool, restore func() error) error
}

// appendTimeout bounds appending the event of a write that is already on
// disk; the caller's cancellation does not stop it.
const appendTimeout = 10 * time.Second

// WriteFile implements [events.Locker]: it writes w.Content to w.Path (or,
// with w.Delete, deletes it) and appends one event with actor w.Actor
// (default "api") and the lock held on the path, returning the event with
// its Seq. Writes to one workspace are serialised.
//
// Locks first: a path someone else holds exclusively is refused with a
// *events.LockError wrapping events.ErrLocked (nothing is written); a
// w.LockToken that holds no current lease on the path, or a w.FencingToken
// that is not that lease's, with events.ErrStale. Then paths: anything that
// leaves the workspace, goes through a symbolic link or names a folder or a
// link is events.ErrBadPath; content over events.MaxReadSize is
// events.ErrTooLarge; deleting a missing file is events.ErrNotFound. The
// content is written to a temporary file in the same folder (see
// TempName; the default ignore rules cover it), synced and renamed over
// the target, creating parent folders as needed. Content equal to the
// file's is not written and gives the zero Event.
//
// A write whose event could not be recorded is not made: while the
// workspace's folder is missing the write is refused with
// events.ErrWorkspaceUnavailable, and while the log has no room (see Room)
// with events.ErrInsufficientStorage, before the file is touched. When the
// log refuses the event after all (it filled up meanwhile), the file is
// put back as it was — its previous content is kept under a hard link
// until the event is stored — and the error is events.ErrInsufficientStorage
// too. A full disk in the workspace is events.ErrInsufficientStorage as well.
//
// An update's event carries the sha256 the file had before (PrevSHA256),
// and the new content is handed to the content store (Options.Contents)
// before the event is appended, so that its diff can be given.
//
// The watcher of the workspace (an index that is an [Expecter]) is told
// beforehand, so that the change is reported once, by this event. A hub
// that has no index of the workspace but a relay (SetRelay) has the
// watching hub make the write, and returns its event or error as is.
func (h *Hub) WriteFile(ctx context.Context, w events.WriteRequest) (events.Event, error) {
	if r := h.relayFor(w.Workspace); r != nil {
		return r.WriteFile(ctx, w)
	}
	ev, err := h.writeFile(ctx, w)
	if err != nil {
		verb := "write"
		if w.Delete {
			verb = "delete"
		}
		return events.Event{}, fmt.Errorf("%s %s: %w", verb, w.Path, err)
	}
	return ev, nil
}

func (h *Hub) writeFile(ctx context.Context, w events.WriteRequest) (events.Event, error) {
	st, err := h.state(w.Workspace)
	if err != nil {
		return events.Event{}, err
	}
	rel, err := workspace.Clean(w.Path)
	if err != nil {
		return events.Event{}, err
	}
	if !w.Delete && len(w.Content) > events.MaxReadSize {
		return events.Event{}, &events.Error{Kind: events.ErrTooLarge, Value: rel, Why: fmt.Sprintf("%d bytes, the limit is %d", len(w.Content), events.MaxReadSize)}
	}
	if err := ctx.Err(); err != nil {
		return events.Event{}, err
	}
	if err := h.present(st); err != nil {
		return events.Event{}, err
	}
	if err := h.Room(); err != nil {
		return events.Event{}, fmt.Errorf("%w; nothing was changed", err)
	}
	actor := w.Actor
	if actor == "" {
		actor = "api"
	}

	st.writeMu.Lock()
	defer st.writeMu.Unlock()
	info, err := h.checkWrite(ctx, w.Workspace, rel, w.LockToken, w.FencingToken)
	if err != nil {
		return events.Event{}, err
	}
	root, err := os.OpenRoot(st.w.Dir)
	if err != nil {
		return events.Event{}, h.missingRoot(st, fmt.Errorf("open workspace %s: %w", st.w.Name, err))
	}
	defer root.Close()
	cur, err := inspect(root, rel)
	if err != nil {
		return events.Event{}, err
	}
	var exp Expecter
	if box := st.index.Load(); box != nil {
		exp = box.exp
	}
	ev := events.Event{
		ID:        ulid.Make().String(),
		Workspace: st.w.Name,
		Path:      rel,
		Actor:     actor,
		Lock:      info,
		Time:      time.Now().UTC(),
	}
	var u undo
	if w.Delete {
		if !cur.exists {
			return events.Event{}, &events.Error{Kind: events.ErrNotFound, Value: rel, Why: "no such file"}
		}
		ev.Type = events.FileDeleted
		if exp != nil {
			exp.Expect(rel, "", true)
		}
		if u, err = remove(root, rel); err != nil {
			if exp != nil {
				exp.Abandon(rel, "", true)
			}
			return events.Event{}, pathError(rel, err)
		}
	} else {
		sum := sha256.Sum256(w.Content)
		ev.SHA256 = hex.EncodeToString(sum[:])
		ev.Size = int64(len(w.Content))
		if cur.exists && cur.sha == ev.SHA256 {
			return events.Event{}, nil
		}
		ev.Type = events.FileCreated
		if cur.exists {
			ev.Type = events.FileUpdated
			ev.PrevSHA256 = cur.sha
		}
		// Offered before the event is appended: whoever reads the event
		// finds the content (the store waits for a write it has queued).
		h.offer(st.w.Name, ev.SHA256, w.Content)
		if u, err = replace(root, rel, w.Content, cur, func() {
			if exp != nil {
				exp.Expect(rel, ev.SHA256, false)
			}
		}); err != nil {
			if exp != nil {
				exp.Abandon(rel, ev.SHA256, false)
			}
			return events.Event{}, err
		}
	}
	actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), appendTimeout)
	defer cancel()
	out, err := h.appendEvent(actx, ev)
	if err != nil {
		// A refusal for want of room stored nothing: put the file back.
		// Otherwise (or when it cannot be put back) the watcher reports
		// the change itself, so that it is not lost.
		undone := false
		switch {
		case !errors.Is(err, events.ErrInsufficientStorage):
			if exp != nil {
				exp.Abandon(rel, ev.SHA256, w.Delete)
			}
		case exp != nil:
			undone = exp.Undo(rel, ev.SHA256, w.Delete, u.restore) == nil
		default:
			undone = u.restore() == nil
		}
		if undone {
			return events.Event{}, fmt.Errorf("%w; the file was put back as it was", err)
		}
		u.discard()
		return events.Event{}, fmt.Errorf("the file was changed but its event was not recorded: %w", err)
	}
	u.discard()
	if exp != nil {
		exp.Applied(out)
	}
	return out, nil
}

// undo puts a write's target back as it was. Its zero value can undo
// nothing.
type undo struct {
	root    *os.Root
	rel     string
	backup  string // a hard link to (or the renamed) previous file; "" when there was none
	created bool   // rel did not exist before
}

// restore puts rel back as it was: the previous file from its backup, or
// no file at all.
func (u undo) restore() error {
	switch {
	case u.root == nil:
		return errors.New("hub: nothing to put back")
	case u.backup != "":
		return u.root.Rename(u.backup, u.rel)
	case u.created:
		return u.root.Remove(u.rel)
	}
	return errors.New("hub: no copy of the previous file")
}

// discard drops the backup once the change stays.
func (u undo) discard() {
	if u.root != nil && u.backup != "" {
		_ = u.root.Remove(u.backup)
	}
}

// remove deletes rel by renaming it to a temporary name (see TempName),
// from which it can be put back.
func remove(root *os.Root, rel string) (undo, error) {
	dir, base := path.Split(rel)
	backup := dir + TempName(base)
	if err := root.Rename(rel, backup); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return undo{}, err
		}
		return undo{}, root.Remove(rel)
	}
	return undo{root: root, rel: rel, backup: backup}, nil
}

// current is what a write target holds before the write.
type current struct {
	exists bool
	mode   fs.FileMode
	sha    string
}

// inspect checks that every folder on the way to rel is a real folder
// (not a symbolic link) and that rel is a regular file or absent, and
// hashes it.
func inspect(root *os.Root, rel string) (current, error) {
	segs := strings.Split(rel, "/")
	for i := 1; i < len(segs); i++ {
		dir := strings.Join(segs[:i], "/")
		fi, err := root.Lstat(dir)
		if errors.Is(err, fs.ErrNotExist) {
			break // created by the write
		}
		if err != nil {
			return current{}, pathError(dir, err)
		}
		if fi.Mode()&fs.ModeSymlink != 0 {
			return current{}, &events.Error{Kind: events.ErrBadPath, Value: rel, Why: dir + " is a symbolic link; filecast writes only through real folders"}
		}
		if !fi.IsDir() {
			return current{}, &events.Error{Kind: events.ErrBadPath, Value: rel, Why: dir + " is not a folder"}
		}
	}
	fi, err := root.Lstat(rel)
	if errors.Is(err, fs.ErrNotExist) {
		return current{}, nil
	}
	if err != nil {
		return current{}, pathError(rel, err)
	}
	switch m := fi.Mode(); {
	case m&fs.ModeSymlink != 0:
		return current{}, &events.Error{Kind: events.ErrBadPath, Value: rel, Why: "it is a symbolic link; write the file it points to"}
	case m.IsDir():
		return current{}, &events.Error{Kind: events.ErrBadPath, Value: rel, Why: "it is a folder"}
	case !m.IsRegular():
		return current{}, &events.Error{Kind: events.ErrBadPath, Value: rel, Why: "it is not a regular file"}
	}
	f, _, err := workspace.OpenRegular(root, rel)
	if err != nil {
		return current{}, err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return current{}, fmt.Errorf("read %s: %w", rel, err)
	}
	return current{exists: true, mode: fi.Mode().Perm(), sha: hex.EncodeToString(h.Sum(nil))}, nil
}

// replace writes data to a temporary file beside rel and renames it over
// rel; announce runs just before the rename. The previous file, if any,
// stays reachable under a hard link for the undo (when the file system
// has hard links).
func replace(root *os.Root, rel string, data []byte, cur current, announce func()) (u undo, err error) {
	dir, base := path.Split(rel)
	if dir != "" {
		if err := root.MkdirAll(strings.TrimSuffix(dir, "/"), 0o755); err != nil {
			return undo{}, writeError(rel, err)
		}
	}
	perm := fs.FileMode(0o644)
	if cur.exists {
		perm = cur.mode
	}
	tmp := dir + TempName(base)
	f, err := root.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, perm)
	if err != nil {
		return undo{}, writeError(rel, err)
	}
	defer func() {
		if err != nil {
			_ = root.Remove(tmp)
		}
	}()
	if _, err := f.Write(data); err != nil {
		f.Close()
		return undo{}, writeError(rel, fmt.Errorf("write %s: %w", tmp, err))
	}
	if cur.exists {
		_ = f.Chmod(perm) // keep the mode the umask may have narrowed
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return undo{}, writeError(rel, fmt.Errorf("sync %s: %w", tmp, err))
	}
	if err := f.Close(); err != nil {
		return undo{}, writeError(rel, fmt.Errorf("close %s: %w", tmp, err))
	}
	u = undo{root: root, rel: rel, created: !cur.exists}
	if cur.exists {
		backup := dir + TempName(base)
		if root.Link(rel, backup) == nil {
			u.backup = backup
		}
	}
	announce()
	if err := root.Rename(tmp, rel); err != nil {
		u.discard()
		return undo{}, pathError(rel, err)
	}
	return u, nil
}

// writeError is pathError, except that a full disk (or quota) is
// events.ErrInsufficientStorage.
func writeError(rel string, err error) error {
	if errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT) {
		return &events.Error{Kind: events.ErrInsufficientStorage, Value: rel, Why: "the workspace's disk is full; nothing was changed"}
	}
	return pathError(rel, err)
}

// tempMark is what names a write's temporary file as filecast's: its name
// is "." + the target's name + tempMark + 16 lowercase hex digits + ".tmp".
const tempMark = ".filecast-"

// TempName returns a fresh name for a temporary file beside the file
// named base (a write's new content, or a replaced or deleted file's
// previous one until its event is stored): hidden and ending in ".tmp", so
// that workspace.DefaultIgnores (".*.tmp") keeps watchers quiet about it,
// and recognised by IsTempName. Long names are cut to keep it within file
// name limits.
func TempName(base string) string {
	if len(base) > 200 {
		base = base[:200]
		for !utf8.ValidString(base) {
			base = base[:len(base)-1]
		}
	}
	var b [8]byte
	_, _ = rand.Read(b[:])
	return "." + base + tempMark + hex.EncodeToString(b[:]) + ".tmp"
}

// IsTempName reports whether name (a file name, not a path) has exactly
// the form TempName gives: such a file is one a write left behind when
// the process was killed, safe to remove once no write is in progress.
// Look-alikes (other digits, upper case, no leading dot) are not.
func IsTempName(name string) bool {
	rest, ok := strings.CutSuffix(name, ".tmp")
	if !ok || len(name) < 2 || name[0] != '.' {
		return false
	}
	i := len(rest) - 16
	if i <= len(tempMark) || rest[i-len(tempMark):i] != tempMark || i-len(tempMark) < 2 {
		return false
	}
	for _, c := range []byte(rest[i:]) {
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

// pathError maps a file-system error on rel to the events sentinels.
func pathError(rel string, err error) error {
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return &events.Error{Kind: events.ErrNotFound, Value: rel, Why: "no such file"}
	case strings.Contains(err.Error(), "escapes"):
		return &events.Error{Kind: events.ErrBadPath, Value: rel, Why: "it resolves outside the workspace"}
	case errors.Is(err, fs.ErrExist), strings.Contains(err.Error(), "not a directory"), strings.Contains(err.Error(), "is a directory"):
		return &events.Error{Kind: events.ErrBadPath, Value: rel, Why: err.Error()}
	}
	return err
}
