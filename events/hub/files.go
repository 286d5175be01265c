package hub

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io/fs"
	"time"

	"github.com/filecast/filecast/events"
	"github.com/filecast/filecast/events/workspace"
)

// Index lists a workspace's files (satisfied by *watch.Watcher). It is
// safe for concurrent use.
type Index interface {
	// Files returns the files whose path is prefix or lies under it (""
	// for all), and the seq of the last event the listing reflects.
	Files(prefix string) ([]events.FileInfo, uint64)
}

type indexBox struct {
	Index
	exp Expecter // the index's, if it is one
}

// Relay forwards the calls only the hub watching a workspace can answer
// to that hub, wherever it runs (satisfied by *relay.Client). Its methods
// are safe for concurrent use and return the watching hub's errors as
// they are.
type Relay interface {
	// Files lists the files of ws under prefix from the watcher's index.
	Files(ctx context.Context, ws, prefix string) (events.Listing, error)
	// WriteFile writes or deletes a file through the watching hub.
	WriteFile(ctx context.Context, w events.WriteRequest) (events.Event, error)
}

type relayBox struct{ Relay }

// SetIndex sets (or, with nil, removes) the file index of workspace ws;
// it may be called before or after Run. An unknown ws is logged and ignored.
// When idx is also an [Expecter] (a watcher), WriteFile tells it about the
// hub's own changes.
func (h *Hub) SetIndex(ws string, idx Index) {
	st, ok := h.ws[ws]
	if !ok {
		h.logger.Error("set index of unknown workspace", "workspace", ws)
		return
	}
	if idx == nil {
		st.index.Store(nil)
		return
	}
	box := &indexBox{Index: idx}
	box.exp, _ = idx.(Expecter)
	st.index.Store(box)
}

// SetRelay sets (or, with nil, removes) the relay of workspace ws; it may
// be called at any time. While ws has no index, Files and WriteFile of ws
// go through r to the hub that watches it; with an index they stay here.
// An unknown ws is logged and ignored.
func (h *Hub) SetRelay(ws string, r Relay) {
	st, ok := h.ws[ws]
	if !ok {
		h.logger.Error("set relay of unknown workspace", "workspace", ws)
		return
	}
	if r == nil {
		st.relay.Store(nil)
		return
	}
	st.relay.Store(&relayBox{r})
}

// relayFor returns the relay of ws when ws has one and no index.
func (h *Hub) relayFor(ws string) Relay {
	st, ok := h.ws[ws]
	if !ok || st.index.Load() != nil {
		return nil
	}
	if box := st.relay.Load(); box != nil {
		return box.Relay
	}
	return nil
}

// Files lists the files of ws under prefix from the workspace's index,
// with the cursor the listing is consistent with. Without an index it
// asks the relay (see SetRelay) when there is one; else the listing is
// empty and its cursor is the head.
func (h *Hub) Files(ctx context.Context, ws, prefix string) (events.Listing, error) {
	st, err := h.state(ws)
	if err != nil {
		return events.Listing{}, err
	}
	p, err := workspace.CleanPrefix(prefix)
	if err != nil {
		return events.Listing{}, err
	}
	if r := h.relayFor(ws); r != nil {
		return r.Files(ctx, ws, p)
	}
	if err := h.present(st); err != nil {
		return events.Listing{}, err
	}
	if box := st.index.Load(); box != nil {
		files, seq := box.Files(p)
		if files == nil {
			files = []events.FileInfo{}
		}
		return events.Listing{Workspace: ws, Files: files, Cursor: seq}, nil
	}
	head, err := h.head(ctx, st)
	if err != nil {
		return events.Listing{}, err
	}
	return events.Listing{Workspace: ws, Files: []events.FileInfo{}, Cursor: head}, nil
}

// ReadFile reads a file of ws by its relative path, refusing paths and
// symlinks that leave the workspace (events.ErrBadPath) and whole files
// larger than events.MaxReadSize (events.ErrTooLarge); a part (r not
// zero) is read from a file of any size. The description carries the
// size, sha256 and mtime of the whole file and the version from the
// index. The sha256 of a part is the index's when the file's size and
// mtime are the index's and it has not changed for a second (the watcher
// has hashed what is there), else that of the file read whole.
func (h *Hub) ReadFile(ctx context.Context, ws, path string, r events.Range) ([]byte, events.FileInfo, error) {
	st, err := h.state(ws)
	if err != nil {
		return nil, events.FileInfo{}, err
	}
	if err := ctx.Err(); err != nil {
		return nil, events.FileInfo{}, err
	}
	rel, err := workspace.Clean(path)
	if err != nil {
		return nil, events.FileInfo{}, err
	}
	if err := h.present(st); err != nil {
		return nil, events.FileInfo{}, err
	}
	var info events.FileInfo
	var data []byte
	if r.Whole() {
		var fi fs.FileInfo
		data, fi, err = st.w.ReadFile(rel, events.MaxReadSize)
		if err == nil {
			sum := sha256.Sum256(data)
			info = events.FileInfo{Path: rel, Size: int64(len(data)), SHA256: hex.EncodeToString(sum[:]), ModTime: fi.ModTime()}
		}
	} else {
		var indexed events.FileInfo
		var part workspace.Part
		part, err = st.w.ReadRange(rel, r.Offset, r.Limit(), func(fi fs.FileInfo) string {
			indexed, _ = h.indexed(ctx, st, rel)
			if indexed.Size == fi.Size() && indexed.ModTime.Equal(fi.ModTime()) && time.Since(fi.ModTime()) > settled {
				return indexed.SHA256
			}
			return ""
		})
		if err == nil {
			data = part.Data
			info = events.FileInfo{Path: rel, Size: part.Info.Size(), SHA256: part.SHA256, ModTime: part.Info.ModTime()}
		}
	}
	if err != nil {
		if !errors.Is(err, events.ErrNotFound) && !errors.Is(err, events.ErrBadPath) && !errors.Is(err, events.ErrTooLarge) {
			err = h.missingRoot(st, err)
		}
		return nil, events.FileInfo{}, err
	}
	info.Version = h.version(ctx, st, rel)
	return data, info, nil
}

// settled is how long a file must not have changed for the sha256 of its
// index entry to stand for the content of a part read.
const settled = time.Second

// Stater is an Index that can describe one file without listing others
// (*watch.Watcher is one).
type Stater interface {
	Stat(rel string) (events.FileInfo, bool)
}

// version returns the seq of the last event of file rel as the index of
// its workspace knows it — the local one, or through the relay the
// watching hub's — or 0 when none knows the file.
func (h *Hub) version(ctx context.Context, st *wsState, rel string) uint64 {
	f, _ := h.indexed(ctx, st, rel)
	return f.Version
}

// indexed returns the index entry of file rel: from the local index, or
// through the relay the watching hub's.
func (h *Hub) indexed(ctx context.Context, st *wsState, rel string) (events.FileInfo, bool) {
	var files []events.FileInfo
	if box := st.index.Load(); box != nil {
		if s, ok := box.Index.(Stater); ok {
			return s.Stat(rel)
		}
		files, _ = box.Files(rel)
	} else if r := h.relayFor(st.w.Name); r != nil {
		list, err := r.Files(ctx, st.w.Name, rel)
		if err != nil {
			return events.FileInfo{}, false
		}
		files = list.Files
	}
	for _, f := range files {
		if f.Path == rel {
			return f, true
		}
	}
	return events.FileInfo{}, false
}
