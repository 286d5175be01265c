package watch_test

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/filecast/filecast/events"
	"github.com/filecast/filecast/events/watch"
)

// TestWatcher_Scripts runs the scenarios in testdata/watch/*.txt. Each is a
// list of lines:
//
//	# a comment
//	start                 start a Watcher (same index file every time) and wait until it is ready
//	stop                  stop it; Run must return context.Canceled
//	write PATH [TEXT…]    write in place, as os.WriteFile does (TEXT is the rest of the line)
//	append PATH TEXT…     append to a file
//	touch PATH            set the mtime to a second later, content unchanged
//	mkdir PATH            os.MkdirAll
//	mv OLD NEW            os.Rename
//	rm PATH | rm -r PATH  os.Remove | os.RemoveAll
//	ln -s TARGET PATH     os.Symlink (TARGET as written)
//	expect TYPE PATH [= TEXT]          an event, with the content's sha256 when TEXT is given
//	expect file.moved OLD -> NEW [= TEXT]
//
// Paths are relative to the workspace; $OUT/… names a folder outside it on
// the same file system. Operations run back to back, as a fast script
// would. A run of expect lines is awaited and compared with exactly as
// many next events, sorted by path (events for one path keep their
// order): a missing event times out, an unexpected one shows up in its
// place. At the end, a marker file proves nothing more was emitted, and
// the index must match the folder, with each file's version the seq of its
// last event. Every script runs twice on the journal: with the persisted
// index alone, and with the journal as Options.Log too; and each of those
// again with a poll watcher, where the runner runs one round of polling
// before it awaits a run of expect lines (and the interval is too long for
// any other round to run): the poll watcher sees only the state the
// operations left, and must report it as notifications did; and once more
// reading fsnotify instead of inotify, as elsewhere than on Linux.
//
// A write truncates (or creates) the file, then writes: a writer that
// pauses in between — a loaded machine deschedules it — for Settle (a new
// file) or TruncQuiet (a known one) or longer leaves the file empty long
// enough for the Watcher to report that, then the content. The runner measures the pause, and only after such a
// pause takes the report of the empty file (and, when the write left the
// content as it was, the report of its return) as the one change the
// script expects; TestWatcher_Settle checks the waits themselves.
func TestWatcher_Scripts(t *testing.T) {
	scripts, err := filepath.Glob(filepath.Join("..", "..", "testdata", "watch", "*.txt"))
	if err != nil {
		t.Fatal(err)
	}
	if len(scripts) == 0 {
		t.Fatal("no scripts in testdata/watch")
	}
	for _, file := range scripts {
		name := strings.TrimSuffix(filepath.Base(file), ".txt")
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			t.Run("index", func(t *testing.T) { t.Parallel(); runScript(t, file, false, watch.Notify) })
			t.Run("log", func(t *testing.T) { t.Parallel(); runScript(t, file, true, watch.Notify) })
			t.Run("poll-index", func(t *testing.T) { t.Parallel(); runScript(t, file, false, watch.Poll) })
			t.Run("poll-log", func(t *testing.T) { t.Parallel(); runScript(t, file, true, watch.Poll) })
			t.Run("fsnotify", func(t *testing.T) {
				t.Parallel()
				runScript(t, file, false, watch.Notify, (*watch.Watcher).UseFsnotify)
			})
		})
	}
}

type expectation struct {
	line int
	ev   short // SHA256 and Size are set when the content is to be compared
}

// runScript runs one script; before, when given, is called with each
// Watcher before it runs (to read fsnotify instead of inotify, say).
func runScript(t *testing.T, file string, withLog bool, kind watch.Kind, before ...func(*watch.Watcher)) {
	f, err := os.Open(file)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	e := newEnv(t)
	e.before = func(w *watch.Watcher) {
		for _, f := range before {
			f(w)
		}
	}
	var opts watch.Options
	if withLog {
		opts.Log = e.log
	}
	const settle = 50 * time.Millisecond
	opts.Settle = settle
	opts.Quiet = settle // robust against a loaded machine; TestWatcher_SettleInotify and TestInotify_* check the default
	opts.Watch = kind
	if kind == watch.Poll {
		opts.PollInterval = time.Hour // rounds only when the runner asks
	}
	seen := 0 // events already compared
	var want []expectation
	paused := map[string]string{} // path → sha256 before a write that paused (see above); "" when new
	check := func() {
		t.Helper()
		if len(want) == 0 {
			return
		}
		if kind == watch.Poll && e.cur != nil {
			if err := e.cur.w.PollRound(context.Background()); err != nil {
				t.Fatalf("poll round before line %d: %v", want[0].line, err)
			}
		}
		var kept []events.Event
		used := 0
		evs := e.waitEvents(fmt.Sprintf("%d events (line %d)", len(want), want[0].line), func(evs []events.Event) bool {
			kept, used = expected(evs[seen:], len(want), want, paused)
			return len(kept) == len(want)
		})
		if skipped := evs[seen : seen+used]; used > len(kept) {
			t.Logf("before line %d: a writer paused, the Watcher saw the file empty:\n%s", want[0].line, dump(skipped))
		}
		got := make([]short, 0, len(want))
		exp := make([]short, 0, len(want))
		for i, ev := range kept {
			got = append(got, brief(ev))
			exp = append(exp, want[i].ev)
		}
		byPath := func(s []short) { sort.SliceStable(s, func(i, j int) bool { return s[i].Path < s[j].Path }) }
		byPath(got)
		byPath(exp)
		// Content is compared only where the script gave it.
		for i := range got {
			if i < len(exp) && exp[i].SHA256 == "" {
				got[i].SHA256, got[i].Size = "", 0
			}
		}
		if diff := cmp.Diff(exp, got); diff != "" {
			t.Fatalf("events before line %d differ (-want +got):\n%s\nall events:\n%s", want[len(want)-1].line+1, diff, dump(evs))
		}
		seen += used
		want = want[:0]
		clear(paused)
	}
	sc := bufio.NewScanner(f)
	line := 0
	for sc.Scan() {
		line++
		text := strings.TrimSpace(sc.Text())
		if text == "" || strings.HasPrefix(text, "#") {
			continue
		}
		args := strings.Fields(text)
		if args[0] == "expect" {
			want = append(want, parseExpect(t, line, args[1:]))
			continue
		}
		check()
		rest := func(i int) string { return strings.Join(args[i:], " ") }
		need := func(n int) {
			if len(args) < n {
				t.Fatalf("line %d: %q needs %d arguments", line, args[0], n-1)
			}
		}
		switch args[0] {
		case "start":
			e.start(opts)
		case "stop":
			e.stop()
		case "write":
			need(2)
			// A new file may be reported once quiet for Settle; a known one
			// (the scripts await each change before the next, so a file
			// there before is known) left empty by a truncation, after
			// TruncQuiet.
			before, err := os.ReadFile(e.path(args[1]))
			quiet := settle
			if err == nil && len(before) > 0 {
				quiet = watch.TruncQuiet
			}
			if pause := e.writeInPlace(args[1], rest(2)); pause >= quiet && rest(2) != "" {
				if err == nil {
					paused[args[1]] = sum(string(before))
				} else {
					paused[args[1]] = ""
				}
			}
		case "append":
			need(3)
			a, err := os.OpenFile(e.path(args[1]), os.O_APPEND|os.O_WRONLY, 0)
			if err == nil {
				_, err = a.WriteString(rest(2))
				if cerr := a.Close(); err == nil {
					err = cerr
				}
			}
			if err != nil {
				t.Fatalf("line %d: %v", line, err)
			}
		case "touch":
			need(2)
			later := time.Now().Add(time.Second)
			if err := os.Chtimes(e.path(args[1]), later, later); err != nil {
				t.Fatalf("line %d: %v", line, err)
			}
		case "mkdir":
			need(2)
			if err := os.MkdirAll(e.path(args[1]), 0o755); err != nil {
				t.Fatalf("line %d: %v", line, err)
			}
		case "mv":
			need(3)
			if err := os.Rename(e.path(args[1]), e.path(args[2])); err != nil {
				t.Fatalf("line %d: %v", line, err)
			}
		case "rm":
			need(2)
			var err error
			if args[1] == "-r" {
				need(3)
				err = os.RemoveAll(e.path(args[2]))
			} else {
				err = os.Remove(e.path(args[1]))
			}
			if err != nil {
				t.Fatalf("line %d: %v", line, err)
			}
		case "ln":
			need(4)
			if args[1] != "-s" {
				t.Fatalf("line %d: only ln -s is supported", line)
			}
			target := args[2]
			if strings.HasPrefix(target, "$OUT") {
				target = e.path(target)
			}
			if err := os.Symlink(target, e.path(args[3])); err != nil {
				t.Fatalf("line %d: %v", line, err)
			}
		default:
			t.Fatalf("line %d: unknown operation %q", line, args[0])
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	check()
	if e.cur != nil {
		e.write("end.marker", "end")
		want = append(want, expectation{line: line + 1, ev: short{Type: events.FileCreated, Path: "end.marker"}})
		check()
		e.checkIndex()
	}
}

// expected takes from evs the next n events the script expects (want),
// and returns them and how many of evs it went through. It passes over,
// for a path whose write paused (paused), the report of the file empty —
// unless the script expects it empty — and after it the report of the
// file as it was before the write; the report that follows the first of
// a new file is then the file.created.
func expected(evs []events.Event, n int, want []expectation, paused map[string]string) (kept []events.Event, used int) {
	wantsEmpty := map[string]bool{}
	for _, x := range want {
		if x.ev.SHA256 == sum("") {
			wantsEmpty[x.ev.Path] = true
		}
	}
	emptied := map[string]events.Type{} // paths reported empty, and how
	for i, ev := range evs {
		if len(kept) == n {
			return kept, i
		}
		before, ok := paused[ev.Path]
		switch typ, was := emptied[ev.Path]; {
		case !ok || ev.Type == events.FileDeleted || ev.Type == events.FileMoved:
		case !was && ev.SHA256 == sum("") && !wantsEmpty[ev.Path]:
			emptied[ev.Path] = ev.Type
			continue
		case was && before != "" && ev.SHA256 == before:
			delete(emptied, ev.Path)
			continue // back as it was: no change
		case was && typ == events.FileCreated && ev.Type == events.FileUpdated:
			ev.Type = events.FileCreated
			delete(emptied, ev.Path)
		}
		kept = append(kept, ev)
	}
	return kept, len(evs)
}

func parseExpect(t *testing.T, line int, args []string) expectation {
	t.Helper()
	x := expectation{line: line}
	if i := indexOf(args, "="); i >= 0 {
		content := strings.Join(args[i+1:], " ")
		x.ev.SHA256, x.ev.Size = sum(content), int64(len(content))
		args = args[:i]
	}
	if len(args) < 2 {
		t.Fatalf("line %d: expect TYPE PATH", line)
	}
	x.ev.Type = events.Type(args[0])
	if !x.ev.Type.IsFile() {
		t.Fatalf("line %d: unknown event type %q", line, args[0])
	}
	switch {
	case x.ev.Type == events.FileMoved && len(args) == 4 && args[2] == "->":
		x.ev.OldPath, x.ev.Path = args[1], args[3]
	case x.ev.Type != events.FileMoved && len(args) == 2:
		x.ev.Path = args[1]
	default:
		t.Fatalf("line %d: expect TYPE PATH, or expect file.moved OLD -> NEW", line)
	}
	return x
}

func indexOf(s []string, v string) int {
	for i, x := range s {
		if x == v {
			return i
		}
	}
	return -1
}

// TestExpected checks what the script runner passes over: only the
// report of a file seen empty while a writer paused, and then its return.
func TestExpected(t *testing.T) {
	e := func(typ events.Type, path, content string) events.Event {
		return events.Event{Type: typ, Path: path, SHA256: sum(content), Size: int64(len(content))}
	}
	x := func(typ events.Type, path, content string) expectation {
		return expectation{ev: short{Type: typ, Path: path, SHA256: sum(content), Size: int64(len(content))}}
	}
	const c, u = events.FileCreated, events.FileUpdated
	tests := []struct {
		name   string
		evs    []events.Event
		want   []expectation
		paused map[string]string
		kept   []events.Event
		used   int
	}{
		{"no pause: the empty file counts",
			[]events.Event{e(u, "a", ""), e(u, "a", "two")}, []expectation{x(u, "a", "two")}, nil,
			[]events.Event{e(u, "a", "")}, 1},
		{"a known file seen empty",
			[]events.Event{e(u, "a", ""), e(u, "a", "two")}, []expectation{x(u, "a", "two")}, map[string]string{"a": sum("one")},
			[]events.Event{e(u, "a", "two")}, 2},
		{"a new file seen empty",
			[]events.Event{e(c, "a", ""), e(u, "a", "x")}, []expectation{x(c, "a", "x")}, map[string]string{"a": ""},
			[]events.Event{e(c, "a", "x")}, 2},
		{"a file seen empty, then as it was",
			[]events.Event{e(u, "a", ""), e(u, "a", "same"), e(c, "m", "m")}, []expectation{x(c, "m", "m")}, map[string]string{"a": sum("same")},
			[]events.Event{e(c, "m", "m")}, 3},
		{"an empty file expected",
			[]events.Event{e(c, "a", "")}, []expectation{x(c, "a", "")}, map[string]string{"a": ""},
			[]events.Event{e(c, "a", "")}, 1},
		{"another path's empty file counts",
			[]events.Event{e(u, "b", ""), e(u, "a", "two")}, []expectation{x(u, "a", "two")}, map[string]string{"a": sum("one")},
			[]events.Event{e(u, "b", "")}, 1},
	}
	for _, tt := range tests {
		kept, used := expected(tt.evs, len(tt.want), tt.want, tt.paused)
		if diff := cmp.Diff(tt.kept, kept); diff != "" || used != tt.used {
			t.Errorf("%s: used %d, want %d; kept (-want +got):\n%s", tt.name, used, tt.used, diff)
		}
	}
}
