package server_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/http/httptest"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/mark3labs/mcp-go/client"

	"github.com/filecast/filecast/events"
	"github.com/filecast/filecast/events/eventstest"
	"github.com/filecast/filecast/events/hub/hubtest"
	"github.com/filecast/filecast/server"
	"github.com/filecast/filecast/tools"
)

// TestContract_ToolSemantics is a model-based test of the tools' contract.
// It drives a real session (stdio, over a real hub with its log, locks and
// watcher) with a random interleaving of writes (by the session, by
// another session over HTTP and on disk), locks, buffer reads, cursor
// reads, subscribes and unsubscribes, and checks every result against a
// reference model kept from the log itself:
//
//   - a read by cursor returns the log after the cursor, filtered by the
//     subscription given, else the session's subscriptions, else every
//     file event, and nothing else: whatever the session read before;
//   - a read of the buffer returns the events the session's subscriptions
//     selected when they happened (every file event before the first
//     subscribe, nothing after the last unsubscribe), each once, in
//     order, an update folded into a later one only by the same writer;
//   - every result's cursor is after its last event, or the head.
//
// FILECAST_CONTRACT_SEED picks another seed; FILECAST_CONTRACT_OPS the
// number of operations.
func TestContract_ToolSemantics(t *testing.T) {
	seeds := []uint64{1, 2, 3}
	if s := os.Getenv("FILECAST_CONTRACT_SEED"); s != "" {
		n, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			t.Fatal(err)
		}
		seeds = []uint64{n}
	}
	ops := 200
	if s := os.Getenv("FILECAST_CONTRACT_OPS"); s != "" {
		var err error
		if ops, err = strconv.Atoi(s); err != nil {
			t.Fatal(err)
		}
	}
	for _, seed := range seeds {
		t.Run(fmt.Sprint("seed ", seed), func(t *testing.T) { runContract(t, seed, ops) })
	}
}

// contract is the running system and its reference model.
type contract struct {
	t   *testing.T
	r   *rand.Rand
	st  *hubtest.Stack
	srv *server.Server
	a   *client.Client // the session under test (stdio)
	b   *client.Client // another session (HTTP)

	holder string // a's lock holder name; a writes as mcp:holder

	// The model.
	log        []events.Event // the workspace's log, as the hub has it
	subs       []modelSub     // a's subscriptions
	subscribed bool
	buf        []events.Event    // a's buffer
	target     map[string]string // path → ID of the buffered update a newer one by the same writer replaces
	cursors    []string          // cursors seen, to read from again
	files      []string          // paths that exist on disk
	locks      map[string]string
	n          int // content counter

	fromBuffer, fromCursor int // events returned, to show the test did something
}

type modelSub struct {
	id         string
	f          events.Filter
	excludeOwn bool
}

var (
	contractPaths = []string{"a.md", "b.md", "notes/c.md", "src/d.go", "src/e.go"}
	contractSubs  = []map[string]any{
		{"paths": []string{"*.md"}},
		{"paths": []string{"src/"}, "exclude_own": true},
		{"events": []string{"updated", "locked", "unlocked"}},
		{"paths": []string{"notes/**", "a.md"}, "events": []string{"created", "deleted"}},
		{"exclude_own": true},
		{},
	}
)

func runContract(t *testing.T, seed uint64, ops int) {
	st := hubtest.Start(t, hubtest.Options{})
	srv := serve(t, st.Hub, server.Options{})
	h := &harness{srv: srv}
	ts := httptest.NewServer(srv.HTTPHandler())
	t.Cleanup(ts.Close)
	a, _ := h.stdioClient(t, clientOpts{name: "agent-a"})
	b, _ := httpClient(t, ts, clientOpts{name: "agent-b"})
	c := &contract{t: t, r: rand.New(rand.NewPCG(seed, seed*7919)), st: st, srv: srv, a: a, b: b,
		cursors: []string{"docs:0"}, locks: map[string]string{}, target: map[string]string{}}

	// a's holder name, from a lock it takes and gives back.
	l := decode[tools.LockResult](t, call(t, a, "lock", map[string]any{"path": "probe"}))
	c.holder = l.Holder
	decode[tools.UnlockResult](t, call(t, a, "unlock", map[string]any{"path": "probe", "lock_token": l.LockToken}))
	c.sync()

	for i := range ops {
		op := c.r.IntN(100)
		switch {
		case op < 20:
			c.write(c.a, "a")
		case op < 30:
			c.write(c.b, "b")
		case op < 34:
			c.diskWrite()
		case op < 36:
			c.diskDelete()
		case op < 42:
			c.lockOrUnlock()
		case op < 62:
			c.readBuffer(i)
		case op < 84:
			c.readCursor(i)
		case op < 93:
			c.subscribe()
		default:
			c.unsubscribe()
		}
		if t.Failed() {
			t.Fatalf("seed %d failed at operation %d", seed, i)
		}
	}
	// Whatever is left in the buffer comes out, in order.
	for range 3 {
		c.readBuffer(-1)
	}
	t.Logf("seed %d: %d operations, %d events in the log, %d returned by buffer reads, %d by cursor reads",
		seed, ops, len(c.log), c.fromBuffer, c.fromCursor)
}

func (c *contract) actorA() string { return "mcp:" + c.holder }

func (c *contract) head() uint64 {
	if len(c.log) == 0 {
		return 0
	}
	return c.log[len(c.log)-1].Seq
}

// sync waits until the server has routed everything in the log, and
// offers the new events to the model.
func (c *contract) sync() {
	c.t.Helper()
	head := c.st.Head(c.t, "docs")
	eventstest.Eventually(c.t, "routing", func() bool { return c.srv.Heads().For("docs") >= head })
	for c.head() < head {
		page, err := c.st.Hub.Changes(context.Background(), "docs", c.head(), 1000, 0)
		if err != nil {
			c.t.Fatal(err)
		}
		for _, ev := range page.Events {
			c.log = append(c.log, ev)
			c.offer(ev)
		}
	}
}

// mine reports whether a did ev itself.
func (c *contract) mine(ev events.Event) bool {
	if ev.Type.IsFile() {
		return ev.Actor == c.actorA()
	}
	return (ev.Type == events.LockAcquired || ev.Type == events.LockReleased) && ev.Lock != nil && ev.Lock.Holder == c.holder
}

func (c *contract) subMatch(s modelSub, ev events.Event) bool {
	if s.excludeOwn && c.mine(ev) {
		return false
	}
	return s.f.Match(ev)
}

// ownExpiring is the warning a always gets.
func (c *contract) ownExpiring(ev events.Event) bool {
	return ev.Type == events.LockExpiring && ev.Lock != nil && ev.Lock.Holder == c.holder
}

// cursorMatch is the filter of a read by cursor.
func (c *contract) cursorMatch(ev events.Event, subID string) bool {
	if c.ownExpiring(ev) {
		return true
	}
	if subID != "" {
		i := slices.IndexFunc(c.subs, func(s modelSub) bool { return s.id == subID })
		return c.subMatch(c.subs[i], ev)
	}
	if len(c.subs) == 0 {
		return ev.Type.IsFile()
	}
	return slices.ContainsFunc(c.subs, func(s modelSub) bool { return c.subMatch(s, ev) })
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

// offer is the buffer's rule: selection, then coalescing of an unread
// update of the same path by the same writer (unless another file event
// touched the path since).
func (c *contract) offer(ev events.Event) {
	selected := c.ownExpiring(ev)
	if !selected && !c.subscribed {
		selected = ev.Type.IsFile()
	}
	if !selected {
		selected = slices.ContainsFunc(c.subs, func(s modelSub) bool { return c.subMatch(s, ev) })
	}
	if !selected {
		return
	}
	switch {
	case ev.Type == events.FileUpdated:
		if id, ok := c.target[ev.Path]; ok {
			i := slices.IndexFunc(c.buf, func(p events.Event) bool { return p.ID == id })
			if i >= 0 && sameWriter(c.buf[i], ev) {
				c.buf = slices.Delete(c.buf, i, i+1)
			}
		}
		c.target[ev.Path] = ev.ID
	case ev.Type.IsFile():
		delete(c.target, ev.Path)
		delete(c.target, ev.OldPath)
	}
	c.buf = append(c.buf, ev)
}

func (c *contract) content() string {
	c.n++
	return fmt.Sprintf("version %d\n", c.n)
}

func (c *contract) pick(list []string) string { return list[c.r.IntN(len(list))] }

func (c *contract) write(cl *client.Client, who string) {
	p := c.pick(contractPaths)
	args := map[string]any{"path": p, "content": c.content()}
	if tok, ok := c.locks[p]; ok && who == "a" {
		args["lock_token"] = tok
	}
	res := call(c.t, cl, "write_file", args)
	if res.IsError {
		if _, locked := c.locks[p]; !(locked && who == "b") {
			c.t.Fatalf("%s: write_file %s: %s", who, p, text(res))
		}
	} else if !slices.Contains(c.files, p) {
		c.files = append(c.files, p)
	}
	c.sync()
}

// onDisk waits for the watcher to report a change made on disk.
func (c *contract) onDisk(change func()) {
	before := c.st.Head(c.t, "docs")
	change()
	eventstest.Eventually(c.t, "the watcher's event", func() bool { return c.st.Head(c.t, "docs") > before })
	c.sync()
}

func (c *contract) diskWrite() {
	p := c.pick(contractPaths)
	if _, locked := c.locks[p]; locked {
		return // a change on disk under a's lock would be a conflict: covered elsewhere
	}
	abs := c.st.Path("docs", p)
	c.onDisk(func() {
		if err := os.MkdirAll(abs[:strings.LastIndexByte(abs, '/')], 0o755); err != nil {
			c.t.Fatal(err)
		}
		if err := os.WriteFile(abs, []byte(c.content()), 0o644); err != nil {
			c.t.Fatal(err)
		}
	})
	if !slices.Contains(c.files, p) {
		c.files = append(c.files, p)
	}
}

func (c *contract) diskDelete() {
	if len(c.files) == 0 {
		return
	}
	p := c.pick(c.files)
	if _, locked := c.locks[p]; locked {
		return
	}
	c.onDisk(func() {
		if err := os.Remove(c.st.Path("docs", p)); err != nil {
			c.t.Fatal(err)
		}
	})
	c.files = slices.DeleteFunc(c.files, func(f string) bool { return f == p })
}

func (c *contract) lockOrUnlock() {
	p := c.pick(contractPaths)
	if tok, ok := c.locks[p]; ok {
		decode[tools.UnlockResult](c.t, call(c.t, c.a, "unlock", map[string]any{"path": p, "lock_token": tok}))
		delete(c.locks, p)
	} else {
		l := decode[tools.LockResult](c.t, call(c.t, c.a, "lock", map[string]any{"path": p}))
		c.locks[p] = l.LockToken
	}
	c.sync()
}

func (c *contract) subscribe() {
	args := contractSubs[c.r.IntN(len(contractSubs))]
	res := decode[tools.SubscribeResult](c.t, call(c.t, c.a, "subscribe", args))
	f, err := events.NewFilter("", strs(args["paths"]), strs(args["events"]))
	if err != nil {
		c.t.Fatal(err)
	}
	ex, _ := args["exclude_own"].(bool)
	c.subs = append(c.subs, modelSub{id: res.SubscriptionID, f: f, excludeOwn: ex})
	c.subscribed = true
	if want := fmt.Sprintf("docs:%d", c.head()); res.Cursor != want {
		c.t.Errorf("subscribe cursor %q, want the head %s", res.Cursor, want)
	}
	c.cursors = append(c.cursors, res.Cursor)
}

func strs(v any) []string {
	s, _ := v.([]string)
	return s
}

func (c *contract) unsubscribe() {
	id := "sub_notthereatall"
	want := false
	if len(c.subs) > 0 && c.r.IntN(4) > 0 {
		i := c.r.IntN(len(c.subs))
		id, want = c.subs[i].id, true
		c.subs = slices.Delete(c.subs, i, i+1)
	}
	if got := decode[tools.UnsubscribeResult](c.t, call(c.t, c.a, "unsubscribe", map[string]any{"subscription_id": id})); got.Removed != want {
		c.t.Errorf("unsubscribe %s: removed %v, want %v", id, got.Removed, want)
	}
}

// subArg picks a subscription_id for a read, or none.
func (c *contract) subArg(args map[string]any) string {
	if len(c.subs) == 0 || c.r.IntN(3) > 0 {
		return ""
	}
	id := c.subs[c.r.IntN(len(c.subs))].id
	args["subscription_id"] = id
	return id
}

func ids(evs []events.Event) []string {
	out := []string{}
	for _, ev := range evs {
		out = append(out, fmt.Sprintf("%d %s %s by %s", ev.Seq, ev.Type, ev.Path, ev.Actor))
	}
	return out
}

func (c *contract) readBuffer(step int) {
	limit := 1 + c.r.IntN(6)
	args := map[string]any{"limit": limit}
	if step < 0 {
		limit = 1000
		args["limit"] = limit
	}
	subID := c.subArg(args)
	got := listChanges(c.t, c.a, args)

	match := func(events.Event) bool { return true }
	if subID != "" {
		i := slices.IndexFunc(c.subs, func(s modelSub) bool { return s.id == subID })
		match = func(ev events.Event) bool { return c.subMatch(c.subs[i], ev) || c.ownExpiring(ev) }
	}
	var want, keep []events.Event
	cursor := c.head()
	hasMore := false
	for _, ev := range c.buf {
		switch {
		case !match(ev):
			keep = append(keep, ev)
		case len(want) < limit:
			want = append(want, ev)
			if c.target[ev.Path] == ev.ID {
				delete(c.target, ev.Path)
			}
		default:
			keep = append(keep, ev)
			if !hasMore {
				cursor = min(cursor, ev.Seq-1)
			}
			hasMore = true
		}
	}
	c.buf = keep
	c.fromBuffer += len(got.Events)
	if d := cmp.Diff(ids(want), ids(got.Events)); d != "" {
		c.t.Errorf("step %d: buffer read %v (-model +server):\n%s", step, args, d)
	}
	if got.HasMore != hasMore || got.Cursor != fmt.Sprintf("docs:%d", cursor) || got.Overflowed {
		c.t.Errorf("step %d: buffer read %v: has_more %v cursor %s overflowed %v, want %v docs:%d false",
			step, args, got.HasMore, got.Cursor, got.Overflowed, hasMore, cursor)
	}
	c.cursors = append(c.cursors, got.Cursor)
}

func (c *contract) readCursor(step int) {
	cur := c.pick(c.cursors)
	switch c.r.IntN(8) {
	case 0:
		cur = fmt.Sprintf("docs:%d", c.r.Uint64N(c.head()+1))
	case 1:
		cur = fmt.Sprintf("docs:%d", c.head()+1+c.r.Uint64N(5))
	}
	limit := 1 + c.r.IntN(8)
	args := map[string]any{"cursor": cur, "limit": limit}
	subID := c.subArg(args)
	res := call(c.t, c.a, "list_changes", args)

	after, err := strconv.ParseUint(strings.TrimPrefix(cur, "docs:"), 10, 64)
	if err != nil {
		c.t.Fatal(err)
	}
	if after > c.head() {
		if want := fmt.Sprintf("which is at docs:%d", c.head()); !res.IsError || !strings.Contains(text(res), want) {
			c.t.Errorf("step %d: cursor %s beyond the head %d: %s, want an error naming it", step, cur, c.head(), text(res))
		}
		return
	}
	got := decode[tools.ListChangesResult](c.t, res)
	var want []events.Event
	pos, hasMore := c.head(), false
	for _, ev := range c.log {
		if ev.Seq <= after {
			continue
		}
		if len(want) == limit {
			hasMore = true
			break
		}
		if c.cursorMatch(ev, subID) {
			want = append(want, ev)
			if len(want) == limit {
				pos = ev.Seq
			}
		}
	}
	c.fromCursor += len(got.Events)
	if d := cmp.Diff(ids(want), ids(got.Events)); d != "" {
		c.t.Errorf("step %d: cursor read %v (-model +server):\n%s", step, args, d)
	}
	if got.HasMore != hasMore || got.Cursor != fmt.Sprintf("docs:%d", pos) {
		c.t.Errorf("step %d: cursor read %v: has_more %v cursor %s, want %v docs:%d", step, args, got.HasMore, got.Cursor, hasMore, pos)
	}
	c.cursors = append(c.cursors, got.Cursor)
}
