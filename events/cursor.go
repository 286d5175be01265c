package events

import (
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
)

// MaxCursorLen bounds the text form of a cursor.
const MaxCursorLen = 4096

// Cursor names a position in the logs of one or more workspaces: for each
// workspace, "after the event with this seq". The zero Cursor is the start
// of every log.
//
// Its text form is "ws:seq" joined by commas, sorted by workspace, for
// example "docs:42,src:7". It is stable, so an agent may store it.
type Cursor map[string]uint64

// ParseCursor reads the text form of a cursor. The empty string is the
// zero cursor. A bare number is accepted when exactly one workspace is
// meant; it is returned under the key "".
func ParseCursor(s string) (Cursor, error) {
	c := Cursor{}
	if s == "" {
		return c, nil
	}
	if len(s) > MaxCursorLen {
		return nil, &Error{Kind: ErrBadCursor, Value: s[:32] + "…", Why: "too long"}
	}
	if n, err := strconv.ParseUint(s, 10, 64); err == nil {
		c[""] = n
		return c, nil
	}
	for part := range strings.SplitSeq(s, ",") {
		ws, num, ok := strings.Cut(part, ":")
		if !ok || ValidWorkspaceName(ws) != nil {
			return nil, &Error{Kind: ErrBadCursor, Value: s, Why: "want workspace:seq pairs separated by commas, as returned by list_changes"}
		}
		n, err := strconv.ParseUint(num, 10, 64)
		if err != nil {
			return nil, &Error{Kind: ErrBadCursor, Value: s, Why: "sequence number is not a non-negative integer"}
		}
		if _, dup := c[ws]; dup {
			return nil, &Error{Kind: ErrBadCursor, Value: s, Why: "workspace " + ws + " appears twice"}
		}
		c[ws] = n
	}
	return c, nil
}

// String returns the text form.
func (c Cursor) String() string {
	if len(c) == 0 {
		return ""
	}
	var b strings.Builder
	for i, ws := range slices.Sorted(maps.Keys(c)) {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, "%s:%d", ws, c[ws])
	}
	return b.String()
}

// For returns the position for workspace ws; a bare-number cursor applies
// to any workspace.
func (c Cursor) For(ws string) uint64 {
	if n, ok := c[ws]; ok {
		return n
	}
	return c[""]
}

// Advance moves the cursor past ev, never backwards.
func (c Cursor) Advance(ev Event) {
	if ev.Seq > c[ev.Workspace] {
		c[ev.Workspace] = ev.Seq
	}
}

// Clone returns a copy.
func (c Cursor) Clone() Cursor { return maps.Clone(c) }

// ValidWorkspaceName checks a workspace name: 1–64 characters of letters,
// digits, '.', '_' and '-', not starting with '.' or '-'.
func ValidWorkspaceName(name string) error {
	if name == "" || len(name) > 64 {
		return &Error{Kind: ErrBadPath, Value: name, Why: "a workspace name has 1 to 64 characters"}
	}
	for i, r := range name {
		ok := r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_' ||
			(i > 0 && (r == '.' || r == '-'))
		if !ok {
			return &Error{Kind: ErrBadPath, Value: name, Why: "a workspace name uses letters, digits, '.', '_' and '-' and starts with a letter, digit or '_'"}
		}
	}
	return nil
}
