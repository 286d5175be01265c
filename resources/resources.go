// Package resources serves the files of filecast workspaces as MCP
// resources: every file is "filecast://<workspace>/<path>", and a folder URI
// ending in "/" (the workspace root "filecast://<workspace>/" included)
// stands for everything under it.
//
//	p := resources.New(src, resources.Options{Logger: log})
//	if err := p.Register(mcpServer); err != nil { ... } // needs server.WithHooks
//
// The set of files changes constantly and may hold 100,000 entries, so
// nothing is registered per file. resources/read goes through the resource
// template "filecast://{workspace}/{+path}" and reads the file from the
// Source on demand. resources/list is answered from a fresh listing of the
// Source: mcp-go v1.2.1 has no list handler, so an AfterListResources hook
// replaces the (empty) result with one page built by [Provider.List], and
// an OnRequestInitialization hook rejects a malformed cursor with a JSON-RPC
// error before that. Pages hold Options.PageSize resources; the cursor is
// the last URI of the page, so a page stays correct while files come and go.
//
// A Provider is safe for concurrent use.
package resources

import (
	"bytes"
	"cmp"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"mime"
	"path"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"

	"github.com/filecast/filecast/events"
)

// Errors of this package; events sentinels (ErrNotFound, ErrBadPath,
// ErrTooLarge, ErrUnknownWorkspace) come through wrapped, except from
// Read, whose failures are described by [Code].
var (
	ErrBadCursor = errors.New("resources: invalid list cursor; start again without a cursor")
	ErrNoHooks   = errors.New("resources: the MCP server has no hooks; create it with server.WithHooks")
)

// DefaultPageSize is the number of resources in one resources/list page.
const DefaultPageSize = 500

// MaxFolderEntries bounds the files described when a folder is read.
const MaxFolderEntries = 10000

// Template is the URI template that every file resource matches.
const Template = "filecast://{workspace}/{+path}"

// FolderMIMEType is the MIME type given to folder resources.
const FolderMIMEType = "inode/directory"

// Options configure a Provider. The zero value is usable.
type Options struct {
	PageSize int          // resources per list page; 0 means DefaultPageSize
	Logger   *slog.Logger // nil discards
}

// Provider lists and reads resources from an events.Source.
type Provider struct {
	src  events.Source
	size int
	log  *slog.Logger
}

// New returns a Provider over src.
func New(src events.Source, opts Options) *Provider {
	if opts.PageSize <= 0 {
		opts.PageSize = DefaultPageSize
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	return &Provider{src: src, size: opts.PageSize, log: opts.Logger.With("component", "resources")}
}

// Register adds the resource template and the list hooks to s. Call it
// before s serves any request; s must have been created with
// server.WithHooks and resource capabilities.
func (p *Provider) Register(s *server.MCPServer) error {
	hooks := s.GetHooks()
	if hooks == nil {
		return ErrNoHooks
	}
	s.AddResourceTemplate(
		mcp.NewResourceTemplate(Template, "workspace file",
			mcp.WithTemplateDescription("A file of a filecast workspace, by its path relative to the workspace root. "+
				"A URI ending in / is a folder: reading it lists the files under it, subscribing to it "+
				"brings notifications/resources/updated for every file that changes under it.")),
		p.read,
	)
	hooks.AddOnRequestInitialization(func(_ context.Context, _ any, message any) error {
		raw, ok := message.(json.RawMessage)
		if !ok || !mayBe(raw, "resources/list") {
			return nil
		}
		var req struct {
			Method string `json:"method"`
			Params struct {
				Cursor string `json:"cursor"`
			} `json:"params"`
		}
		if json.Unmarshal(raw, &req) != nil || req.Method != string(mcp.MethodResourcesList) {
			return nil
		}
		_, err := decodeCursor(req.Params.Cursor)
		return err
	})
	hooks.AddAfterListResources(func(ctx context.Context, _ any, req *mcp.ListResourcesRequest, result *mcp.ListResourcesResult) {
		if result == nil {
			return
		}
		page, next, err := p.List(ctx, string(req.Params.Cursor))
		if err != nil {
			// The hook cannot fail the request; the page comes back empty
			// and the reason goes to the log.
			p.log.Warn("list resources", "err", err)
		}
		result.Resources = page
		result.NextCursor = mcp.Cursor(next)
	})
	return nil
}

// List returns one page of resources after cursor ("" for the first page)
// and the cursor of the next page ("" after the last). The first page
// starts with the root folder of every workspace.
func (p *Provider) List(ctx context.Context, cursor string) ([]mcp.Resource, string, error) {
	after, err := decodeCursor(cursor)
	if err != nil {
		return []mcp.Resource{}, "", err
	}
	wss, err := p.src.Workspaces(ctx)
	if err != nil {
		return []mcp.Resource{}, "", fmt.Errorf("list workspaces: %w", err)
	}
	slices.SortFunc(wss, func(a, b events.WorkspaceInfo) int { return cmp.Compare(a.Name, b.Name) })
	out := make([]mcp.Resource, 0, p.size)
	if cursor == "" {
		for _, ws := range wss {
			out = append(out, mcp.NewResource(FolderURI(ws.Name, ""), ws.Name+"/",
				mcp.WithMIMEType(FolderMIMEType),
				mcp.WithResourceDescription("Every file of workspace "+ws.Name)))
		}
	}
	for _, ws := range wss {
		if ws.Name < after.ws {
			continue
		}
		l, err := p.src.Files(ctx, ws.Name, "")
		if err != nil {
			return out, "", fmt.Errorf("list files of %s: %w", ws.Name, err)
		}
		files := l.Files
		slices.SortFunc(files, func(a, b events.FileInfo) int { return strings.Compare(a.Path, b.Path) })
		start := 0
		if ws.Name == after.ws {
			start, _ = slices.BinarySearchFunc(files, after.path, func(f events.FileInfo, target string) int {
				if f.Path <= target {
					return -1
				}
				return 1
			})
		}
		for _, f := range files[start:] {
			if len(out) >= p.size {
				last := out[len(out)-1]
				ref, _ := ParseURI(last.URI)
				return out, encodeCursor(ref.Workspace, ref.Path), nil
			}
			r := mcp.NewResource(URI(ws.Name, f.Path), f.Path, mcp.WithResourceSize(f.Size))
			if len(wss) > 1 {
				r.Title = ws.Name + "/" + f.Path
			}
			if mt := MIMEType(f.Path); mt != "" {
				r.MIMEType = mt
			}
			out = append(out, r)
		}
	}
	return out, "", nil
}

type listPos struct{ ws, path string }

func encodeCursor(ws, path string) string {
	return base64.StdEncoding.EncodeToString([]byte(ws + "\x00" + path))
}

// decodeCursor reads a list cursor. It is plain base64, which mcp-go's own
// pagination also decodes before the hook runs.
func decodeCursor(c string) (listPos, error) {
	if c == "" {
		return listPos{}, nil
	}
	b, err := base64.StdEncoding.DecodeString(c)
	if err != nil {
		return listPos{}, ErrBadCursor
	}
	ws, p, ok := strings.Cut(string(b), "\x00")
	if !ok || events.ValidWorkspaceName(ws) != nil {
		return listPos{}, ErrBadCursor
	}
	return listPos{ws: ws, path: p}, nil
}

// JSON-RPC error codes of resources/read failures.
const (
	CodeNotFound      = -32002 // the resource does not exist (protocols before 2026-07-28)
	CodeInvalidParams = -32602 // a URI that names no resource of this server, or a file over the size limit; a missing resource under 2026-07-28
)

// The messages of Read's failures start with these; Code maps them.
const (
	notFoundMsg   = "resource not found: "
	invalidURIMsg = "invalid resource URI "
	tooLargeMsg   = "resource too large: "
)

// Code returns the JSON-RPC error code a resources/read failure whose
// message is msg should carry, for a request of protocol 2026-07-28 or
// later (modern) or an earlier one; 0 when msg is not one of Read's
// failures (an internal error). mcp-go answers every failure of a
// resource handler with -32603, so the server package puts these codes
// in the answers on their way out.
func Code(msg string, modern bool) int {
	switch {
	case strings.HasPrefix(msg, notFoundMsg):
		if modern {
			return CodeInvalidParams // 2026-07-28 aligns a missing resource with JSON-RPC
		}
		return CodeNotFound
	case strings.HasPrefix(msg, invalidURIMsg), strings.HasPrefix(msg, tooLargeMsg):
		return CodeInvalidParams
	}
	return 0
}

// readError describes a failed read of uri; its message starts with one
// of the prefixes Code knows, or it is an internal error.
func readError(uri string, err error) error {
	why := func() string {
		if e, ok := errors.AsType[*events.Error](err); ok && e.Why != "" {
			return e.Why
		}
		if e, ok := errors.AsType[*events.Error](err); ok {
			return strings.TrimPrefix(e.Kind.Error(), "events: ")
		}
		return err.Error()
	}
	switch {
	case errors.Is(err, events.ErrNotFound):
		return fmt.Errorf("%s%s (%s)", notFoundMsg, uri, why())
	case errors.Is(err, events.ErrBadPath), errors.Is(err, events.ErrUnknownWorkspace):
		return fmt.Errorf("%s%q: %s", invalidURIMsg, uri, why())
	case errors.Is(err, events.ErrTooLarge):
		return fmt.Errorf("%s%s is over the %d MiB that resources/read serves (%s)", tooLargeMsg, uri, events.MaxReadSize>>20, why())
	}
	return fmt.Errorf("read resource %s: %w", uri, err)
}

// Read returns the contents of a file or folder resource: a UTF-8 text
// file as text, anything else as base64 blob, each with its MIME type; a
// folder as a JSON listing of the files under it. Its errors say what
// went wrong with the URI, and [Code] gives their JSON-RPC codes.
func (p *Provider) Read(ctx context.Context, uri string) ([]mcp.ResourceContents, error) {
	ref, err := ParseURI(uri)
	if err != nil {
		return nil, readError(uri, err)
	}
	head, err := p.checkWorkspace(ctx, ref.Workspace)
	if err != nil {
		return nil, readError(uri, err)
	}
	if ref.Folder {
		return p.readFolder(ctx, ref)
	}
	f, err := ReadFile(ctx, p.src, ref.Workspace, ref.Path, events.Range{}, head)
	if err != nil {
		return nil, readError(uri, err)
	}
	if f.Text {
		return []mcp.ResourceContents{mcp.TextResourceContents{URI: uri, MIMEType: f.MIMEType, Text: string(f.Data)}}, nil
	}
	return []mcp.ResourceContents{mcp.BlobResourceContents{URI: uri, MIMEType: f.MIMEType, Blob: base64.StdEncoding.EncodeToString(f.Data)}}, nil
}

// File is a file, or a part of one, as filecast's MCP surface serves it:
// resources/read and the read_file tool both read through [ReadFile].
type File struct {
	Data     []byte
	Info     events.FileInfo // the whole file's: size, sha256, mtime, version
	Text     bool            // Data is UTF-8 text, served as text; else as base64
	MIMEType string
	Offset   int64  // where Data starts in the file
	Cursor   uint64 // the log position of the workspace the content is at least as new as
}

// ReadFile reads the bytes r selects of file rel of workspace ws from
// src. head must be the head of ws's log read before the call (from
// src.Workspaces): every change up to it was made on disk before the file
// is read, so the content is at least as new as the log at head, which
// becomes File.Cursor. A part of a text file is cut to whole UTF-8
// characters — up to 3 bytes less at either end, Offset saying where it
// starts — so that it is served as text; a part that is not text once
// cut, and any file that is not UTF-8 text, is served as binary.
func ReadFile(ctx context.Context, src events.Source, ws, rel string, r events.Range, head uint64) (File, error) {
	data, info, err := src.ReadFile(ctx, ws, rel, r)
	if err != nil {
		return File{}, err
	}
	f := File{Data: data, Info: info, Offset: min(r.Offset, info.Size), Cursor: head}
	if !r.Whole() {
		f.Data, f.Offset = wholeRunes(data, f.Offset, f.Offset+int64(len(data)) >= info.Size)
		if !IsText(f.Data) || len(f.Data) == 0 && len(data) > 0 {
			f.Data, f.Offset = data, min(r.Offset, info.Size)
		}
	}
	f.Text = IsText(f.Data)
	mt := MIMEType(rel)
	switch {
	case f.Text && (mt == "" || !textual(mt)):
		mt = "text/plain"
	case !f.Text && (mt == "" || textual(mt)):
		mt = "application/octet-stream"
	}
	f.MIMEType = mt
	return f, nil
}

// wholeRunes cuts a part of a file that starts at off to whole UTF-8
// characters: the continuation bytes it starts with (when off > 0) and an
// incomplete character at its end (unless it ends the file).
func wholeRunes(data []byte, off int64, last bool) ([]byte, int64) {
	if off > 0 {
		for i := 0; i < utf8.UTFMax-1 && len(data) > 0 && !utf8.RuneStart(data[0]); i++ {
			data, off = data[1:], off+1
		}
	}
	if !last {
		for i := 1; i < utf8.UTFMax && i <= len(data); i++ {
			if c := data[len(data)-i]; utf8.RuneStart(c) {
				if !utf8.FullRune(data[len(data)-i:]) {
					data = data[:len(data)-i]
				}
				break
			}
		}
	}
	return data, off
}

func (p *Provider) read(ctx context.Context, req mcp.ReadResourceRequest) ([]mcp.ResourceContents, error) {
	return p.Read(ctx, req.Params.URI)
}

// checkWorkspace returns the head of ws's log, or an error when ws is
// not served.
func (p *Provider) checkWorkspace(ctx context.Context, ws string) (uint64, error) {
	wss, err := p.src.Workspaces(ctx)
	if err != nil {
		return 0, fmt.Errorf("list workspaces: %w", err)
	}
	names := make([]string, 0, len(wss))
	for _, w := range wss {
		if w.Name == ws {
			return w.Head, nil
		}
		names = append(names, w.Name)
	}
	return 0, &events.Error{Kind: events.ErrUnknownWorkspace, Value: ws, Why: "unknown workspace " + ws + "; known workspaces: " + strings.Join(names, ", ")}
}

type folderListing struct {
	Workspace string            `json:"workspace"`
	Folder    string            `json:"folder"`
	Cursor    uint64            `json:"cursor"`
	Files     []events.FileInfo `json:"files"`
	Truncated bool              `json:"truncated,omitempty"`
}

func (p *Provider) readFolder(ctx context.Context, ref Ref) ([]mcp.ResourceContents, error) {
	prefix := ref.Path
	if prefix != "" {
		prefix += "/"
	}
	l, err := p.src.Files(ctx, ref.Workspace, prefix)
	if err != nil {
		return nil, fmt.Errorf("list folder: %w", err)
	}
	out := folderListing{Workspace: ref.Workspace, Folder: ref.Path, Cursor: l.Cursor, Files: l.Files}
	if out.Files == nil {
		out.Files = []events.FileInfo{}
	}
	if len(out.Files) > MaxFolderEntries {
		out.Files, out.Truncated = out.Files[:MaxFolderEntries], true
	}
	b, err := json.Marshal(out)
	if err != nil {
		return nil, fmt.Errorf("encode folder listing: %w", err)
	}
	return []mcp.ResourceContents{mcp.TextResourceContents{URI: ref.String(), MIMEType: "application/json", Text: string(b)}}, nil
}

// IsText reports whether data is UTF-8 text: valid UTF-8 without NUL bytes.
func IsText(data []byte) bool {
	return utf8.Valid(data) && !slices.Contains(data, 0)
}

var extraTypes = map[string]string{
	".md": "text/markdown", ".markdown": "text/markdown", ".go": "text/x-go", ".py": "text/x-python",
	".rs": "text/x-rust", ".ts": "text/typescript", ".tsx": "text/typescript", ".jsx": "text/javascript",
	".yaml": "application/yaml", ".yml": "application/yaml", ".toml": "application/toml",
	".sh": "text/x-shellscript", ".c": "text/x-c", ".h": "text/x-c", ".java": "text/x-java",
	".txt": "text/plain", ".csv": "text/csv", ".json": "application/json",
}

// MIMEType guesses a file's MIME type from its extension, "" when unknown.
// Parameters such as charset are dropped.
func MIMEType(p string) string {
	ext := strings.ToLower(path.Ext(p))
	if ext == "" {
		return ""
	}
	if t, ok := extraTypes[ext]; ok {
		return t
	}
	t, _, _ := strings.Cut(mime.TypeByExtension(ext), ";")
	return strings.TrimSpace(t)
}

func textual(mt string) bool {
	if strings.HasPrefix(mt, "text/") {
		return true
	}
	switch mt {
	case "application/json", "application/yaml", "application/toml", "application/xml", "application/javascript", "image/svg+xml":
		return true
	}
	return false
}

// mayBe reports whether the raw JSON-RPC message may name method: it
// holds the name, or an escape that could spell it. Every request passes
// the hooks that look for one method; most skip decoding it this way.
func mayBe(raw []byte, method string) bool {
	return bytes.Contains(raw, []byte(method)) || bytes.IndexByte(raw, '\\') >= 0
}
