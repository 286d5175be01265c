package events

import (
	"strings"
	"unicode/utf8"

	"github.com/bmatcuk/doublestar/v4"
)

// MaxGlobLen bounds one glob pattern, MaxGlobs the patterns of one filter.
const (
	MaxGlobLen = 1024
	MaxGlobs   = 256
)

// Glob is a compiled path pattern. Paths are slash-separated and relative to
// a workspace root. The rules:
//
//   - "*" matches within one path segment, "**" across segments, "?" one
//     character, "[a-z]" a class, "{a,b}" alternatives;
//   - a pattern with no "/" matches the base name at any depth ("*.md");
//   - a pattern ending in "/" matches everything under that folder ("docs/");
//   - otherwise the pattern is anchored at the workspace root ("src/**/*.go").
type Glob struct {
	src     string
	pattern string
	base    bool // src has no "/": it is matched against the base name alone
}

// CompileGlob checks and compiles a pattern; the error says what is wrong.
func CompileGlob(p string) (Glob, error) {
	bad := func(why string) (Glob, error) { return Glob{}, &Error{Kind: ErrBadGlob, Value: p, Why: why} }
	switch {
	case p == "":
		return bad("empty pattern")
	case len(p) > MaxGlobLen:
		return bad("longer than 1024 bytes")
	case !utf8.ValidString(p):
		return bad("not valid UTF-8")
	case strings.ContainsRune(p, 0):
		return bad("contains a NUL byte")
	case strings.HasPrefix(p, "/"):
		return bad("patterns are relative to the workspace root; drop the leading /")
	case strings.Contains(p, "\\"):
		return bad("use / to separate folders; backslash escapes are not supported")
	}
	for seg := range strings.SplitSeq(strings.TrimSuffix(p, "/"), "/") {
		if seg == ".." || seg == "." {
			return bad("'.' and '..' segments are not allowed")
		}
	}
	pattern := p
	switch {
	case strings.HasSuffix(p, "/"):
		pattern = p + "**"
	case !strings.Contains(p, "/"):
		pattern = "**/" + p
	}
	if !doublestar.ValidatePattern(pattern) {
		return bad("unbalanced brackets or braces")
	}
	return Glob{src: p, pattern: pattern, base: !strings.Contains(p, "/")}, nil
}

// String returns the pattern as given.
func (g Glob) String() string { return g.src }

// Match reports whether the slash-separated relative path matches. A
// pattern with no "/" looks at the base name only, so that its cost does
// not grow with the depth of the path.
func (g Glob) Match(path string) bool {
	if g.base {
		ok, _ := doublestar.Match(g.src, path[strings.LastIndexByte(path, '/')+1:])
		return ok
	}
	ok, _ := doublestar.Match(g.pattern, path)
	return ok
}

// Filter selects events: by workspace (empty means any), by path globs
// (none means every path) and by type (none means the four file types).
// A Filter is immutable after NewFilter and safe for concurrent use.
type Filter struct {
	Workspace string
	globs     []Glob
	types     map[Type]bool
}

// NewFilter compiles a filter. kinds may hold full types ("file.created")
// or the short names of the MCP tools: created, updated, deleted, moved,
// locked (lock.acquired and lock.expiring) and unlocked (lock.released and
// lock.expired).
func NewFilter(workspace string, globs []string, kinds []string) (Filter, error) {
	f := Filter{Workspace: workspace, types: map[Type]bool{}}
	if len(globs) > MaxGlobs {
		return Filter{}, &Error{Kind: ErrBadGlob, Value: globs[MaxGlobs], Why: "at most 256 patterns"}
	}
	for _, p := range globs {
		g, err := CompileGlob(p)
		if err != nil {
			return Filter{}, err
		}
		f.globs = append(f.globs, g)
	}
	types, err := ParseKinds(kinds)
	if err != nil {
		return Filter{}, err
	}
	for _, t := range types {
		f.types[t] = true
	}
	return f, nil
}

// ParseKinds turns short or full type names into types; none means the
// four file types.
func ParseKinds(kinds []string) ([]Type, error) {
	if len(kinds) == 0 {
		return FileTypes, nil
	}
	var out []Type
	for _, k := range kinds {
		switch k {
		case "created", "updated", "deleted", "moved":
			out = append(out, Type("file."+k))
		case "locked":
			out = append(out, LockAcquired, LockExpiring)
		case "unlocked":
			out = append(out, LockReleased, LockExpired)
		default:
			if t := Type(k); t.Valid() {
				out = append(out, t)
				continue
			}
			return nil, &Error{Kind: ErrBadType, Value: k, Why: "unknown event type; use created, updated, deleted, moved, locked or unlocked"}
		}
	}
	return out, nil
}

// Globs returns the patterns as given.
func (f Filter) Globs() []string {
	out := make([]string, len(f.globs))
	for i, g := range f.globs {
		out[i] = g.src
	}
	return out
}

// Types returns the selected types.
func (f Filter) Types() []Type {
	if len(f.types) == 0 {
		return FileTypes
	}
	var out []Type
	for _, t := range []Type{FileCreated, FileUpdated, FileDeleted, FileMoved, LockAcquired, LockExpiring, LockReleased, LockExpired} {
		if f.types[t] {
			out = append(out, t)
		}
	}
	return out
}

// HasType reports whether the filter selects type t.
func (f Filter) HasType(t Type) bool {
	if len(f.types) == 0 {
		return t.IsFile()
	}
	return f.types[t]
}

// MatchPath reports whether a path is selected by the globs alone.
func (f Filter) MatchPath(path string) bool {
	if len(f.globs) == 0 {
		return true
	}
	for _, g := range f.globs {
		if g.Match(path) {
			return true
		}
	}
	return false
}

// Match reports whether ev is selected. A move matches when either its new
// or its old path does.
func (f Filter) Match(ev Event) bool {
	if f.Workspace != "" && f.Workspace != ev.Workspace {
		return false
	}
	if !f.HasType(ev.Type) {
		return false
	}
	return f.MatchPath(ev.Path) || (ev.OldPath != "" && f.MatchPath(ev.OldPath))
}
