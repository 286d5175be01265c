package inbox_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/sourcegraph/conc"

	"github.com/filecast/filecast/events"
	"github.com/filecast/filecast/events/eventstest"
	"github.com/filecast/filecast/events/inbox"
)

const me = "claude-code#3f2a"

// ev builds an event whose ID is workspace and seq, e.g. "docs/3".
func ev(ws string, seq uint64, typ events.Type, path string) events.Event {
	return events.Event{ID: fmt.Sprintf("%s/%d", ws, seq), Seq: seq, Type: typ, Workspace: ws, Path: path, Actor: events.ActorFS}
}

func moved(ws string, seq uint64, from, to string) events.Event {
	e := ev(ws, seq, events.FileMoved, to)
	e.OldPath = from
	return e
}

func locked(e events.Event, holder string) events.Event {
	e.Lock = &events.LockInfo{Holder: holder, FencingToken: 1}
	return e
}

// by sets the event's actor.
func by(e events.Event, actor string) events.Event {
	e.Actor = actor
	return e
}

// myActor is the actor of the writes of the session whose holder is me.
const myActor = "mcp:" + me

func ids(evs []events.Event) []string {
	out := []string{}
	for _, e := range evs {
		out = append(out, e.ID)
	}
	return out
}

func filter(t testing.TB, ws string, globs []string, kinds []string) events.Filter {
	t.Helper()
	f, err := events.NewFilter(ws, globs, kinds)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func subscribe(t testing.TB, b *inbox.Inbox, ws string, globs, kinds []string, excludeOwn bool) string {
	t.Helper()
	s, err := b.Subscribe(filter(t, ws, globs, kinds), excludeOwn)
	if err != nil {
		t.Fatal(err)
	}
	return s.ID
}

func take(t testing.TB, b *inbox.Inbox, subID string, limit int) inbox.Result {
	t.Helper()
	res, err := b.Take(context.Background(), subID, limit, 0)
	if err != nil {
		t.Fatalf("Take(%q): %v", subID, err)
	}
	return res
}

func newInbox(capacity int) *inbox.Inbox {
	return inbox.New(inbox.Options{Workspaces: []string{"docs", "src"}, Capacity: capacity, Holder: me, Actor: myActor})
}

func TestInbox_Dedup(t *testing.T) {
	t.Run("same seq twice", func(t *testing.T) {
		b := newInbox(0)
		b.Offer(ev("docs", 1, events.FileCreated, "a"))
		b.Offer(ev("docs", 1, events.FileCreated, "a"))
		b.Offer(ev("src", 1, events.FileCreated, "a")) // same seq, other workspace
		b.Offer(ev("docs", 2, events.FileCreated, "b"))
		b.Offer(ev("docs", 1, events.FileCreated, "a")) // redelivery after a reconnect
		if diff := cmp.Diff([]string{"docs/1", "src/1", "docs/2"}, ids(take(t, b, "", 0).Events)); diff != "" {
			t.Errorf("(-want +got):\n%s", diff)
		}
		b.Offer(ev("docs", 2, events.FileCreated, "b"))
		if got := take(t, b, "", 0).Events; len(got) != 0 {
			t.Errorf("redelivery after Take returned %v", ids(got))
		}
	})
	t.Run("unselected events advance the head too", func(t *testing.T) {
		b := newInbox(0)
		b.Offer(ev("docs", 5, events.LockAcquired, "a"))
		b.Offer(ev("docs", 5, events.FileCreated, "a"))
		if got := take(t, b, "", 0); len(got.Events) != 0 || got.Cursor["docs"] != 5 {
			t.Errorf("got %v cursor %v", ids(got.Events), got.Cursor)
		}
	})
	t.Run("start", func(t *testing.T) {
		b := inbox.New(inbox.Options{Workspaces: []string{"docs", "src"}, Start: events.Cursor{"docs": 10}})
		if diff := cmp.Diff(events.Cursor{"docs": 10, "src": 0}, b.Head()); diff != "" {
			t.Errorf("Head (-want +got):\n%s", diff)
		}
		b.Offer(ev("docs", 10, events.FileCreated, "a"))
		b.Offer(ev("docs", 11, events.FileCreated, "b"))
		if diff := cmp.Diff([]string{"docs/11"}, ids(take(t, b, "", 0).Events)); diff != "" {
			t.Errorf("(-want +got):\n%s", diff)
		}
	})
}

func TestInbox_Coalesce(t *testing.T) {
	tests := []struct {
		name   string
		stream []events.Event
		want   []string
	}{
		{"three updates are one, the last", []events.Event{
			ev("docs", 1, events.FileUpdated, "a"),
			ev("docs", 2, events.FileUpdated, "a"),
			ev("docs", 3, events.FileUpdated, "a"),
		}, []string{"docs/3"}},
		{"at the new position", []events.Event{
			ev("docs", 1, events.FileUpdated, "a"),
			ev("docs", 2, events.FileUpdated, "b"),
			ev("docs", 3, events.FileUpdated, "a"),
		}, []string{"docs/2", "docs/3"}},
		{"per workspace", []events.Event{
			ev("docs", 1, events.FileUpdated, "a"),
			ev("src", 1, events.FileUpdated, "a"),
			ev("docs", 2, events.FileUpdated, "a"),
		}, []string{"src/1", "docs/2"}},
		{"created then updated stays two", []events.Event{
			ev("docs", 1, events.FileCreated, "a"),
			ev("docs", 2, events.FileUpdated, "a"),
			ev("docs", 3, events.FileUpdated, "a"),
		}, []string{"docs/1", "docs/3"}},
		{"a delete in between", []events.Event{
			ev("docs", 1, events.FileUpdated, "a"),
			ev("docs", 2, events.FileDeleted, "a"),
			ev("docs", 3, events.FileCreated, "a"),
			ev("docs", 4, events.FileUpdated, "a"),
		}, []string{"docs/1", "docs/2", "docs/3", "docs/4"}},
		{"a move away in between", []events.Event{
			ev("docs", 1, events.FileUpdated, "a"),
			moved("docs", 2, "a", "b"),
			ev("docs", 3, events.FileUpdated, "a"),
			ev("docs", 4, events.FileUpdated, "b"),
		}, []string{"docs/1", "docs/2", "docs/3", "docs/4"}},
		{"lock events do not interrupt", []events.Event{
			ev("docs", 1, events.FileUpdated, "a"),
			locked(ev("docs", 2, events.LockExpiring, "a"), me),
			ev("docs", 3, events.FileUpdated, "a"),
		}, []string{"docs/2", "docs/3"}},
		{"another writer's update stays", []events.Event{
			by(locked(ev("docs", 1, events.FileUpdated, "a"), "agentA#1"), "mcp:agentA#1"),
			by(ev("docs", 2, events.FileUpdated, "a"), "mcp:agentB#2"),
			by(ev("docs", 3, events.FileUpdated, "a"), "mcp:agentB#2"),
		}, []string{"docs/1", "docs/3"}},
		{"back to the first writer", []events.Event{
			by(ev("docs", 1, events.FileUpdated, "a"), "mcp:agentA#1"),
			by(ev("docs", 2, events.FileUpdated, "a"), "mcp:agentB#2"),
			by(ev("docs", 3, events.FileUpdated, "a"), "mcp:agentA#1"),
		}, []string{"docs/1", "docs/2", "docs/3"}},
		{"same actor under another lock holder stays", []events.Event{
			locked(ev("docs", 1, events.FileUpdated, "a"), "agentA#1"),
			ev("docs", 2, events.FileUpdated, "a"),
		}, []string{"docs/1", "docs/2"}},
		{"a conflict is not folded into a plain update", []events.Event{
			func() events.Event {
				e := locked(ev("docs", 1, events.FileUpdated, "a"), "agentA#1")
				e.Conflict = true
				return e
			}(),
			locked(ev("docs", 2, events.FileUpdated, "a"), "agentA#1"),
		}, []string{"docs/1", "docs/2"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := newInbox(0)
			for _, e := range tt.stream {
				b.Offer(e)
			}
			res := take(t, b, "", 0)
			if diff := cmp.Diff(tt.want, ids(res.Events)); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
			if res.Overflowed || res.HasMore {
				t.Errorf("Overflowed %v, HasMore %v", res.Overflowed, res.HasMore)
			}
		})
	}

	t.Run("not across a Take", func(t *testing.T) {
		b := newInbox(0)
		b.Offer(ev("docs", 1, events.FileUpdated, "a"))
		take(t, b, "", 0)
		b.Offer(ev("docs", 2, events.FileUpdated, "a"))
		if diff := cmp.Diff([]string{"docs/2"}, ids(take(t, b, "", 0).Events)); diff != "" {
			t.Errorf("(-want +got):\n%s", diff)
		}
	})
	t.Run("when full", func(t *testing.T) {
		b := newInbox(2)
		b.Offer(ev("docs", 1, events.FileUpdated, "a"))
		b.Offer(ev("docs", 2, events.FileUpdated, "b"))
		b.Offer(ev("docs", 3, events.FileUpdated, "a"))
		res := take(t, b, "", 0)
		if diff := cmp.Diff([]string{"docs/2", "docs/3"}, ids(res.Events)); diff != "" || res.Overflowed {
			t.Errorf("overflowed %v (-want +got):\n%s", res.Overflowed, diff)
		}
	})
}

func TestInbox_Overflow(t *testing.T) {
	b := newInbox(3)
	var stream []events.Event
	for seq := uint64(1); seq <= 5; seq++ {
		stream = append(stream, ev("docs", seq, events.FileCreated, fmt.Sprint("f", seq)))
		b.Offer(stream[seq-1])
	}
	want := inbox.Result{Events: stream[:3], Cursor: events.Cursor{"docs": 3, "src": 0}, Overflowed: true}
	if diff := cmp.Diff(want, take(t, b, "", 0)); diff != "" {
		t.Errorf("first Take (-want +got):\n%s", diff)
	}
	want = inbox.Result{Events: []events.Event{}, Cursor: events.Cursor{"docs": 5, "src": 0}}
	if diff := cmp.Diff(want, take(t, b, "", 0)); diff != "" {
		t.Errorf("second Take (-want +got):\n%s", diff)
	}

	// Newer events are buffered again and handed out...
	b.Offer(ev("docs", 6, events.FileCreated, "f6"))
	if diff := cmp.Diff([]string{"docs/6"}, ids(take(t, b, "", 0).Events)); diff != "" {
		t.Errorf("Take after overflow (-want +got):\n%s", diff)
	}
	// ...and reading the log from the resume cursor brings the dropped
	// ones (and, being a read of the log, what came after them).
	var fromLog []string
	for _, e := range append(stream, ev("docs", 6, events.FileCreated, "f6")) {
		if e.Seq > 3 && b.Matches(e, "") {
			fromLog = append(fromLog, e.ID)
		}
	}
	if diff := cmp.Diff([]string{"docs/4", "docs/5", "docs/6"}, fromLog); diff != "" {
		t.Errorf("read by cursor (-want +got):\n%s", diff)
	}
}

func TestInbox_OverflowKeepsDroppingUntilReported(t *testing.T) {
	b := newInbox(3)
	md := subscribe(t, b, "", []string{"*.md"}, nil, false)
	subscribe(t, b, "", []string{"*.go"}, nil, false)
	b.Offer(ev("docs", 1, events.FileCreated, "1.md"))
	b.Offer(ev("docs", 2, events.FileCreated, "2.md"))
	b.Offer(ev("docs", 3, events.FileCreated, "3.md"))
	b.Offer(ev("docs", 4, events.FileCreated, "4.go")) // full: dropped
	b.Offer(ev("src", 1, events.FileCreated, "1.go"))  // full: dropped
	b.Offer(ev("docs", 5, events.FileCreated, "5.md")) // docs has unreported drops
	b.Offer(ev("src", 2, events.FileCreated, "2.go"))  // room, but src has unreported drops

	res := take(t, b, md, 1)
	want := inbox.Result{
		Events:     []events.Event{ev("docs", 1, events.FileCreated, "1.md")},
		Cursor:     events.Cursor{"docs": 1, "src": 0},
		HasMore:    true,
		Overflowed: true,
	}
	if diff := cmp.Diff(want, res); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	b.Offer(ev("src", 3, events.FileCreated, "3.go"))
	res = take(t, b, "", 0)
	if diff := cmp.Diff([]string{"docs/2", "docs/3", "src/3"}, ids(res.Events)); diff != "" || res.Overflowed {
		t.Errorf("overflowed %v (-want +got):\n%s", res.Overflowed, diff)
	}
}

func TestInbox_LimitAndCursor(t *testing.T) {
	b := newInbox(0)
	var stream []events.Event
	for i := range uint64(250) {
		stream = append(stream, ev("docs", 2*i+1, events.FileCreated, fmt.Sprint(i)))
		b.Offer(stream[i])
		b.Offer(ev("docs", 2*i+2, events.LockAcquired, "x")) // not selected, but moves Head
	}
	steps := []struct {
		limit   int
		n       int
		cursor  uint64
		hasMore bool
	}{
		{0, 100, 200, true},    // default limit; cursor just before the next buffered event
		{120, 120, 440, true},  //
		{5000, 30, 500, false}, // capped at 1000; nothing left: the head
		{0, 0, 500, false},
	}
	next := 0
	for i, s := range steps {
		res := take(t, b, "", s.limit)
		if diff := cmp.Diff(stream[next:next+s.n], res.Events); diff != "" {
			t.Errorf("step %d events (-want +got):\n%s", i, diff)
		}
		next += s.n
		if res.Cursor["docs"] != s.cursor || res.HasMore != s.hasMore {
			t.Errorf("step %d: cursor %v, has_more %v; want docs:%d, %v", i, res.Cursor, res.HasMore, s.cursor, s.hasMore)
		}
	}

	t.Run("max limit", func(t *testing.T) {
		b := newInbox(0)
		for seq := range uint64(1200) {
			b.Offer(ev("src", seq+1, events.FileCreated, fmt.Sprint(seq)))
		}
		res := take(t, b, "", 5000)
		if len(res.Events) != inbox.MaxLimit || !res.HasMore || res.Cursor["src"] != inbox.MaxLimit {
			t.Errorf("got %d events, has_more %v, cursor %v", len(res.Events), res.HasMore, res.Cursor)
		}
	})

	t.Run("two workspaces", func(t *testing.T) {
		b := newInbox(0)
		b.Offer(ev("docs", 1, events.FileCreated, "a"))
		b.Offer(ev("src", 1, events.FileCreated, "a"))
		b.Offer(ev("docs", 2, events.FileCreated, "b"))
		b.Offer(ev("src", 2, events.FileCreated, "b"))
		b.Offer(ev("src", 3, events.FileCreated, "c"))
		for i, want := range []inbox.Result{
			{Events: []events.Event{ev("docs", 1, events.FileCreated, "a")}, Cursor: events.Cursor{"docs": 1, "src": 0}, HasMore: true},
			{Events: []events.Event{ev("src", 1, events.FileCreated, "a"), ev("docs", 2, events.FileCreated, "b")},
				Cursor: events.Cursor{"docs": 2, "src": 1}, HasMore: true},
			{Events: []events.Event{ev("src", 2, events.FileCreated, "b"), ev("src", 3, events.FileCreated, "c")},
				Cursor: events.Cursor{"docs": 2, "src": 3}},
		} {
			if diff := cmp.Diff(want, take(t, b, "", len(want.Events))); diff != "" {
				t.Errorf("take %d (-want +got):\n%s", i, diff)
			}
		}
	})
}

// TestInbox_ConcurrentTakes checks that events offered while several
// Takes run are each returned exactly once.
func TestInbox_ConcurrentTakes(t *testing.T) {
	const n = 3000
	b := newInbox(n)
	ctx := context.Background()
	batches := make(chan []events.Event)
	var wg conc.WaitGroup
	for range 4 {
		wg.Go(func() {
			for {
				res, err := b.Take(ctx, "", 7, time.Second)
				if err != nil {
					return
				}
				if len(res.Events) > 0 {
					batches <- res.Events
				}
			}
		})
	}
	wg.Go(func() {
		for seq := range uint64(n) {
			b.Offer(ev([]string{"docs", "src"}[seq%2], seq/2+1, events.FileCreated, fmt.Sprint(seq)))
		}
	})
	seen := map[string]bool{}
	timeout := time.After(eventstest.Timeout)
	for len(seen) < n {
		select {
		case batch := <-batches:
			for _, e := range batch {
				if seen[e.ID] {
					t.Errorf("%s returned twice", e.ID)
				}
				seen[e.ID] = true
			}
		case <-timeout:
			t.Fatalf("only %d of %d events taken", len(seen), n)
		}
	}
	b.Close()
	wg.Wait()
}

// TestInbox_Compaction checks coalescing after the buffer has compacted
// its storage.
func TestInbox_Compaction(t *testing.T) {
	b := newInbox(0)
	var stream []events.Event
	for i := range uint64(300) {
		stream = append(stream, ev("docs", i+1, events.FileUpdated, fmt.Sprint("p", i)))
		b.Offer(stream[i])
	}
	if got := take(t, b, "", 200).Events; len(got) != 200 {
		t.Fatalf("took %d events", len(got))
	}
	b.Offer(ev("docs", 301, events.FileUpdated, "p250")) // replaces docs/251
	var want []string
	for i := 201; i <= 300; i++ {
		if i != 251 {
			want = append(want, fmt.Sprint("docs/", i))
		}
	}
	want = append(want, "docs/301")
	if diff := cmp.Diff(want, ids(take(t, b, "", 0).Events)); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}

// TestInbox_ManyOverflows checks that every overflow is reported with a
// cursor just before the first event it dropped.
func TestInbox_ManyOverflows(t *testing.T) {
	b := newInbox(1)
	for i := range uint64(40) {
		kept, lost := ev("docs", 2*i+1, events.FileCreated, "k"), ev("docs", 2*i+2, events.FileCreated, "l")
		b.Offer(kept)
		b.Offer(lost)
		res := take(t, b, "", 0)
		if diff := cmp.Diff([]events.Event{kept}, res.Events); diff != "" || !res.Overflowed || res.Cursor["docs"] != kept.Seq {
			t.Fatalf("round %d: overflowed %v, cursor %v (-want +got):\n%s", i, res.Overflowed, res.Cursor, diff)
		}
	}
}
