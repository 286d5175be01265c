// Package events is filecast's vocabulary: the [Event] every change becomes,
// its [Type], the [Cursor] that names a position in a workspace log, the
// [Filter] a subscriber selects events with, and the [Source] contract that
// both the embedded hub and a remote hub satisfy. It does no I/O.
//
// A sketch of how the parts meet:
//
//	f, err := events.NewFilter("docs", []string{"reports/**"}, nil)
//	if err != nil { ... }                  // *events.Error with a clear message
//	err = src.Subscribe(ctx, "docs", 0, func(ev events.Event) error {
//		if f.Match(ev) { fmt.Println(ev.Seq, ev.Type, ev.Path) }
//		return nil
//	})
package events

import (
	"encoding/json"
	"time"

	"github.com/filecast/filecast/events/jsonenc"
)

// Type is the kind of an event. The set is closed: see the constants.
type Type string

// The event types. File events describe content; lock events describe leases.
const (
	FileCreated  Type = "file.created"
	FileUpdated  Type = "file.updated"
	FileDeleted  Type = "file.deleted"
	FileMoved    Type = "file.moved"
	LockAcquired Type = "lock.acquired"
	LockReleased Type = "lock.released"
	LockExpiring Type = "lock.expiring"
	LockExpired  Type = "lock.expired"
)

// FileTypes are the four file event types, the default of a subscription.
var FileTypes = []Type{FileCreated, FileUpdated, FileDeleted, FileMoved}

// Valid reports whether t is one of the known types.
func (t Type) Valid() bool {
	switch t {
	case FileCreated, FileUpdated, FileDeleted, FileMoved,
		LockAcquired, LockReleased, LockExpiring, LockExpired:
		return true
	}
	return false
}

// IsFile reports whether t is a file event type.
func (t Type) IsFile() bool {
	switch t {
	case FileCreated, FileUpdated, FileDeleted, FileMoved:
		return true
	}
	return false
}

// Actor values for changes that filecast observed rather than performed.
const ActorFS = "fs"

// LockInfo describes the lock held on a path when an event happened.
type LockInfo struct {
	Holder       string `json:"holder"`
	FencingToken uint64 `json:"fencing_token"`
	Mode         string `json:"mode,omitempty"`
}

// Event is one change in a workspace. Events are values: copy them freely.
//
// ID is unique and stable across every redelivery; Seq is the position in
// the workspace log and is assigned by the log (zero before it is appended).
type Event struct {
	ID        string `json:"event_id"`
	Seq       uint64 `json:"seq"`
	Type      Type   `json:"type"`
	Workspace string `json:"workspace"`
	Path      string `json:"path"`
	OldPath   string `json:"old_path,omitempty"`
	Size      int64  `json:"-"`
	SHA256    string `json:"sha256,omitempty"`
	// PrevSHA256 is the sha256 the file had before the change, on a
	// file.updated, and on a file.moved that also changed the content:
	// the diff of the change is between the contents of PrevSHA256 and
	// SHA256 (see Source.Content).
	PrevSHA256 string    `json:"prev_sha256,omitempty"`
	Actor      string    `json:"actor"`
	Lock       *LockInfo `json:"lock,omitempty"`
	Conflict   bool      `json:"conflict"`
	ExpiresAt  time.Time `json:"-"`
	Time       time.Time `json:"timestamp"`
}

// HasContent reports whether the event carries a file's size and sha256.
func (e Event) HasContent() bool { return e.Type.IsFile() && e.Type != FileDeleted }

type eventAlias Event

type eventJSON struct {
	eventAlias
	Size      *int64     `json:"size,omitempty"`
	ExpiresAt *time.Time `json:"expires_at,omitempty"`
}

// MarshalJSON writes the wire form: size is present exactly for file events
// other than deletions (an empty file has size 0), timestamps are UTC.
// The bytes are those encoding/json writes for the fields' tags.
func (e Event) MarshalJSON() ([]byte, error) {
	return e.AppendJSON(make([]byte, 0, 256))
}

// AppendJSON appends the wire form of e (see MarshalJSON) to b.
func (e Event) AppendJSON(b []byte) ([]byte, error) {
	start := len(b)
	b = append(b, `{"event_id":`...)
	b = jsonenc.String(b, e.ID, true)
	b = append(b, `,"seq":`...)
	b = jsonenc.Uint(b, e.Seq)
	b = append(b, `,"type":`...)
	b = jsonenc.String(b, string(e.Type), true)
	b = append(b, `,"workspace":`...)
	b = jsonenc.String(b, e.Workspace, true)
	b = append(b, `,"path":`...)
	b = jsonenc.String(b, e.Path, true)
	if e.OldPath != "" {
		b = append(b, `,"old_path":`...)
		b = jsonenc.String(b, e.OldPath, true)
	}
	if e.SHA256 != "" {
		b = append(b, `,"sha256":`...)
		b = jsonenc.String(b, e.SHA256, true)
	}
	if e.PrevSHA256 != "" {
		b = append(b, `,"prev_sha256":`...)
		b = jsonenc.String(b, e.PrevSHA256, true)
	}
	b = append(b, `,"actor":`...)
	b = jsonenc.String(b, e.Actor, true)
	if e.Lock != nil {
		b = append(b, `,"lock":`...)
		b = e.Lock.AppendJSON(b)
	}
	b = append(b, `,"conflict":`...)
	b = jsonenc.Bool(b, e.Conflict)
	b = append(b, `,"timestamp":`...)
	var ok bool
	if b, ok = jsonenc.Time(b, e.Time.UTC()); !ok {
		return e.marshalSlow(b[:start])
	}
	if e.HasContent() {
		b = append(b, `,"size":`...)
		b = jsonenc.Int(b, e.Size)
	}
	if !e.ExpiresAt.IsZero() {
		b = append(b, `,"expires_at":`...)
		if b, ok = jsonenc.Time(b, e.ExpiresAt.UTC()); !ok {
			return e.marshalSlow(b[:start])
		}
	}
	return append(b, '}'), nil
}

// marshalSlow is AppendJSON through encoding/json, for the times it
// refuses (it returns their error).
func (e Event) marshalSlow(b []byte) ([]byte, error) {
	j := eventJSON{eventAlias: eventAlias(e)}
	j.Time = e.Time.UTC()
	if e.HasContent() {
		size := e.Size
		j.Size = &size
	}
	if !e.ExpiresAt.IsZero() {
		t := e.ExpiresAt.UTC()
		j.ExpiresAt = &t
	}
	out, err := json.Marshal(j)
	if err != nil {
		return nil, err
	}
	return append(b, out...), nil
}

// AppendJSON appends l as encoding/json writes it.
func (l LockInfo) AppendJSON(b []byte) []byte {
	b = append(b, `{"holder":`...)
	b = jsonenc.String(b, l.Holder, true)
	b = append(b, `,"fencing_token":`...)
	b = jsonenc.Uint(b, l.FencingToken)
	if l.Mode != "" {
		b = append(b, `,"mode":`...)
		b = jsonenc.String(b, l.Mode, true)
	}
	return append(b, '}')
}

// UnmarshalJSON reads the wire form written by MarshalJSON.
func (e *Event) UnmarshalJSON(b []byte) error {
	var j eventJSON
	if err := json.Unmarshal(b, &j); err != nil {
		return err
	}
	*e = Event(j.eventAlias)
	if j.Size != nil {
		e.Size = *j.Size
	}
	if j.ExpiresAt != nil {
		e.ExpiresAt = *j.ExpiresAt
	}
	return nil
}

// ValidSHA256 reports whether s is a sha256 as events carry it: 64
// lowercase hex digits.
func ValidSHA256(s string) bool {
	if len(s) != 64 {
		return false
	}
	for i := range len(s) {
		if c := s[i]; (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}
