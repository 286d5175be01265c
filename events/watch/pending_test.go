package watch

import (
	"maps"
	"slices"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

var t0 = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

func ms(n int) time.Duration { return time.Duration(n) * time.Millisecond }

// A path written again waits again, but never longer than maxSettle (or
// its own wait, when longer) after it started waiting.
func TestSettling_Wait(t *testing.T) {
	s := newSettling()
	s.wait(s.creates, "a", ms(50), t0)
	if got := s.creates["a"].deadline; !got.Equal(t0.Add(ms(50))) || !s.next.Equal(got) {
		t.Fatalf("deadline %v, next %v; want both at +50ms", got.Sub(t0), s.next.Sub(t0))
	}
	s.wait(s.creates, "a", ms(50), t0.Add(ms(30)))
	if got := s.creates["a"].deadline.Sub(t0); got != ms(80) {
		t.Errorf("written again at +30ms: deadline +%v, want +80ms", got)
	}
	s.wait(s.creates, "a", ms(50), t0.Add(maxSettle-ms(10)))
	if got := s.creates["a"].deadline.Sub(t0); got != maxSettle {
		t.Errorf("written again just before maxSettle: deadline +%v, want +%v", got, maxSettle)
	}
	s.wait(s.updates, "big", 2*maxSettle, t0)
	s.wait(s.updates, "big", 2*maxSettle, t0.Add(ms(100)))
	if got := s.updates["big"].deadline.Sub(t0); got != 2*maxSettle {
		t.Errorf("a wait longer than maxSettle: deadline +%v, want +%v", got, 2*maxSettle)
	}
	if got := s.next.Sub(t0); got != ms(50) {
		t.Errorf("next +%v, want the earliest deadline set, +50ms", got)
	}
}

// forget drops every wait under a folder, of every kind, and nothing
// beside it.
func TestSettling_Forget(t *testing.T) {
	fill := func() *settling {
		s := newSettling()
		for _, p := range []string{"a", "a/x", "a/b/y", "ab", "b/a"} {
			s.wait(s.creates, p, ms(5), t0)
			s.wait(s.updates, p, ms(5), t0)
			s.wait(s.deletes, p, ms(5), t0)
		}
		for i, p := range []string{"a/r", "ab/r", "a"} {
			s.renamed(p, fileID{1, uint64(i + 1)}, false, t0)
		}
		return &s
	}
	tests := []struct {
		prefix string
		left   []string
	}{
		{"a", []string{"ab", "b/a"}},
		{"a/b", []string{"a", "a/x", "ab", "b/a"}},
		{"", nil},
	}
	for _, tt := range tests {
		s := fill()
		s.forget(tt.prefix)
		for name, m := range map[string]map[string]*pending{"creates": s.creates, "updates": s.updates, "deletes": s.deletes} {
			if diff := cmp.Diff(tt.left, slices.Sorted(maps.Keys(m))); diff != "" {
				t.Errorf("forget(%q): %s left (-want +got):\n%s", tt.prefix, name, diff)
			}
		}
		var renames []string
		for p := range s.renames {
			renames = append(renames, p)
		}
		slices.Sort(renames)
		wantRenames := map[string][]string{"a": {"ab/r"}, "a/b": {"a", "a/r", "ab/r"}, "": nil}[tt.prefix]
		if !slices.Equal(renames, wantRenames) {
			t.Errorf("forget(%q): renames left %v, want %v", tt.prefix, renames, wantRenames)
		}
		if len(s.byID) != len(s.renames) {
			t.Errorf("forget(%q): %d renames by inode for %d renames", tt.prefix, len(s.byID), len(s.renames))
		}
	}
}

// A rename pairs with the notification of its new name by inode, a file
// with a file and a folder with a folder, and not with itself.
func TestSettling_RenamedFrom(t *testing.T) {
	s := newSettling()
	s.renamed("f", fileID{1, 1}, false, t0)
	s.renamed("d", fileID{1, 2}, true, t0)
	s.renamed("f", fileID{1, 3}, false, t0.Add(ms(10))) // already waiting: kept as it was
	s.renamed("noid", fileID{}, false, t0)
	tests := []struct {
		id   fileID
		dir  bool
		rel  string
		want string
	}{
		{fileID{1, 1}, false, "g", "f"},
		{fileID{1, 1}, true, "g", ""},
		{fileID{1, 1}, false, "f", ""},
		{fileID{1, 2}, true, "e", "d"},
		{fileID{1, 2}, false, "e", ""},
		{fileID{1, 3}, false, "g", ""},
		{fileID{}, false, "g", ""},
	}
	for _, tt := range tests {
		got, ok := s.renamedFrom(tt.id, tt.dir, tt.rel)
		if got != tt.want || ok != (tt.want != "") {
			t.Errorf("renamedFrom(%v, dir %v, %q) = %q, %v; want %q", tt.id, tt.dir, tt.rel, got, ok, tt.want)
		}
	}
	if got := s.renames["f"].deadline.Sub(t0); got != pairWindow {
		t.Errorf("a second rename moved the deadline to +%v, want +%v", got, pairWindow)
	}
	s.dropRename("f")
	if _, ok := s.renamedFrom(fileID{1, 1}, false, "g"); ok {
		t.Error("renamedFrom found a dropped rename")
	}
}

// expired lists what is due, each kind sorted, and sets next to the
// earliest deadline still ahead.
func TestSettling_Expired(t *testing.T) {
	s := newSettling()
	s.wait(s.creates, "c2", ms(10), t0)
	s.wait(s.creates, "c1", ms(10), t0)
	s.wait(s.creates, "later", ms(30), t0)
	s.wait(s.updates, "u", ms(20), t0)
	s.wait(s.deletes, "d", ms(10), t0)
	s.renamed("r", fileID{1, 1}, false, t0)
	got := s.expired(t0.Add(ms(20)))
	want := dueNow{deletes: []string{"d"}, creates: []string{"c1", "c2"}, updates: []string{"u"}}
	if diff := cmp.Diff(want, got, cmp.AllowUnexported(dueNow{})); diff != "" {
		t.Errorf("expired at +20ms (-want +got):\n%s", diff)
	}
	if got := s.next.Sub(t0); got != ms(30) {
		t.Errorf("next +%v, want +30ms", got)
	}
	if len(s.creates) != 3 {
		t.Error("expired took paths out; the caller does, as it handles them")
	}
	got = s.expired(t0.Add(pairWindow))
	if !slices.Equal(got.renames, []string{"r"}) || !slices.Equal(got.creates, []string{"c1", "c2", "later"}) || !s.next.IsZero() {
		t.Errorf("expired at +%v: %+v, next %v; want every path, and no next deadline", pairWindow, got, s.next)
	}
}

func TestUnder(t *testing.T) {
	tests := []struct {
		rel, prefix string
		want        bool
	}{
		{"a/b", "", true},
		{"a/b", "a", true},
		{"a", "a", true},
		{"ab/c", "a", false},
		{"a", "a/b", false},
		{"b/a", "a", false},
	}
	for _, tt := range tests {
		if got := under(tt.rel, tt.prefix); got != tt.want {
			t.Errorf("under(%q, %q) = %v, want %v", tt.rel, tt.prefix, got, tt.want)
		}
	}
}
