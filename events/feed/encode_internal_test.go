package feed

import (
	"strings"
	"testing"

	"github.com/filecast/filecast/events"
)

func TestFrames_Get(t *testing.T) {
	var c frames
	a := events.Event{Seq: 7, Type: events.FileCreated, Path: "a.md", Workspace: "docs"}
	b := a
	b.Path = "b.md" // same seq, another log
	far := events.Event{Seq: 7 + 2*frameSlots, Type: events.FileCreated, Path: "c.md"}
	for i, tc := range []struct {
		ev   events.Event
		want string
	}{
		{a, `"path":"a.md"`},
		{a, `"path":"a.md"`},
		{b, `"path":"b.md"`},
		{far, `"path":"c.md"`},
		{b, `"path":"b.md"`}, // out of the window: encoded, not stored
		{far, `"path":"c.md"`},
	} {
		msg, err := c.get(&tc.ev)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(string(msg), "id: ") || !strings.Contains(string(msg), tc.want) || !strings.HasSuffix(string(msg), "}\n\n") {
			t.Errorf("%d: get(%d) = %q, want it to contain %s", i, tc.ev.Seq, msg, tc.want)
		}
	}
	if fr := c.slots[7%frameSlots].Load(); fr == nil || fr.ev.Seq != far.Seq {
		t.Errorf("slot of seq 7 holds %v, want the newer seq %d kept", fr, far.Seq)
	}
}
