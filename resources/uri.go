package resources

import (
	"strings"

	"github.com/filecast/filecast/events"
	"github.com/filecast/filecast/events/workspace"
)

// Scheme is the URI scheme of every filecast resource.
const Scheme = "filecast"

const prefix = Scheme + "://"

// MaxURILen bounds the text of a resource URI.
const MaxURILen = 64 + len(prefix) + 1 + workspace.MaxPathLen

// Ref is a parsed resource URI: a file, or a folder (Folder true) that
// stands for every file under it. The workspace root is the folder with an
// empty Path.
type Ref struct {
	Workspace string
	Path      string // clean relative path; "" for the workspace root
	Folder    bool
}

// URI returns the resource URI of a file.
func URI(ws, path string) string { return prefix + ws + "/" + path }

// FolderURI returns the resource URI of a folder; prefix "" names the
// workspace root.
func FolderURI(ws, prefix string) string {
	if prefix == "" {
		return URI(ws, "")
	}
	return URI(ws, strings.TrimSuffix(prefix, "/")+"/")
}

// String returns the URI of the reference.
func (r Ref) String() string {
	if r.Folder {
		return FolderURI(r.Workspace, r.Path)
	}
	return URI(r.Workspace, r.Path)
}

// Covers reports whether a change to path in workspace ws concerns r: the
// file itself, or any file under the folder.
func (r Ref) Covers(ws, path string) bool {
	if ws != r.Workspace {
		return false
	}
	if !r.Folder {
		return path == r.Path
	}
	return r.Path == "" || strings.HasPrefix(path, r.Path+"/")
}

// ParseURI reads "filecast://<workspace>/<path>". A URI ending in "/" is a
// folder; "filecast://<workspace>/" is the workspace root. The path goes
// through workspace.Clean, so "..", absolute paths, control characters and
// the like are refused with an *events.Error wrapping events.ErrBadPath.
// ParseURI does not check that the workspace exists.
func ParseURI(uri string) (Ref, error) {
	bad := func(why string) (Ref, error) {
		v := uri
		if len(v) > 200 {
			v = v[:200] + "…"
		}
		return Ref{}, &events.Error{Kind: events.ErrBadPath, Value: v, Why: why}
	}
	if len(uri) > MaxURILen {
		return bad("the URI is too long")
	}
	rest, ok := strings.CutPrefix(uri, prefix)
	if !ok {
		return bad("a filecast resource URI starts with " + prefix)
	}
	ws, path, ok := strings.Cut(rest, "/")
	if !ok {
		// "filecast://docs" names the root as well.
		path = ""
	}
	if err := events.ValidWorkspaceName(ws); err != nil {
		return bad("the URI does not start with a valid workspace name: want " + prefix + "<workspace>/<path>")
	}
	if strings.ContainsAny(path, "?#%") {
		return bad("query strings, fragments and percent-escapes are not supported; use the path as listed")
	}
	if path == "" {
		return Ref{Workspace: ws, Folder: true}, nil
	}
	if strings.HasSuffix(path, "/") {
		p, err := workspace.CleanPrefix(path)
		if err != nil {
			return Ref{}, err
		}
		if p != strings.TrimSuffix(path, "/") {
			return bad("the folder path is not in its clean form; use " + FolderURI(ws, p))
		}
		return Ref{Workspace: ws, Path: p, Folder: true}, nil
	}
	p, err := workspace.Clean(path)
	if err != nil {
		return Ref{}, err
	}
	if p != path {
		return bad("the path is not in its clean form; use " + URI(ws, p))
	}
	return Ref{Workspace: ws, Path: p}, nil
}
