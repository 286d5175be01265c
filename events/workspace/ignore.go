package workspace

import (
	"strings"

	"github.com/filecast/filecast/events"
)

// DefaultIgnores are the patterns every workspace ignores: version-control
// folders, caches, editor swap, lock and backup files, and the temporary
// files of atomic saves (their rename onto the real name is folded into one
// file.updated of the real name). Folder patterns end in "/".
var DefaultIgnores = []string{
	".git/", ".hg/", ".svn/", "**/node_modules/.cache/",
	"*.swp", "*.swx", "*.swo", "*~", ".#*", "#*#", "4913",
	".*.tmp", "*.tmp.[0-9]*", "*___jb_tmp___", "*___jb_old___", ".goutputstream-*",
}

// Ignorer decides which relative paths filecast neither watches nor
// reports. It is immutable and safe for concurrent use.
type Ignorer struct {
	dirs  []events.Glob // match folder paths ("x/" patterns, without the slash)
	files []events.Glob
}

// NewIgnorer compiles the defaults plus extra patterns (the --ignore flag,
// same syntax as subscription globs).
func NewIgnorer(extra []string) (*Ignorer, error) {
	ig := &Ignorer{}
	for _, p := range append(append([]string(nil), DefaultIgnores...), extra...) {
		if dir, ok := strings.CutSuffix(p, "/"); ok {
			g, err := events.CompileGlob(dir)
			if err != nil {
				return nil, err
			}
			ig.dirs = append(ig.dirs, g)
			continue
		}
		g, err := events.CompileGlob(p)
		if err != nil {
			return nil, err
		}
		ig.files = append(ig.files, g)
	}
	return ig, nil
}

// Ignored reports whether rel (a clean relative path) is ignored: itself,
// or because one of its parent folders is. Version-control folders (see
// InVCS) are always ignored, whatever the case of their names.
func (ig *Ignorer) Ignored(rel string, isDir bool) bool {
	if InVCS(rel) {
		return true
	}
	if ig.IgnoredChild(rel, isDir) {
		return true
	}
	for i := strings.LastIndexByte(rel, '/'); i > 0; i = strings.LastIndexByte(rel[:i], '/') {
		if ig.dirMatch(rel[:i]) {
			return true
		}
	}
	return false
}

// IgnoredChild is Ignored for a path whose parent folder is known not to
// be ignored — one being walked or watched: only rel itself is matched,
// not each of its parents, so that the cost of a check does not grow with
// the depth of the path.
func (ig *Ignorer) IgnoredChild(rel string, isDir bool) bool {
	if isVCSName(rel[strings.LastIndexByte(rel, '/')+1:]) {
		return true
	}
	for _, g := range ig.files {
		if g.Match(rel) {
			return true
		}
	}
	return isDir && ig.dirMatch(rel)
}

// IgnoredDir reports whether a folder (a clean relative path) is ignored.
func (ig *Ignorer) IgnoredDir(rel string) bool { return ig.Ignored(rel, true) }

func (ig *Ignorer) dirMatch(d string) bool {
	for _, g := range ig.dirs {
		if g.Match(d) {
			return true
		}
	}
	return false
}
