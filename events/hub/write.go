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
	// event could not be appended.
	Abandon(rel, sha256 string, deleted bool)
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
// content is written to a temporary file in the same folder (named
// ".<name>.filecast-<random>.tmp", which the default ignore rules cover),
// synced and renamed over the target, creating parent folders as needed.
// Content equal to the file's is not written and gives the zero Event.
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
		return events.Event{}, fmt.Errorf("open workspace %s: %w", st.w.Name, err)
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
	if w.Delete {
		if !cur.exists {
			return events.Event{}, &events.Error{Kind: events.ErrNotFound, Value: rel, Why: "no such file"}
		}
		ev.Type = events.FileDeleted
		if exp != nil {
			exp.Expect(rel, "", true)
		}
		if err := root.Remove(rel); err != nil {
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
		}
		if err := replace(root, rel, w.Content, cur, func() {
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
		if exp != nil {
			// The watcher then reports the change itself, so it is not lost.
			exp.Abandon(rel, ev.SHA256, w.Delete)
		}
		return events.Event{}, fmt.Errorf("the file was changed but its event was not recorded: %w", err)
	}
	if exp != nil {
		exp.Applied(out)
	}
	return out, nil
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
// rel; announce runs just before the rename.
func replace(root *os.Root, rel string, data []byte, cur current, announce func()) (err error) {
	dir, base := path.Split(rel)
	if dir != "" {
		if err := root.MkdirAll(strings.TrimSuffix(dir, "/"), 0o755); err != nil {
			return pathError(rel, err)
		}
	}
	perm := fs.FileMode(0o644)
	if cur.exists {
		perm = cur.mode
	}
	tmp := dir + tempName(base)
	f, err := root.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, perm)
	if err != nil {
		return pathError(rel, err)
	}
	defer func() {
		if err != nil {
			_ = root.Remove(tmp)
		}
	}()
	if _, err := f.Write(data); err != nil {
		f.Close()
		return fmt.Errorf("write %s: %w", tmp, err)
	}
	if cur.exists {
		_ = f.Chmod(perm) // keep the mode the umask may have narrowed
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("sync %s: %w", tmp, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("close %s: %w", tmp, err)
	}
	announce()
	if err := root.Rename(tmp, rel); err != nil {
		return pathError(rel, err)
	}
	return nil
}

// tempName is the name of a write's temporary file: hidden and ending in
// ".tmp", so that workspace.DefaultIgnores (".*.tmp") keeps watchers quiet
// about it.
func tempName(base string) string {
	if len(base) > 200 {
		base = base[:200]
		for !utf8.ValidString(base) {
			base = base[:len(base)-1]
		}
	}
	var b [8]byte
	_, _ = rand.Read(b[:])
	return "." + base + ".filecast-" + hex.EncodeToString(b[:]) + ".tmp"
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
