package journal_test

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/nats-io/nats.go"
	"github.com/sourcegraph/conc"

	"github.com/filecast/filecast/events"
	"github.com/filecast/filecast/events/eventstest"
	"github.com/filecast/filecast/events/journal"
	"github.com/filecast/filecast/events/natsd"
	"github.com/filecast/filecast/events/natsd/natstest"
)

const waitFor = 10 * time.Second

// open starts an embedded server on dir and opens a journal on it; both are
// closed when the test ends.
func open(t testing.TB, dir string, opts journal.Options) *journal.Journal {
	t.Helper()
	j, _ := openConn(t, dir, opts)
	return j
}

func openConn(t testing.TB, dir string, opts journal.Options) (*journal.Journal, *nats.Conn) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	srv := natstest.StartWith(t, natsd.Options{StoreDir: dir})
	j, err := journal.Open(ctx, srv.Conn(), opts)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { _ = j.Close() })
	return j, srv.Conn()
}

var t0 = time.Date(2026, 11, 27, 10, 0, 0, 0, time.UTC)

func event(ws string, i int) events.Event {
	return events.Event{
		ID:        fmt.Sprintf("%s-%04d", ws, i),
		Type:      events.FileUpdated,
		Workspace: ws,
		Path:      fmt.Sprintf("dir/file%d.txt", i),
		Size:      int64(i),
		SHA256:    strings.Repeat("ab", 32),
		Actor:     events.ActorFS,
		Time:      t0.Add(time.Duration(i) * time.Millisecond),
	}
}

// appendN appends events 1..n to ws and returns them as stored.
func appendN(t testing.TB, j *journal.Journal, ws string, n int) []events.Event {
	t.Helper()
	var out []events.Event
	for i := 1; i <= n; i++ {
		ev, err := j.Append(context.Background(), event(ws, i))
		if err != nil {
			t.Fatalf("Append %d: %v", i, err)
		}
		out = append(out, ev)
	}
	return out
}

func seqs(evs []events.Event) []uint64 {
	out := []uint64{}
	for _, ev := range evs {
		out = append(out, ev.Seq)
	}
	return out
}

func span(from, to uint64) []uint64 {
	out := []uint64{}
	for s := from; s <= to; s++ {
		out = append(out, s)
	}
	return out
}

func TestJournal_AppendSeqs(t *testing.T) {
	j := open(t, t.TempDir(), journal.Options{})
	ctx := t.Context()
	got := map[string][]uint64{}
	for i := 1; i <= 5; i++ {
		for _, ws := range []string{"a", "b"} {
			if ws == "b" && i > 3 {
				continue
			}
			ev, err := j.Append(ctx, event(ws, i))
			if err != nil {
				t.Fatal(err)
			}
			got[ws] = append(got[ws], ev.Seq)
		}
	}
	want := map[string][]uint64{"a": span(1, 5), "b": span(1, 3)}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("seqs (-want +got):\n%s", d)
	}
	for ws, n := range map[string]uint64{"a": 5, "b": 3} {
		if h, err := j.Head(ctx, ws); err != nil || h != n {
			t.Errorf("Head(%s) = %d, %v; want %d", ws, h, err, n)
		}
	}
}

func TestJournal_AppendDuplicate(t *testing.T) {
	j := open(t, t.TempDir(), journal.Options{})
	ctx := t.Context()
	stored := appendN(t, j, "docs", 3)
	again := event("docs", 2)
	again.Path = "changed" // same ID: the original is kept
	ev, err := j.Append(ctx, again)
	if err != nil {
		t.Fatal(err)
	}
	if ev.Seq != 2 {
		t.Errorf("duplicate seq = %d, want the original 2", ev.Seq)
	}
	got, err := j.Read(ctx, "docs", 0, 100)
	if err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff(stored, got); d != "" {
		t.Errorf("log after duplicate (-want +got):\n%s", d)
	}
}

func TestJournal_AppendErrors(t *testing.T) {
	j := open(t, t.TempDir(), journal.Options{})
	tests := []struct {
		name string
		ev   events.Event
		want error
	}{
		{"no id", events.Event{Workspace: "docs", Type: events.FileCreated}, journal.ErrNoEventID},
		{"no workspace", events.Event{ID: "x", Type: events.FileCreated}, events.ErrBadPath},
		{"dot first", events.Event{ID: "x", Workspace: ".docs"}, events.ErrBadPath},
		{"slash", events.Event{ID: "x", Workspace: "a/b"}, events.ErrBadPath},
		{"wildcard", events.Event{ID: "x", Workspace: "a*"}, events.ErrBadPath},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := j.Append(t.Context(), tt.ev)
			if !errors.Is(err, tt.want) {
				t.Fatalf("err = %v, want %v", err, tt.want)
			}
		})
	}
}

func TestJournal_Read(t *testing.T) {
	j := open(t, t.TempDir(), journal.Options{})
	stored := appendN(t, j, "docs", 10)
	tests := []struct {
		after uint64
		limit int
		want  []uint64
	}{
		{0, 100, span(1, 10)},
		{0, 0, span(1, 10)}, // default limit
		{0, 3, span(1, 3)},
		{3, 4, span(4, 7)},
		{8, 100, span(9, 10)},
		{9, 1, span(10, 10)},
		{10, 5, nil},
		{50, 5, nil},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("after=%d,limit=%d", tt.after, tt.limit), func(t *testing.T) {
			start := time.Now()
			got, err := j.Read(t.Context(), "docs", tt.after, tt.limit)
			if err != nil {
				t.Fatal(err)
			}
			if el := time.Since(start); el > time.Second {
				t.Errorf("Read took %v; it must not wait for events", el)
			}
			var want []events.Event
			for _, s := range tt.want {
				want = append(want, stored[s-1])
			}
			if d := cmp.Diff(want, got); d != "" {
				t.Errorf("(-want +got):\n%s", d)
			}
		})
	}
}

func TestJournal_ReadRoundTrip(t *testing.T) {
	j := open(t, t.TempDir(), journal.Options{})
	ctx := t.Context()
	in := []events.Event{
		{ID: "1", Type: events.FileCreated, Workspace: "w", Path: "a.txt", Size: 0, SHA256: "e3b0", Actor: "fs", Time: t0},
		{ID: "2", Type: events.FileMoved, Workspace: "w", Path: "b.txt", OldPath: "a.txt", Size: 3, Actor: "api:ci", Time: t0.Add(time.Microsecond)},
		{ID: "3", Type: events.FileDeleted, Workspace: "w", Path: "b\nc.txt", Actor: "mcp:claude", Conflict: true,
			Lock: &events.LockInfo{Holder: "claude-code#3f2a", FencingToken: 7, Mode: "exclusive"}, Time: t0},
		{ID: "4", Type: events.LockAcquired, Workspace: "w", Path: "new.go", Actor: "mcp:x", ExpiresAt: t0.Add(time.Minute), Time: t0},
	}
	var want []events.Event
	for _, ev := range in {
		ev.Seq = 99 // ignored: the log assigns it
		got, err := j.Append(ctx, ev)
		if err != nil {
			t.Fatal(err)
		}
		want = append(want, got)
	}
	got, err := j.Read(ctx, "w", 0, 10)
	if err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("(-want +got):\n%s", d)
	}
	if s := seqs(got); !cmp.Equal(s, span(1, 4)) {
		t.Errorf("seqs = %v", s)
	}
}

// TestJournal_ReadPaths checks both ways of reading: the batched direct
// get Read uses, and the consumer it falls back to on servers without it.
func TestJournal_ReadPaths(t *testing.T) {
	j := open(t, t.TempDir(), journal.Options{})
	stored := appendN(t, j, "docs", 7)
	paths := map[string]func(context.Context, string, uint64, int) ([]events.Event, error){
		"direct":   j.DirectRead,
		"consumer": j.ConsumerRead,
	}
	for name, read := range paths {
		for _, tt := range []struct {
			after uint64
			limit int
		}{{0, 100}, {2, 3}, {7, 10}} {
			got, err := read(t.Context(), "docs", tt.after, tt.limit)
			if err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			want := stored[tt.after:min(int(tt.after)+tt.limit, len(stored))]
			if len(want) == 0 {
				want = nil
			}
			if d := cmp.Diff(want, got); d != "" {
				t.Errorf("%s after=%d limit=%d (-want +got):\n%s", name, tt.after, tt.limit, d)
			}
		}
	}
}

func TestJournal_UnknownWorkspace(t *testing.T) {
	j := open(t, t.TempDir(), journal.Options{})
	ctx := t.Context()
	evs, err := j.Read(ctx, "nothing", 0, 10)
	if err != nil || len(evs) != 0 {
		t.Errorf("Read = %v, %v; want empty", evs, err)
	}
	evs, err = j.Read(ctx, "nothing", 5, 10)
	if err != nil || len(evs) != 0 {
		t.Errorf("Read after 5 = %v, %v; want empty", evs, err)
	}
	if h, err := j.Head(ctx, "nothing"); h != 0 || err != nil {
		t.Errorf("Head = %d, %v", h, err)
	}
	if f, err := j.First(ctx, "nothing"); f != 0 || err != nil {
		t.Errorf("First = %d, %v", f, err)
	}
	if _, err := j.Read(ctx, "bad/name", 0, 10); !errors.Is(err, events.ErrBadPath) {
		t.Errorf("Read bad name: err = %v, want ErrBadPath", err)
	}
	if err := j.Ensure(ctx, "nothing"); err != nil {
		t.Fatal(err)
	}
	if err := j.Ensure(ctx, "nothing"); err != nil {
		t.Fatalf("second Ensure: %v", err)
	}
	if h, err := j.Head(ctx, "nothing"); h != 0 || err != nil {
		t.Errorf("Head after Ensure = %d, %v", h, err)
	}
}

func TestJournal_RestartKeepsState(t *testing.T) {
	dir := t.TempDir()
	ctx := t.Context()
	{
		srv := natstest.StartWith(t, natsd.Options{StoreDir: dir})
		j, err := journal.Open(ctx, srv.Conn(), journal.Options{})
		if err != nil {
			t.Fatal(err)
		}
		appendN(t, j, "docs", 3)
		_ = j.Close()
		if err := srv.Close(); err != nil {
			t.Fatal(err)
		}
	}
	j := open(t, dir, journal.Options{})
	got, err := j.Read(ctx, "docs", 0, 10)
	if err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff(span(1, 3), seqs(got)); d != "" {
		t.Errorf("after restart (-want +got):\n%s", d)
	}
	ev, err := j.Append(ctx, event("docs", 4))
	if err != nil || ev.Seq != 4 {
		t.Errorf("Append after restart = %d, %v; want seq 4", ev.Seq, err)
	}
	// The dedup window survives the restart too.
	ev, err = j.Append(ctx, event("docs", 1))
	if err != nil || ev.Seq != 1 {
		t.Errorf("duplicate after restart = %d, %v; want original seq 1", ev.Seq, err)
	}
}

func TestJournal_CursorExpired(t *testing.T) {
	j := open(t, t.TempDir(), journal.Options{MaxEvents: 5})
	ctx := t.Context()
	appendN(t, j, "docs", 20)
	if f, err := j.First(ctx, "docs"); f != 16 || err != nil {
		t.Fatalf("First = %d, %v; want 16", f, err)
	}
	if h, err := j.Head(ctx, "docs"); h != 20 || err != nil {
		t.Fatalf("Head = %d, %v; want 20", h, err)
	}
	tests := []struct {
		after   uint64
		limit   int
		want    []uint64
		expired bool
	}{
		{0, 100, nil, true},
		{1, 100, nil, true},
		{14, 100, nil, true},
		{15, 100, span(16, 20), false},
		{15, 2, span(16, 17), false},
		{17, 100, span(18, 20), false},
		{17, 1, span(18, 18), false},
		{20, 100, nil, false},
		{30, 100, nil, false},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("after=%d,limit=%d", tt.after, tt.limit), func(t *testing.T) {
			got, err := j.Read(ctx, "docs", tt.after, tt.limit)
			if tt.expired {
				if !errors.Is(err, events.ErrCursorExpired) {
					t.Fatalf("err = %v, want ErrCursorExpired", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if tt.want == nil {
				tt.want = []uint64{}
			}
			if d := cmp.Diff(tt.want, seqs(got)); d != "" {
				t.Errorf("(-want +got):\n%s", d)
			}
		})
	}
	t.Run("follow", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(ctx, waitFor)
		defer cancel()
		err := j.Follow(ctx, "docs", 1, func(events.Event) error { return errors.New("called") })
		if !errors.Is(err, events.ErrCursorExpired) {
			t.Fatalf("Follow err = %v, want ErrCursorExpired", err)
		}
	})
}

// TestJournal_AllDropped covers a log whose every event was dropped by
// age: its head stays, and only a cursor at the head is still good.
func TestJournal_AllDropped(t *testing.T) {
	j := open(t, t.TempDir(), journal.Options{MaxAge: time.Second})
	ctx := t.Context()
	appendN(t, j, "docs", 5)
	eventstest.Eventually(t, "retention to drop every event", func() bool {
		f, err := j.First(ctx, "docs")
		return err == nil && f == 0
	})
	if h, err := j.Head(ctx, "docs"); h != 5 || err != nil {
		t.Errorf("Head = %d, %v; want 5", h, err)
	}
	if f, err := j.First(ctx, "docs"); f != 0 || err != nil {
		t.Errorf("First = %d, %v; want 0", f, err)
	}
	for _, after := range []uint64{0, 2, 4} {
		if _, err := j.Read(ctx, "docs", after, 10); !errors.Is(err, events.ErrCursorExpired) {
			t.Errorf("Read after %d: err = %v, want ErrCursorExpired", after, err)
		}
	}
	if evs, err := j.Read(ctx, "docs", 5, 10); len(evs) != 0 || err != nil {
		t.Errorf("Read at head = %v, %v; want empty", evs, err)
	}
	fctx, cancel := context.WithTimeout(ctx, waitFor)
	defer cancel()
	if err := j.Follow(fctx, "docs", 2, func(events.Event) error { return nil }); !errors.Is(err, events.ErrCursorExpired) {
		t.Errorf("Follow after 2: err = %v, want ErrCursorExpired", err)
	}
	ev, err := j.Append(ctx, event("docs", 6))
	if err != nil || ev.Seq != 6 {
		t.Fatalf("Append = %d, %v; want seq 6", ev.Seq, err)
	}
	if evs, err := j.Read(ctx, "docs", 5, 10); err != nil || !cmp.Equal(seqs(evs), []uint64{6}) {
		t.Errorf("Read after 5 = %v, %v; want [6]", seqs(evs), err)
	}
}

// follower runs Follow in the background and collects what it delivers.
type follower struct {
	ch   chan events.Event
	err  chan error
	stop context.CancelFunc
	wg   *conc.WaitGroup
}

func follow(t *testing.T, j *journal.Journal, ws string, after uint64) *follower {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	f := &follower{ch: make(chan events.Event, 1000), err: make(chan error, 1), stop: cancel, wg: conc.NewWaitGroup()}
	f.wg.Go(func() {
		f.err <- j.Follow(ctx, ws, after, func(ev events.Event) error {
			f.ch <- ev
			return nil
		})
	})
	t.Cleanup(func() { cancel(); f.wg.Wait() })
	return f
}

func (f *follower) next(t *testing.T, n int) []events.Event {
	t.Helper()
	var out []events.Event
	deadline := time.After(waitFor)
	for len(out) < n {
		select {
		case ev := <-f.ch:
			out = append(out, ev)
		case err := <-f.err:
			t.Fatalf("Follow returned %v after %d events", err, len(out))
		case <-deadline:
			t.Fatalf("got %d events, want %d", len(out), n)
		}
	}
	return out
}

func TestJournal_Follow(t *testing.T) {
	tests := []struct {
		name   string
		stored int
		after  uint64
	}{
		{"from start", 6, 0},
		{"from middle", 6, 3},
		{"from head", 6, 6},
		{"new workspace", 0, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			j := open(t, t.TempDir(), journal.Options{})
			all := appendN(t, j, "docs", tt.stored)
			f := follow(t, j, "docs", tt.after)
			got := f.next(t, tt.stored-int(tt.after))
			// Live events, appended while Follow runs.
			for i := tt.stored + 1; i <= tt.stored+3; i++ {
				ev, err := j.Append(t.Context(), event("docs", i))
				if err != nil {
					t.Fatal(err)
				}
				all = append(all, ev)
			}
			got = append(got, f.next(t, 3)...)
			if d := cmp.Diff(all[tt.after:], got); d != "" {
				t.Errorf("(-want +got):\n%s", d)
			}
			f.stop()
			select {
			case err := <-f.err:
				if !errors.Is(err, context.Canceled) {
					t.Errorf("Follow returned %v, want context.Canceled", err)
				}
			case <-time.After(waitFor):
				t.Fatal("Follow did not stop on cancel")
			}
			select {
			case ev := <-f.ch:
				t.Errorf("extra event %d", ev.Seq)
			default:
			}
		})
	}
}

func TestJournal_FollowCallbackError(t *testing.T) {
	j := open(t, t.TempDir(), journal.Options{})
	appendN(t, j, "docs", 5)
	stop := errors.New("stop here")
	var got []uint64
	ctx, cancel := context.WithTimeout(t.Context(), waitFor)
	defer cancel()
	err := j.Follow(ctx, "docs", 1, func(ev events.Event) error {
		got = append(got, ev.Seq)
		if ev.Seq == 3 {
			return stop
		}
		return nil
	})
	if err != stop {
		t.Errorf("err = %v, want fn's error as is", err)
	}
	if d := cmp.Diff([]uint64{2, 3}, got); d != "" {
		t.Errorf("(-want +got):\n%s", d)
	}
}

func TestJournal_Close(t *testing.T) {
	j := open(t, t.TempDir(), journal.Options{})
	appendN(t, j, "docs", 1)
	f := follow(t, j, "docs", 0)
	f.next(t, 1)
	if err := j.Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-f.err:
		if !errors.Is(err, events.ErrClosed) {
			t.Errorf("Follow returned %v, want ErrClosed", err)
		}
	case <-time.After(waitFor):
		t.Error("Follow did not return after Close")
	}
	if _, err := j.Append(t.Context(), event("docs", 2)); !errors.Is(err, events.ErrClosed) {
		t.Errorf("Append after Close: %v", err)
	}
	if _, err := j.Read(t.Context(), "docs", 0, 1); !errors.Is(err, events.ErrClosed) {
		t.Errorf("Read after Close: %v", err)
	}
}

func TestJournal_WorkspaceNames(t *testing.T) {
	j := open(t, t.TempDir(), journal.Options{})
	ctx := t.Context()
	names := []string{"my.docs", "my-docs", "my_docs", "My_Docs", "my_2edocs", "_x", "a..b", "9", "docs.v2.1"}
	for n, ws := range names {
		appendN(t, j, ws, n+1)
	}
	for n, ws := range names {
		got, err := j.Read(ctx, ws, 0, 100)
		if err != nil {
			t.Fatalf("%s: %v", ws, err)
		}
		if d := cmp.Diff(span(1, uint64(n+1)), seqs(got)); d != "" {
			t.Errorf("%s (-want +got):\n%s", ws, d)
		}
		for _, ev := range got {
			if ev.Workspace != ws {
				t.Errorf("%s: event of workspace %q", ws, ev.Workspace)
			}
		}
	}
	f := follow(t, j, "docs.v2.1", 8)
	if got := f.next(t, 1); got[0].Seq != 9 || got[0].Workspace != "docs.v2.1" {
		t.Errorf("Follow got %+v", got[0])
	}
}

var streamName = regexp.MustCompile(`^FILECAST_[a-z0-9_-]+$`)

func FuzzStreamName(f *testing.F) {
	for _, s := range [][2]string{{"my.docs", "my_2edocs"}, {"Docs", "docs"}, {"a-b", "a_b"}, {"x", "x"}} {
		f.Add(s[0], s[1])
	}
	f.Fuzz(func(t *testing.T, a, b string) {
		if events.ValidWorkspaceName(a) != nil || events.ValidWorkspaceName(b) != nil {
			return
		}
		sa, sb := journal.StreamName(a), journal.StreamName(b)
		if !streamName.MatchString(sa) || len(sa) > 255 {
			t.Fatalf("StreamName(%q) = %q: not a portable stream name", a, sa)
		}
		subj := journal.Subject(a)
		if tok := strings.Split(subj, "."); len(tok) != 3 || tok[2] != strings.TrimPrefix(sa, "FILECAST_") {
			t.Fatalf("Subject(%q) = %q", a, subj)
		}
		if (a == b) != (sa == sb) || (a == b) != strings.EqualFold(sa, sb) {
			t.Fatalf("StreamName(%q) = %q, StreamName(%q) = %q", a, sa, b, sb)
		}
	})
}

func BenchmarkJournal_Append(b *testing.B) {
	j := open(b, b.TempDir(), journal.Options{})
	ctx := context.Background()
	if err := j.Ensure(ctx, "bench"); err != nil {
		b.Fatal(err)
	}
	ev := event("bench", 0)
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		i++
		ev.ID = fmt.Sprint("e", i)
		if _, err := j.Append(ctx, ev); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkJournal_AppendToFollow measures an append and its delivery to a
// follower; "ns/deliver" is the time from calling Append to fn.
func BenchmarkJournal_AppendToFollow(b *testing.B) {
	j := open(b, b.TempDir(), journal.Options{})
	ctx, cancel := context.WithCancel(context.Background())
	if err := j.Ensure(ctx, "bench"); err != nil {
		b.Fatal(err)
	}
	got := make(chan time.Time, 1)
	wg := conc.NewWaitGroup()
	wg.Go(func() {
		_ = j.Follow(ctx, "bench", 0, func(events.Event) error {
			got <- time.Now()
			return nil
		})
	})
	defer func() { cancel(); wg.Wait() }()
	ev := event("bench", 0)
	var deliver time.Duration
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		i++
		ev.ID = fmt.Sprint("e", i)
		start := time.Now()
		if _, err := j.Append(ctx, ev); err != nil {
			b.Fatal(err)
		}
		select {
		case at := <-got:
			deliver += at.Sub(start)
		case <-time.After(waitFor):
			b.Fatal("event not delivered")
		}
	}
	b.ReportMetric(float64(deliver.Nanoseconds())/float64(b.N), "ns/deliver")
}

func BenchmarkJournal_Read(b *testing.B) {
	j := open(b, b.TempDir(), journal.Options{})
	appendN(b, j, "bench", 1000)
	for _, limit := range []int{1, 100, 1000} {
		b.Run(fmt.Sprint("limit=", limit), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				evs, err := j.Read(context.Background(), "bench", 0, limit)
				if err != nil || len(evs) != limit {
					b.Fatalf("Read = %d events, %v", len(evs), err)
				}
			}
		})
	}
	b.Run("at head", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if evs, err := j.Read(context.Background(), "bench", 1000, 100); err != nil || len(evs) != 0 {
				b.Fatalf("Read = %d events, %v", len(evs), err)
			}
		}
	})
}
