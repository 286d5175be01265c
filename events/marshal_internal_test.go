package events

import (
	"encoding/json"
	"testing"
	"time"
)

// reflectJSON is the wire form as encoding/json writes it from the
// fields' tags (marshalSlow), which MarshalJSON must match byte for byte.
func reflectJSON(t *testing.T, e Event) string {
	t.Helper()
	b, err := e.marshalSlow(nil)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestEvent_MarshalJSONAsReflection(t *testing.T) {
	at := time.Date(2026, 11, 27, 10, 0, 0, 123456789, time.FixedZone("CET", 3600))
	sha := "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"
	evs := []Event{
		{},
		{ID: "01JDX5", Seq: 1042, Type: FileUpdated, Workspace: "docs", Path: "reports/q3.md", Size: 1834, SHA256: sha, PrevSHA256: sha, Actor: ActorFS, Time: at},
		{ID: "01JDX6", Seq: 1, Type: FileCreated, Workspace: "docs", Path: "empty", Actor: ActorFS, Time: at},
		{ID: "01JDX7", Seq: 2, Type: FileDeleted, Workspace: "docs", Path: "gone", Size: 12, Actor: "api:ci", Time: at},
		{ID: "01JDX8", Seq: 3, Type: FileMoved, Workspace: "w", Path: "new <&>.go", OldPath: "old \"quoted\"\\.go", Size: 7, SHA256: sha, Actor: "mcp:claude", Conflict: true, Time: at},
		{ID: "01JDX9", Seq: 4, Type: LockAcquired, Workspace: "w", Path: "日本語/é 🎉.txt", Actor: "mcp:x", Lock: &LockInfo{Holder: "claude-code#3f2a", FencingToken: 7, Mode: "shared"}, ExpiresAt: at.Add(time.Minute), Time: at},
		{ID: "id", Type: LockExpired, Workspace: "w", Path: "a\nb\tc\x00\x1f\u2028\u2029\xff\xfe", Lock: &LockInfo{Holder: "h<>"}, Time: at},
		{ID: "id", Type: "file.unknown", Workspace: "w", Path: "p", Size: 3, Time: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)},
	}
	for _, e := range evs {
		b, err := e.MarshalJSON()
		if err != nil {
			t.Fatal(err)
		}
		if want := reflectJSON(t, e); string(b) != want {
			t.Errorf("MarshalJSON =\n%s\nwant\n%s", b, want)
		}
		var back Event
		if err := json.Unmarshal(b, &back); err != nil {
			t.Errorf("Unmarshal(%s): %v", b, err)
		}
	}
}

func TestEvent_MarshalJSONRefusesYear10000(t *testing.T) {
	e := Event{ID: "x", Time: time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC)}
	if _, err := e.MarshalJSON(); err == nil {
		t.Error("MarshalJSON of year 10000 = nil error, want encoding/json's")
	}
}

func BenchmarkEvent_MarshalJSON(b *testing.B) {
	e := Event{ID: "01JDX5ABCDEFGHJKMNPQRSTVWX", Seq: 1042, Type: FileUpdated, Workspace: "docs", Path: "reports/q3.md", Size: 1834,
		SHA256: "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08", Actor: ActorFS, Time: time.Now()}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := e.MarshalJSON(); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkEvent_MarshalJSONReflect is the same event through
// encoding/json's reflection, as MarshalJSON wrote it before, to compare.
func BenchmarkEvent_MarshalJSONReflect(b *testing.B) {
	e := Event{ID: "01JDX5ABCDEFGHJKMNPQRSTVWX", Seq: 1042, Type: FileUpdated, Workspace: "docs", Path: "reports/q3.md", Size: 1834,
		SHA256: "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08", Actor: ActorFS, Time: time.Now()}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := e.marshalSlow(nil); err != nil {
			b.Fatal(err)
		}
	}
}
