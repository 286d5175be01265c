package inbox_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/filecast/filecast/events"
	"github.com/filecast/filecast/events/inbox"
)

func TestInbox_Selection(t *testing.T) {
	stream := []events.Event{
		ev("docs", 1, events.FileCreated, "a.md"),
		ev("docs", 2, events.FileUpdated, "b.go"),
		locked(ev("docs", 3, events.LockAcquired, "a.md"), me),
		locked(ev("docs", 4, events.LockReleased, "a.md"), me),
		locked(ev("docs", 5, events.LockExpiring, "a.md"), me),
		locked(ev("docs", 6, events.LockExpiring, "b.go"), "someone-else"),
		by(locked(ev("docs", 7, events.FileUpdated, "c.md"), me), myActor),
		locked(ev("docs", 8, events.FileUpdated, "d.md"), "someone-else"),
		ev("other", 1, events.FileCreated, "x.md"),
		ev("src", 1, events.FileDeleted, "d.md"),
		moved("docs", 9, "old.md", "e.txt"),
		locked(ev("docs", 10, events.LockExpired, "a.md"), me),
		locked(ev("docs", 11, events.FileUpdated, "f.md"), me), // someone changed a file under my lock
		by(ev("docs", 12, events.FileCreated, "g.md"), myActor),
	}
	type sub struct {
		ws         string
		globs      []string
		kinds      []string
		excludeOwn bool
	}
	tests := []struct {
		name   string
		holder string
		subs   []sub
		want   []string
	}{
		{"no subscriptions: file events and own expiring", me, nil,
			[]string{"docs/1", "docs/2", "docs/5", "docs/7", "docs/8", "src/1", "docs/9", "docs/11", "docs/12"}},
		{"no holder: file events only", "", nil,
			[]string{"docs/1", "docs/2", "docs/7", "docs/8", "src/1", "docs/9", "docs/11", "docs/12"}},
		{"glob, moves match by old path", me, []sub{{globs: []string{"*.md"}}},
			[]string{"docs/1", "docs/5", "docs/7", "docs/8", "src/1", "docs/9", "docs/11", "docs/12"}},
		{"base-name glob", me, []sub{{globs: []string{"e.txt"}}},
			[]string{"docs/5", "docs/9"}},
		{"locked", me, []sub{{kinds: []string{"locked"}}},
			[]string{"docs/3", "docs/5", "docs/6"}},
		{"unlocked", me, []sub{{kinds: []string{"unlocked"}}},
			[]string{"docs/4", "docs/5", "docs/10"}},
		{"one type", me, []sub{{kinds: []string{"deleted"}}},
			[]string{"docs/5", "src/1"}},
		{"workspace", me, []sub{{ws: "src"}},
			[]string{"docs/5", "src/1"}},
		{"exclude own leaves out the session's writes, not changes under its lock", me,
			[]sub{{globs: []string{"*.md"}, excludeOwn: true}},
			[]string{"docs/1", "docs/5", "docs/8", "src/1", "docs/9", "docs/11"}},
		{"exclude own leaves out the session's lock and unlock, not expiry", me,
			[]sub{{kinds: []string{"locked", "unlocked"}, excludeOwn: true}},
			[]string{"docs/5", "docs/6", "docs/10"}},
		{"exclude own without an actor excludes no write", "", []sub{{globs: []string{"*.md"}, excludeOwn: true}},
			[]string{"docs/1", "docs/7", "docs/8", "src/1", "docs/9", "docs/11", "docs/12"}},
		{"union of subscriptions", me, []sub{{kinds: []string{"created"}}, {ws: "src"}, {globs: []string{"c.md"}, excludeOwn: true}},
			[]string{"docs/1", "docs/5", "src/1", "docs/12"}},
		{"own change excluded by one subscription, selected by another", me,
			[]sub{{globs: []string{"c.md"}, excludeOwn: true}, {globs: []string{"c.md"}}},
			[]string{"docs/5", "docs/7"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			actor := ""
			if tt.holder != "" {
				actor = "mcp:" + tt.holder
			}
			b := inbox.New(inbox.Options{Workspaces: []string{"docs", "src"}, Holder: tt.holder, Actor: actor})
			var subIDs []string
			for _, s := range tt.subs {
				subIDs = append(subIDs, subscribe(t, b, s.ws, s.globs, s.kinds, s.excludeOwn))
			}
			var matched []string
			for _, e := range stream {
				if b.Matches(e, "") {
					matched = append(matched, e.ID)
				}
				b.Offer(e)
			}
			got := ids(take(t, b, "", 0).Events)
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("Take (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tt.want, matched); diff != "" {
				t.Errorf("Matches disagrees with Offer (-want +got):\n%s", diff)
			}
		})
	}
}

func TestInbox_MatchesSubscription(t *testing.T) {
	b := newInbox(0)
	md := subscribe(t, b, "", []string{"*.md"}, nil, true)
	lk := subscribe(t, b, "docs", nil, []string{"locked"}, false)
	tests := []struct {
		name  string
		ev    events.Event
		subID string
		want  bool
	}{
		{"glob", ev("docs", 1, events.FileCreated, "a.md"), md, true},
		{"glob miss", ev("docs", 1, events.FileCreated, "a.go"), md, false},
		{"own change excluded", by(ev("docs", 1, events.FileUpdated, "a.md"), myActor), md, false},
		{"change under own lock kept", locked(ev("docs", 1, events.FileUpdated, "a.md"), me), md, true},
		{"other workspace of the session", ev("src", 1, events.LockAcquired, "a.go"), lk, false},
		{"lock", ev("docs", 1, events.LockAcquired, "a.go"), lk, true},
		{"own expiring always", locked(ev("src", 1, events.LockExpiring, "z"), me), md, true},
		{"foreign workspace", ev("other", 1, events.FileCreated, "a.md"), md, false},
		{"foreign workspace, no subscription", ev("other", 1, events.FileCreated, "a.md"), "", false},
		{"unknown subscription", ev("docs", 1, events.FileCreated, "a.md"), "sub_nope", false},
		{"union", ev("docs", 1, events.LockAcquired, "x"), "", true},
		{"union miss", ev("docs", 1, events.FileDeleted, "x.go"), "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := b.Matches(tt.ev, tt.subID); got != tt.want {
				t.Errorf("Matches(%s %s, %q) = %v, want %v", tt.ev.Type, tt.ev.Path, tt.subID, got, tt.want)
			}
		})
	}
}

func TestInbox_Subscribe(t *testing.T) {
	b := newInbox(0)
	b.Offer(ev("docs", 4, events.FileCreated, "a"))
	s1, err := b.Subscribe(filter(t, "", []string{"*.md"}, nil), true)
	if err != nil {
		t.Fatal(err)
	}
	b.Offer(ev("src", 2, events.FileCreated, "a"))
	s2, err := b.Subscribe(filter(t, "src", nil, []string{"locked"}), false)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []inbox.Subscription{s1, s2} {
		if !strings.HasPrefix(s.ID, "sub_") || len(s.ID) != 16 {
			t.Errorf("ID %q: want sub_ and 12 characters", s.ID)
		}
	}
	if s1.ID == s2.ID {
		t.Errorf("two subscriptions share ID %q", s1.ID)
	}
	if diff := cmp.Diff(events.Cursor{"docs": 4, "src": 0}, s1.Cursor); diff != "" {
		t.Errorf("first cursor (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(events.Cursor{"docs": 4, "src": 2}, s2.Cursor); diff != "" {
		t.Errorf("second cursor (-want +got):\n%s", diff)
	}
	got := b.Subscriptions()
	if len(got) != 2 || got[0].ID != s1.ID || got[1].ID != s2.ID || !got[0].ExcludeOwn || got[1].ExcludeOwn {
		t.Errorf("Subscriptions = %+v", got)
	}
	if f, ok := b.Filter(s2.ID); !ok || f.Workspace != "src" || !f.HasType(events.LockAcquired) {
		t.Errorf("Filter(%s) = %+v, %v", s2.ID, f, ok)
	}

	_, err = b.Subscribe(filter(t, "other", nil, nil), false)
	if !errors.Is(err, events.ErrUnknownWorkspace) {
		t.Errorf("subscribe to a foreign workspace: err = %v, want ErrUnknownWorkspace", err)
	}
	var e *events.Error
	if !errors.As(err, &e) || e.Value != "other" || !strings.Contains(err.Error(), "docs, src") {
		t.Errorf("error %q should be an *events.Error naming the workspace and the session's workspaces", err)
	}

	if !b.Unsubscribe(s1.ID) || b.Unsubscribe(s1.ID) {
		t.Error("Unsubscribe: want true, then false")
	}
	if _, ok := b.Filter(s1.ID); ok {
		t.Error("Filter found a removed subscription")
	}
	if got := b.Subscriptions(); len(got) != 1 || got[0].ID != s2.ID {
		t.Errorf("Subscriptions after Unsubscribe = %+v", got)
	}
}

func TestInbox_UnknownSubscription(t *testing.T) {
	b := newInbox(0)
	id := subscribe(t, b, "", nil, nil, false)
	b.Unsubscribe(id)
	for _, subID := range []string{"sub_nope", id} {
		_, err := b.Take(context.Background(), subID, 0, 0)
		if !errors.Is(err, inbox.ErrUnknownSubscription) {
			t.Fatalf("Take(%q): err = %v, want ErrUnknownSubscription", subID, err)
		}
		if !strings.Contains(err.Error(), subID) || !strings.Contains(err.Error(), "call subscribe again") {
			t.Errorf("error %q should name the ID and say what to do", err)
		}
	}
}

func TestInbox_TakeSubscription(t *testing.T) {
	b := newInbox(0)
	md := subscribe(t, b, "", []string{"*.md"}, nil, false)
	gosub := subscribe(t, b, "", []string{"*.go"}, nil, false)
	b.Offer(ev("docs", 1, events.FileCreated, "1.md"))
	b.Offer(ev("docs", 2, events.FileCreated, "2.go"))
	b.Offer(ev("docs", 3, events.FileCreated, "3.md"))
	b.Offer(ev("src", 1, events.FileCreated, "4.go"))
	b.Offer(locked(ev("src", 2, events.LockExpiring, "x.md"), me))

	steps := []struct {
		subID string
		limit int
		want  inbox.Result
	}{
		{md, 1, inbox.Result{
			Events: []events.Event{ev("docs", 1, events.FileCreated, "1.md")},
			// docs: before 3.md, the next one for md; src: before the own lock.expiring.
			Cursor: events.Cursor{"docs": 2, "src": 1}, HasMore: true}},
		{md, 0, inbox.Result{
			Events: []events.Event{ev("docs", 3, events.FileCreated, "3.md"), locked(ev("src", 2, events.LockExpiring, "x.md"), me)},
			Cursor: events.Cursor{"docs": 3, "src": 2}}},
		{md, 0, inbox.Result{Events: []events.Event{}, Cursor: events.Cursor{"docs": 3, "src": 2}}},
		{gosub, 1, inbox.Result{
			Events: []events.Event{ev("docs", 2, events.FileCreated, "2.go")},
			Cursor: events.Cursor{"docs": 3, "src": 0}, HasMore: true}},
		{"", 0, inbox.Result{
			Events: []events.Event{ev("src", 1, events.FileCreated, "4.go")},
			Cursor: events.Cursor{"docs": 3, "src": 2}}},
	}
	for i, s := range steps {
		if diff := cmp.Diff(s.want, take(t, b, s.subID, s.limit)); diff != "" {
			t.Errorf("step %d (-want +got):\n%s", i, diff)
		}
	}
}

// TestInbox_UnsubscribeLast checks that removing the last subscription
// stops the buffer rather than bringing every file event again, while a
// read by cursor then matches every file event.
func TestInbox_UnsubscribeLast(t *testing.T) {
	b := newInbox(0)
	id := subscribe(t, b, "", []string{"*.md"}, nil, false)
	b.Offer(ev("docs", 1, events.FileCreated, "a.md"))
	b.Unsubscribe(id)
	b.Offer(ev("docs", 2, events.FileCreated, "b.md"))
	b.Offer(ev("docs", 3, events.FileCreated, "c.go"))
	expiring := locked(ev("docs", 4, events.LockExpiring, "x"), me)
	b.Offer(expiring)
	if diff := cmp.Diff([]string{"docs/1", "docs/4"}, ids(take(t, b, "", 0).Events)); diff != "" {
		t.Errorf("buffer after the last unsubscribe (-want +got):\n%s", diff)
	}
	for _, e := range []events.Event{ev("docs", 3, events.FileCreated, "c.go"), expiring} {
		if !b.Matches(e, "") {
			t.Errorf("read by cursor without subscriptions: %s does not match", e.ID)
		}
	}
	if b.Matches(ev("docs", 5, events.LockAcquired, "x"), "") {
		t.Error("read by cursor without subscriptions matches a lock event")
	}
	// Subscribing again selects by the new subscription.
	subscribe(t, b, "", []string{"*.go"}, nil, false)
	b.Offer(ev("docs", 6, events.FileCreated, "d.md"))
	b.Offer(ev("docs", 7, events.FileCreated, "e.go"))
	if diff := cmp.Diff([]string{"docs/7"}, ids(take(t, b, "", 0).Events)); diff != "" {
		t.Errorf("after subscribing again (-want +got):\n%s", diff)
	}
}

func TestInbox_AddWorkspace(t *testing.T) {
	b := inbox.New(inbox.Options{Workspaces: []string{"a"}})
	defer b.Close()
	b.Offer(events.Event{ID: "1", Seq: 5, Type: events.FileCreated, Workspace: "b", Path: "x"})
	b.AddWorkspace("b", 5)
	b.AddWorkspace("b", 99) // already there: no change
	b.Offer(events.Event{ID: "2", Seq: 6, Type: events.FileCreated, Workspace: "b", Path: "y"})
	res, err := b.Take(context.Background(), "", 10, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Events) != 1 || res.Events[0].Path != "y" || res.Cursor.For("b") != 6 {
		t.Fatalf("Take = %+v", res)
	}
	if _, err := b.Subscribe(events.Filter{Workspace: "b"}, false); err != nil {
		t.Fatalf("subscribe to the added workspace: %v", err)
	}
}
