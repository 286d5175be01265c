package events

import (
	"context"
	"time"
)

// WorkspaceInfo describes one workspace a hub serves.
type WorkspaceInfo struct {
	Name string `json:"name"`
	Head uint64 `json:"head"` // seq of the newest event in its log, 0 if none
}

// FileInfo is one file of a workspace listing.
type FileInfo struct {
	Path    string    `json:"path"`
	Size    int64     `json:"size"`
	SHA256  string    `json:"sha256"`
	ModTime time.Time `json:"mtime"`
	Version uint64    `json:"version"` // seq of the last event that changed it; 0 if unchanged since indexing
}

// Listing is the files under a prefix and the cursor it is consistent with:
// it reflects every event up to and including Cursor and none after it.
type Listing struct {
	Workspace string     `json:"workspace"`
	Files     []FileInfo `json:"files"`
	Cursor    uint64     `json:"cursor"`
}

// Page is a page of a workspace log read after a cursor.
type Page struct {
	Events  []Event `json:"events"`
	Next    uint64  `json:"cursor"`   // after the last event returned, or the head when none was
	HasMore bool    `json:"has_more"` // more events are already in the log after Next
}

// MaxReadSize bounds a file read through a Source, whole or in part.
const MaxReadSize = 16 << 20

// Range selects the bytes of a file to read: Length bytes from Offset
// (fewer at the end of the file, none at or past it), Length 0 meaning to
// the end. The zero Range is the whole file. Neither may be negative.
type Range struct {
	Offset int64
	Length int64
}

// Whole reports whether r is the zero Range: the whole file.
func (r Range) Whole() bool { return r == Range{} }

// Limit returns how many bytes r asks for at most: Length, but never more
// than MaxReadSize.
func (r Range) Limit() int64 {
	if r.Length <= 0 || r.Length > MaxReadSize {
		return MaxReadSize
	}
	return r.Length
}

// Source is what the MCP server needs of a hub; the embedded hub and a
// remote hub reached over HTTP both provide it. Implementations are safe
// for concurrent use.
type Source interface {
	// Workspaces lists the workspaces served, with the head of each log.
	Workspaces(ctx context.Context) ([]WorkspaceInfo, error)

	// Subscribe calls fn with every event of workspace ws whose seq is
	// greater than after, in seq order, first those already in the log and
	// then live ones, with no gap and no duplicate. It blocks until ctx is
	// done (returning ctx.Err()), fn returns an error (returned as is), or
	// the subscription fails; it returns ErrCursorExpired at once when the
	// log no longer holds the events right after after. A failed
	// subscription (a lost connection, a hub that went away) is not
	// resumed by the Source: the caller subscribes again after the last
	// event it got, which Follow does. fn runs on the caller's
	// goroutine-owned loop: it must not block for long.
	Subscribe(ctx context.Context, ws string, after uint64, fn func(Event) error) error

	// Changes returns up to limit events of ws after after. When none is
	// there yet and wait > 0 it waits up to wait for the first one.
	Changes(ctx context.Context, ws string, after uint64, limit int, wait time.Duration) (Page, error)

	// Files lists the files whose path starts with prefix ("" for all).
	Files(ctx context.Context, ws, prefix string) (Listing, error)

	// ReadFile returns the bytes r selects of a file and the description
	// of the whole file: its Size, its SHA256 (of all of it, also when r
	// is a part), ModTime and Version. The whole file (the zero Range) is
	// at most MaxReadSize bytes, else ErrTooLarge; a part is cut to
	// r.Limit() bytes, so a file of any size can be read in parts. path
	// must be a normalised relative path; anything that escapes the
	// workspace is ErrBadPath, a version-control folder ErrVCSInternal,
	// anything but a regular file ErrNotFound.
	ReadFile(ctx context.Context, ws, path string, r Range) ([]byte, FileInfo, error)

	// Content returns a content that a file of ws had, by its sha256 (an
	// event's SHA256 or PrevSHA256, a listing's), from the hub's content
	// store. It fails with ErrNotStored when the store does not have it,
	// ErrBinary for a content that is not text, ErrTooLarge for one over
	// the store's size limit (both known without being kept), and
	// ErrBadPath for a sha that is not 64 lowercase hex digits. A content
	// of another workspace is never returned: ws and sha together name it.
	Content(ctx context.Context, ws, sha256 string) ([]byte, error)
}
