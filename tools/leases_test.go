package tools_test

import (
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/filecast/filecast/events"
	"github.com/filecast/filecast/tools"
)

func TestLeases(t *testing.T) {
	l := tools.NewLeases()
	a := events.Lease{Workspace: "docs", Path: "b.md", Token: "lk_a", FencingToken: 1}
	b := events.Lease{Workspace: "docs", Path: "a.md", Token: "lk_b", FencingToken: 2}
	c := events.Lease{Workspace: "api", Path: "z.md", Token: "lk_c", FencingToken: 3}
	for _, x := range []events.Lease{a, b, c, {Workspace: "docs", Path: "no-token.md"}} {
		if !l.Add(x) {
			t.Fatalf("Add(%v) = false on an open set", x)
		}
	}
	refreshed := a
	refreshed.FencingToken = 1
	refreshed.Holder = "x#1"
	l.Add(refreshed)
	l.Remove("docs", "other.md", "lk_b") // wrong path: kept
	l.Remove("api", "z.md", "lk_c")
	if d := cmp.Diff([]events.Lease{b, refreshed}, l.Held()); d != "" {
		t.Errorf("Held (-want +got):\n%s", d)
	}
	if d := cmp.Diff([]events.Lease{b, refreshed}, l.Close()); d != "" {
		t.Errorf("Close (-want +got):\n%s", d)
	}
	if l.Add(c) {
		t.Error("Add after Close = true")
	}
	if got := l.Close(); len(got) != 0 {
		t.Errorf("second Close = %v", got)
	}
}
