package inbox_test

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/filecast/filecast/events"
	"github.com/filecast/filecast/events/inbox"
)

// model is a deliberately naive inbox: a slice, linear scans and a set of
// everything ever seen. The real one must behave exactly like it.
type model struct {
	capacity   int
	holder     string
	actor      string
	subs       []modelSub
	subscribed bool
	head       map[string]uint64
	buf        []events.Event
	lastTouch  map[string]events.Event // last selected file event touching ws+path
	overflowed bool
	openLo     map[string]uint64 // first dropped seq per workspace, until reported
}

type modelSub struct {
	id         string
	f          events.Filter
	excludeOwn bool
}

func (m *model) own(e events.Event) bool {
	return m.holder != "" && e.Lock != nil && e.Lock.Holder == m.holder
}

// mine reports whether the session did e itself.
func (m *model) mine(e events.Event) bool {
	if e.Type.IsFile() {
		return e.Actor == m.actor
	}
	return (e.Type == events.LockAcquired || e.Type == events.LockReleased) && m.own(e)
}

func (m *model) subMatch(s modelSub, e events.Event) bool {
	if s.excludeOwn && m.mine(e) {
		return false
	}
	return s.f.Match(e) || e.Type == events.LockExpiring && m.own(e)
}

func (m *model) selected(e events.Event) bool {
	if e.Type == events.LockExpiring && m.own(e) {
		return true
	}
	if !m.subscribed {
		return e.Type.IsFile()
	}
	return slices.ContainsFunc(m.subs, func(s modelSub) bool { return m.subMatch(s, e) })
}

// matches is the filter of a read by cursor without a subscription_id.
func (m *model) matches(e events.Event) bool {
	if e.Workspace == "other" {
		return false
	}
	if e.Type == events.LockExpiring && m.own(e) {
		return true
	}
	if len(m.subs) == 0 {
		return e.Type.IsFile()
	}
	return slices.ContainsFunc(m.subs, func(s modelSub) bool { return m.subMatch(s, e) })
}

func sameWriter(a, b events.Event) bool {
	ha, hb := "", ""
	if a.Lock != nil {
		ha = "\x00" + a.Lock.Holder
	}
	if b.Lock != nil {
		hb = "\x00" + b.Lock.Holder
	}
	return a.Actor == b.Actor && a.Conflict == b.Conflict && ha == hb
}

func touchKeys(e events.Event) []string {
	if !e.Type.IsFile() {
		return nil
	}
	keys := []string{e.Workspace + "\x00" + e.Path}
	if e.OldPath != "" {
		keys = append(keys, e.Workspace+"\x00"+e.OldPath)
	}
	return keys
}

func (m *model) offer(e events.Event) {
	head, ok := m.head[e.Workspace]
	if !ok || e.Seq <= head {
		return
	}
	m.head[e.Workspace] = e.Seq
	if !m.selected(e) {
		return
	}
	prev, hadPrev := m.lastTouch[e.Workspace+"\x00"+e.Path]
	for _, k := range touchKeys(e) {
		m.lastTouch[k] = e
	}
	if _, open := m.openLo[e.Workspace]; open {
		m.overflowed = true
		return
	}
	if e.Type == events.FileUpdated && hadPrev && prev.Type == events.FileUpdated && sameWriter(prev, e) {
		if i := slices.IndexFunc(m.buf, func(b events.Event) bool { return b.ID == prev.ID }); i >= 0 {
			m.buf = append(slices.Delete(m.buf, i, i+1), e)
			return
		}
	}
	if len(m.buf) >= m.capacity {
		m.overflowed = true
		m.openLo[e.Workspace] = e.Seq
		return
	}
	m.buf = append(m.buf, e)
}

func (m *model) take(subID string, limit int) inbox.Result {
	match := func(events.Event) bool { return true }
	if subID != "" {
		i := slices.IndexFunc(m.subs, func(s modelSub) bool { return s.id == subID })
		match = func(e events.Event) bool { return m.subMatch(m.subs[i], e) }
	}
	res := inbox.Result{Events: []events.Event{}, Cursor: events.Cursor{}}
	for ws, seq := range m.head {
		res.Cursor[ws] = seq
	}
	var keep []events.Event
	for _, e := range m.buf {
		switch {
		case !match(e):
			keep = append(keep, e)
		case len(res.Events) < limit:
			res.Events = append(res.Events, e)
		default:
			keep = append(keep, e)
			res.HasMore = true
			res.Cursor[e.Workspace] = min(res.Cursor[e.Workspace], e.Seq-1)
		}
	}
	m.buf = keep
	if m.overflowed {
		res.Overflowed, m.overflowed = true, false
		for ws, lo := range m.openLo {
			res.Cursor[ws] = min(res.Cursor[ws], lo-1)
		}
		clear(m.openLo)
	}
	return res
}

var (
	modelWorkspaces = []string{"docs", "src"}
	modelPaths      = []string{"a.md", "b.md", "c.go", "d/e.go"}
	modelTypes      = []events.Type{events.FileCreated, events.FileUpdated, events.FileUpdated, events.FileUpdated,
		events.FileDeleted, events.FileMoved, events.LockAcquired, events.LockExpiring}
	modelSubs = []struct {
		globs, kinds []string
		ws           string
		excludeOwn   bool
	}{
		{globs: []string{"*.md"}},
		{globs: []string{"d/"}, excludeOwn: true},
		{kinds: []string{"updated", "locked"}, ws: "src"},
		{kinds: []string{"created", "moved"}},
	}
)

// checkModel decodes data into a session setup and a sequence of Offers
// and Takes, runs it against the inbox and the model, and checks that
// every selected event that was not coalesced away is returned exactly
// once, in seq order per workspace, unless an overflow was reported.
func checkModel(t *testing.T, data []byte) {
	next := func() int {
		if len(data) == 0 {
			return 0
		}
		c := data[0]
		data = data[1:]
		return int(c)
	}
	const holder, actor = "me#1", "mcp:me#1"
	capacity := 1 + next()%6
	b := inbox.New(inbox.Options{Workspaces: modelWorkspaces, Capacity: capacity, Holder: holder, Actor: actor})
	m := &model{capacity: capacity, holder: holder, actor: actor, head: map[string]uint64{"docs": 0, "src": 0},
		lastTouch: map[string]events.Event{}, openLo: map[string]uint64{}}
	addSub := func() {
		s := modelSubs[next()%len(modelSubs)]
		f := filter(t, s.ws, s.globs, s.kinds)
		sub, err := b.Subscribe(f, s.excludeOwn)
		if err != nil {
			t.Fatal(err)
		}
		m.subs = append(m.subs, modelSub{sub.ID, f, s.excludeOwn})
		m.subscribed = true
	}
	for n := next() % 3; n > 0; n-- {
		addSub()
	}

	var (
		selected   = map[string]bool{} // selected when first offered
		offered    []events.Event
		seq        = map[string]uint64{}
		returned   = map[string]bool{}
		overflowed bool
	)
	doTake := func(subID string, limit int) {
		got, err := b.Take(t.Context(), subID, limit, 0)
		if err != nil {
			t.Fatal(err)
		}
		want := m.take(subID, limit)
		if diff := cmp.Diff(want, got); diff != "" {
			t.Fatalf("Take(%q, %d) differs from the model (-model +inbox):\n%s", subID, limit, diff)
		}
		overflowed = overflowed || got.Overflowed
		last := map[string]uint64{}
		for _, e := range got.Events {
			if returned[e.ID] {
				t.Fatalf("%s returned twice", e.ID)
			}
			returned[e.ID] = true
			if e.Seq <= last[e.Workspace] {
				t.Fatalf("%s out of seq order", e.ID)
			}
			last[e.Workspace] = e.Seq
			if got.Cursor[e.Workspace] < e.Seq {
				t.Fatalf("cursor %v is before returned event %s", got.Cursor, e.ID)
			}
		}
		if !got.HasMore && !got.Overflowed {
			if diff := cmp.Diff(b.Head(), got.Cursor); diff != "" {
				t.Fatalf("cursor is not the head (-head +cursor):\n%s", diff)
			}
		}
	}
	for len(data) > 0 {
		op := next()
		switch op % 8 {
		case 0, 1, 2, 3, 4:
			ws := modelWorkspaces[op/8%2]
			if op/16%8 == 7 {
				ws = "other"
			}
			seq[ws]++
			p := next()
			e := events.Event{ID: fmt.Sprintf("%s/%d", ws, seq[ws]), Seq: seq[ws], Workspace: ws,
				Type: modelTypes[p%len(modelTypes)], Path: modelPaths[p/8%len(modelPaths)]}
			if e.Type == events.FileMoved {
				e.OldPath = modelPaths[(p/8+1)%len(modelPaths)]
			}
			if p&0x80 != 0 {
				e.Lock = &events.LockInfo{Holder: holder}
			}
			e.Actor = []string{events.ActorFS, actor, "mcp:other#2", "api"}[(p>>5)&3]
			if m.matches(e) != b.Matches(e, "") {
				t.Fatalf("Matches(%s %s %s by %s) = %v, the model says %v", e.ID, e.Type, e.Path, e.Actor, b.Matches(e, ""), m.matches(e))
			}
			offered = append(offered, e)
			selected[e.ID] = e.Workspace != "other" && m.selected(e)
			b.Offer(e)
			m.offer(e)
		case 5:
			switch c := next(); {
			case c%4 == 0:
				addSub()
			case c%4 == 1 && len(m.subs) > 0:
				i := next() % len(m.subs)
				if !b.Unsubscribe(m.subs[i].id) {
					t.Fatalf("Unsubscribe(%s) = false", m.subs[i].id)
				}
				m.subs = slices.Delete(m.subs, i, i+1)
			case len(offered) > 0:
				e := offered[next()%len(offered)]
				b.Offer(e)
				m.offer(e)
			}
		case 6:
			doTake("", 1+next()%5)
		case 7:
			subID := ""
			if len(m.subs) > 0 {
				subID = m.subs[next()%len(m.subs)].id
			}
			doTake(subID, 1+next()%5)
		}
	}
	for range 2 { // the first may only report an overflow
		doTake("", inbox.MaxLimit)
	}

	// Accounting, independent of the model's buffer: each selected event
	// was returned, or replaced by a later returned update of its path, or
	// an overflow was reported.
	for i, e := range offered {
		if returned[e.ID] || !selected[e.ID] {
			continue
		}
		coalesced := e.Type == events.FileUpdated && slices.ContainsFunc(offered[i+1:], func(l events.Event) bool {
			return returned[l.ID] && l.Type == events.FileUpdated && l.Workspace == e.Workspace && l.Path == e.Path && sameWriter(e, l)
		})
		if !coalesced && !overflowed {
			t.Fatalf("selected event %s (%s %s) was never returned and no overflow was reported", e.ID, e.Type, e.Path)
		}
	}
}

func FuzzInbox_Model(f *testing.F) {
	f.Add([]byte{})
	f.Add([]byte{2, 0, 0, 1, 8, 9, 16, 1, 16, 1, 6, 4, 5, 0, 6, 4})
	f.Add([]byte{0, 2, 1, 3, 0, 8, 0, 8, 0, 8, 0, 8, 0, 8, 7, 0, 1, 7, 1, 1, 6, 0})
	f.Add([]byte{5, 1, 0, 8, 40, 8, 41, 0, 80, 0, 120, 5, 2, 7, 0, 3, 6, 2, 0, 200, 14, 3})
	f.Fuzz(checkModel)
}

// TestInbox_Model runs many random sequences on every test run.
func TestInbox_Model(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for i := range 400 {
		data := make([]byte, 10+r.IntN(300))
		for j := range data {
			data[j] = byte(r.UintN(256))
		}
		t.Run(fmt.Sprint(i), func(t *testing.T) { checkModel(t, data) })
		if t.Failed() {
			t.Logf("input: %v", data)
			return
		}
	}
}
