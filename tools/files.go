package tools

import (
	"cmp"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/mark3labs/mcp-go/mcp"

	"github.com/filecast/filecast/events"
	"github.com/filecast/filecast/events/delta"
	"github.com/filecast/filecast/resources"
)

// Limits of read_file and list_files.
const (
	// MaxReadLength bounds the bytes one read_file call returns: a whole
	// file up to this size, or a part of one of any size. It keeps one
	// answer within what a model's context can take.
	MaxReadLength = 256 << 10
	// DefaultListLimit and MaxListLimit bound the files of one list_files
	// page.
	DefaultListLimit = 500
	MaxListLimit     = 1000
)

// ReadFileArgs is the input of read_file.
type ReadFileArgs struct {
	Path      string `json:"path"`
	Workspace string `json:"workspace,omitempty"`
	Offset    int    `json:"offset,omitempty"`
	Length    int    `json:"length,omitempty"`
	Since     string `json:"since,omitempty"`
}

// ReadFileResult is the output of read_file. Offset and Length are set
// when a part was asked for (offset or length given): the part returned,
// in bytes, cut to whole characters in a text file. With since, Diff is
// set when a diff can be given (Content is then empty; "" says the file
// is that version), else the content comes with DiffUnavailable saying
// why.
type ReadFileResult struct {
	Content         string  `json:"content"`
	Encoding        string  `json:"encoding"` // text or base64
	Size            int64   `json:"size"`
	SHA256          string  `json:"sha256"`
	Cursor          string  `json:"cursor"`
	Offset          *int64  `json:"offset,omitempty"`
	Length          *int64  `json:"length,omitempty"`
	Diff            *string `json:"diff,omitempty"`
	DiffUnavailable string  `json:"diff_unavailable,omitempty"`
}

// ListFilesArgs is the input of list_files.
type ListFilesArgs struct {
	Paths     []string `json:"paths,omitempty"`
	Workspace string   `json:"workspace,omitempty"`
	Limit     int      `json:"limit,omitempty"`
	Page      string   `json:"page,omitempty"`
}

// FileEntry is one file of a list_files result.
type FileEntry struct {
	Path     string `json:"path"`
	Size     int64  `json:"size"`
	SHA256   string `json:"sha256"`
	Modified string `json:"modified"` // TimeFormat
}

// ListFilesResult is the output of list_files.
type ListFilesResult struct {
	Files    []FileEntry `json:"files"`
	Cursor   string      `json:"cursor"`
	NextPage string      `json:"next_page,omitempty"`
}

// ListLocksArgs is the input of list_locks.
type ListLocksArgs struct {
	Paths     []string `json:"paths,omitempty"`
	Workspace string   `json:"workspace,omitempty"`
}

// LockEntry is one lock of a list_locks result; its secret token is
// never shown.
type LockEntry struct {
	Path         string `json:"path"`
	Holder       string `json:"holder"`
	Mode         string `json:"mode"`
	FencingToken uint64 `json:"fencing_token"`
	ExpiresAt    string `json:"expires_at"` // RFC 3339, UTC, as lock gives it
}

// ListLocksResult is the output of list_locks.
type ListLocksResult struct {
	Locks []LockEntry `json:"locks"`
}

const (
	readFileDesc = "Read a file (agents without disk access have no other way). " +
		"Returns content (text, or base64 with encoding base64), size, sha256 and cursor (list_changes from it brings any later change). " +
		"Over 256 KiB: read parts with offset and length. " +
		"Read before? Pass its sha256 as since: you get diff (unified; \"\": unchanged) instead of content, or content and diff_unavailable. " +
		"Errors (missing, outside the workspace or in .git, not a regular file) say what is wrong; list_files shows what exists."
	listFilesDesc = "List files with path, size, sha256 and modified time. " +
		"Returns files, cursor (list_changes from it misses no change made after this listing) and next_page (pass it as page for more). " +
		"Errors (invalid glob or page) say what to fix."
)

// fileTools returns read_file and list_files.
func (t *toolset) fileTools(readOnly []mcp.ToolOption) []toolDef {
	idem := append([]mcp.ToolOption{mcp.WithIdempotentHintAnnotation(true)}, readOnly...)
	return []toolDef{
		{"read_file", readFileDesc, readFileInput, readFileOutput, mcp.NewTypedToolHandler(t.readFile), idem},
		{"list_files", listFilesDesc, listFilesInput, listFilesOutput, mcp.NewTypedToolHandler(t.listFiles), idem},
	}
}

func (t *toolset) readFile(ctx context.Context, _ mcp.CallToolRequest, args ReadFileArgs) (*mcp.CallToolResult, error) {
	// The head is read before the file: every change up to it is on disk
	// by then, so the content is at least as new as the cursor says.
	names, heads, err := t.logHeads(ctx)
	if err != nil {
		return t.failure("read_file", err), nil
	}
	ws, p, bad := resolve(names, args.Workspace, args.Path)
	if bad != nil {
		return bad, nil
	}
	part := args.Offset != 0 || args.Length != 0
	if args.Since != "" {
		if part {
			return mcp.NewToolResultError("since compares whole files: omit offset and length, or omit since to read a part."), nil
		}
		if !events.ValidSHA256(args.Since) {
			return mcp.NewToolResultError(fmt.Sprintf("invalid since %q: pass the sha256 (64 lowercase hex digits) of a version you saw before, as read_file or list_files gave it.", args.Since)), nil
		}
	}
	rg := events.Range{Offset: int64(args.Offset), Length: int64(cmp.Or(args.Length, MaxReadLength))}
	switch {
	case args.Since != "":
		rg = events.Range{} // the whole file, to compare
	case !part:
		rg.Length = MaxReadLength + 1 // one byte more tells a file over the limit
	}
	f, err := resources.ReadFile(ctx, t.src, ws, p, rg, heads[ws])
	if errors.Is(err, events.ErrTooLarge) && args.Since != "" {
		return mcp.NewToolResultError(fmt.Sprintf("%q is more than %d bytes: too large to compare with since. Read it in parts with offset and length (at most %d each), starting with offset 0.",
			p, events.MaxReadSize, MaxReadLength)), nil
	}
	if err != nil {
		return t.readFailure("read_file", err), nil
	}
	out := ReadFileResult{Encoding: "text", Size: f.Info.Size, SHA256: f.Info.SHA256, Cursor: events.Cursor{ws: f.Cursor}.String()}
	if args.Since != "" {
		d := t.since(ctx, ws, args.Since, f.Data)
		if d.Unavailable == "" {
			out.Diff = &d.Text
			return result(out), nil
		}
		out.DiffUnavailable = d.Unavailable
	}
	if !part && f.Info.Size > MaxReadLength {
		why := ""
		if out.DiffUnavailable != "" {
			why = "no diff since " + args.Since[:12] + "… (" + out.DiffUnavailable + "), and "
		}
		return mcp.NewToolResultError(fmt.Sprintf("%s%q is %d bytes, more than the %d that read_file returns at once: read it in parts with offset and length (at most %d each), starting with offset 0.",
			why, p, f.Info.Size, MaxReadLength, MaxReadLength)), nil
	}
	if f.Text {
		out.Content = string(f.Data)
	} else {
		out.Content, out.Encoding = base64.StdEncoding.EncodeToString(f.Data), "base64"
	}
	if part {
		n := int64(len(f.Data))
		out.Offset, out.Length = &f.Offset, &n
	}
	return result(out), nil
}

// since is the diff of cur, a file's content now, from the version since
// of it, bounded by what read_file returns at once: a longer one is
// TooLarge, and the content is read instead.
func (t *toolset) since(ctx context.Context, ws, since string, cur []byte) delta.Diff {
	d, err := delta.Since(ctx, t.src, ws, since, cur, delta.Options{MaxBytes: MaxReadLength})
	if err != nil && ctx.Err() == nil {
		t.log.Warn("read_file could not read an earlier content", "err", err) // d says not_stored
	}
	if d.Truncated {
		return delta.Diff{Unavailable: delta.TooLarge}
	}
	return d
}

// readFailure explains why a read or listing failed and what to do next.
func (t *toolset) readFailure(tool string, err error) *mcp.CallToolResult {
	switch {
	case errors.Is(err, events.ErrBadPath), errors.Is(err, events.ErrVCSInternal):
		return badPath(err)
	case errors.Is(err, events.ErrNotFound):
		return mcp.NewToolResultError(plain(err) + ". Check the path: list_files shows the files there are.")
	}
	return t.failure(tool, err)
}

func (t *toolset) listFiles(ctx context.Context, _ mcp.CallToolRequest, args ListFilesArgs) (*mcp.CallToolResult, error) {
	names, _, err := t.logHeads(ctx)
	if err != nil {
		return t.failure("list_files", err), nil
	}
	ws, bad := pick(names, args.Workspace, "to list")
	if bad != nil {
		return bad, nil
	}
	f, err := events.NewFilter(ws, args.Paths, nil)
	if err != nil {
		return t.failure("list_files", err), nil
	}
	from, err := parsePage(args.Page, ws)
	if err != nil {
		return mcp.NewToolResultError(plain(err) + ". Pass next_page exactly as list_files returned it, or omit page to list from the start."), nil
	}
	l, err := t.src.Files(ctx, ws, folderOf(args.Paths))
	if err != nil {
		return t.readFailure("list_files", err), nil
	}
	// Every page of one listing has the cursor of the oldest page, so that
	// list_changes from it covers what changed while the pages were read.
	cursor := l.Cursor
	if from.listed {
		cursor = min(cursor, from.cursor)
	}
	slices.SortFunc(l.Files, func(a, b events.FileInfo) int { return strings.Compare(a.Path, b.Path) })
	start, _ := slices.BinarySearchFunc(l.Files, from.after, func(fi events.FileInfo, after string) int {
		if fi.Path <= after {
			return -1
		}
		return 1
	})
	limit := cmp.Or(args.Limit, DefaultListLimit)
	out := ListFilesResult{Files: []FileEntry{}, Cursor: events.Cursor{ws: cursor}.String()}
	for _, fi := range l.Files[start:] {
		if !f.MatchPath(fi.Path) {
			continue
		}
		if len(out.Files) == limit {
			out.NextPage = page{cursor: cursor, after: out.Files[limit-1].Path, listed: true}.encode(ws)
			break
		}
		out.Files = append(out.Files, FileEntry{Path: fi.Path, Size: fi.Size, SHA256: fi.SHA256, Modified: formatTime(fi.ModTime)})
	}
	return result(out), nil
}

// page is where a list_files page starts: after the path after, in a
// listing whose first page had cursor.
type page struct {
	listed bool // a page after the first
	cursor uint64
	after  string
}

var errBadPage = errors.New("tools: invalid page")

// encode returns the page token: opaque to the model, and bound to ws.
func (p page) encode(ws string) string {
	return base64.RawURLEncoding.EncodeToString([]byte(ws + "\x00" + strconv.FormatUint(p.cursor, 10) + "\x00" + p.after))
}

// parsePage reads a page token of a listing of ws; "" is the first page.
func parsePage(token, ws string) (page, error) {
	if token == "" {
		return page{}, nil
	}
	bad := func(why string) (page, error) {
		return page{}, &events.Error{Kind: errBadPage, Value: token, Why: why}
	}
	b, err := base64.RawURLEncoding.DecodeString(token)
	if err != nil {
		return bad("not a page token")
	}
	parts := strings.SplitN(string(b), "\x00", 3)
	if len(parts) != 3 {
		return bad("not a page token")
	}
	seq, err := strconv.ParseUint(parts[1], 10, 64)
	if err != nil || parts[2] == "" {
		return bad("not a page token")
	}
	if parts[0] != ws {
		return bad("it continues a listing of workspace " + parts[0] + ", not " + ws)
	}
	return page{listed: true, cursor: seq, after: parts[2]}, nil
}

// folderOf returns the deepest folder every glob lies under ("" for the
// whole workspace), to list only that folder: the globs still decide.
func folderOf(globs []string) string {
	if len(globs) == 0 {
		return ""
	}
	var common []string
	for i, g := range globs {
		if !strings.Contains(g, "/") {
			return "" // a file name at any depth
		}
		lit := g[:strings.IndexAny(g+"*", "*?[{")]
		dirs := strings.Split(lit, "/")
		dirs = dirs[:len(dirs)-1] // what follows the last "/" is a name, or part of one
		if i == 0 {
			common = dirs
			continue
		}
		n := 0
		for n < len(common) && n < len(dirs) && common[n] == dirs[n] {
			n++
		}
		common = common[:n]
	}
	return strings.Join(common, "/")
}

func (t *toolset) listLocks(ctx context.Context, _ mcp.CallToolRequest, args ListLocksArgs) (*mcp.CallToolResult, error) {
	names, _, err := t.logHeads(ctx)
	if err != nil {
		return t.failure("list_locks", err), nil
	}
	ws, bad := pick(names, args.Workspace, "whose locks to list")
	if bad != nil {
		return bad, nil
	}
	f, err := events.NewFilter(ws, args.Paths, nil)
	if err != nil {
		return t.failure("list_locks", err), nil
	}
	leases, err := t.locker.Locks(ctx, ws)
	if err != nil {
		return t.failure("list_locks", err), nil
	}
	out := ListLocksResult{Locks: []LockEntry{}}
	for _, l := range leases {
		if !f.MatchPath(l.Path) {
			continue
		}
		out.Locks = append(out.Locks, LockEntry{
			Path: l.Path, Holder: l.Holder, Mode: cmp.Or(l.Mode, events.LockExclusive),
			FencingToken: l.FencingToken, ExpiresAt: l.ExpiresAt.UTC().Format(time.RFC3339),
		})
	}
	slices.SortFunc(out.Locks, func(a, b LockEntry) int {
		return cmp.Or(strings.Compare(a.Path, b.Path), strings.Compare(a.Holder, b.Holder))
	})
	return result(out), nil
}
