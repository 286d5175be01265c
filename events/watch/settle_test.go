package watch_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"testing/synctest"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/filecast/filecast/events"
	"github.com/filecast/filecast/events/watch"
	"github.com/filecast/filecast/events/workspace"
)

// The tests of this file check when the Watcher reports what it sees:
// how long it waits for quiet, for the write after a truncation, for a
// renamed file's new name, before it reads a file again. They run in a
// testing/synctest bubble, on real files, with the notifications told by
// the test (watch.Kernel) instead of fsnotify, whose reader would keep
// the bubble's clock from moving: every event is checked at the exact
// moment it is due. The scripts of testdata/watch check the same rules end
// to end, with fsnotify.

// bubbleSettle is the Settle of the Watchers in a bubble.
const bubbleSettle = 50 * time.Millisecond

// memLog is the log of a Watcher in a bubble, which cannot hold a real
// one (the journal talks to its server over connections the bubble does
// not own). While full is set it refuses events for want of room, and
// says so through Room, as the hub does.
type memLog struct {
	mu   sync.Mutex
	evs  []events.Event
	full atomic.Bool
}

func (l *memLog) Append(ctx context.Context, ev events.Event) (events.Event, error) {
	if l.full.Load() {
		return ev, fmt.Errorf("append: %w: the disk is full", events.ErrInsufficientStorage)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	ev.Seq = uint64(len(l.evs) + 1)
	l.evs = append(l.evs, ev)
	return ev, nil
}

func (l *memLog) Room() error {
	if l.full.Load() {
		return fmt.Errorf("%w: the disk is full", events.ErrInsufficientStorage)
	}
	return nil
}

func (l *memLog) events() []events.Event {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]events.Event(nil), l.evs...)
}

// bubble is a Watcher running in a synctest bubble over a real folder.
type bubble struct {
	t    *testing.T
	dir  string
	out  string // a folder outside the workspace
	k    *watch.Kernel
	w    *watch.Watcher
	log  *memLog
	t0   time.Time     // when the Watcher was ready
	last time.Duration // the latest step, after t0
	// opens counts the opens of each file by the Watcher since t0.
	mu    sync.Mutex
	opens map[string]int
	fail  map[string]int // opens still to fail, for want of descriptors
	// onOpen, when set, is called before the Watcher opens a path (on
	// one of its goroutines).
	onOpen func(path string)
}

// startBubble writes files (indexed silently by the very first start),
// starts a Watcher with opts on them and waits until it is ready. It stops
// when the test ends.
func startBubble(t *testing.T, files map[string]string, opts watch.Options, before func(*watch.Watcher)) *bubble {
	return startBubbleOn(t, files, opts, before, false)
}

// startBubbleOn is startBubble with a kernel that tells what inotify
// tells (a writer's close, whether more is queued) when inotify is set.
func startBubbleOn(t *testing.T, files map[string]string, opts watch.Options, before func(*watch.Watcher), inotify bool) *bubble {
	base := t.TempDir()
	b := &bubble{t: t, dir: filepath.Join(base, "ws"), out: filepath.Join(base, "out"), log: &memLog{}, opens: map[string]int{}, fail: map[string]int{}}
	for _, d := range []string{b.dir, b.out} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for p, c := range files {
		b.disk(p, c)
	}
	ws, err := workspace.Parse("test=" + b.dir)
	if err != nil {
		t.Fatal(err)
	}
	b.dir = ws.Dir
	opts.Workspace = ws
	opts.Settle = bubbleSettle
	w, err := watch.New(opts, b.log)
	if err != nil {
		t.Fatal(err)
	}
	b.k, b.w = w.UseKernel(inotify), w
	if before != nil {
		before(w)
	}
	ready := false
	w.SetReadFault(func(path string) error {
		b.mu.Lock()
		defer b.mu.Unlock()
		if !ready {
			return nil
		}
		b.opens[path]++
		if b.onOpen != nil {
			b.onOpen(path)
		}
		if b.fail[path] > 0 {
			b.fail[path]--
			return syscall.EMFILE
		}
		return nil
	})
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	select {
	case <-w.Ready():
	case err := <-done:
		t.Fatalf("Run returned before Ready: %v", err)
	}
	t.Cleanup(func() {
		cancel()
		if err := <-done; !errors.Is(err, context.Canceled) {
			t.Errorf("Run returned %v, want context.Canceled", err)
		}
	})
	b.mu.Lock()
	ready = true
	b.mu.Unlock()
	b.t0 = time.Now()
	return b
}

func (b *bubble) path(rel string) string { return filepath.Join(b.dir, filepath.FromSlash(rel)) }

// at waits until d after t0: the Watcher has done everything due by then.
func (b *bubble) at(d time.Duration) {
	b.t.Helper()
	if d < b.last {
		b.t.Fatalf("step at %v after one at %v", d, b.last)
	}
	time.Sleep(time.Until(b.t0.Add(d)))
	b.last = d
}

// disk writes a file, making its folder, and tells the Watcher nothing.
func (b *bubble) disk(rel, content string) {
	b.t.Helper()
	p := b.path(rel)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		b.t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		b.t.Fatal(err)
	}
}

// create makes a new file with content, as os.WriteFile does.
func (b *bubble) create(rel, content string) {
	b.t.Helper()
	b.disk(rel, content)
	b.k.Created(b.path(rel))
	if content != "" {
		b.k.Wrote(b.path(rel))
	}
}

// write writes content at the start of a file without truncating it.
func (b *bubble) write(rel, content string) {
	b.t.Helper()
	f, err := os.OpenFile(b.path(rel), os.O_WRONLY, 0)
	if err != nil {
		b.t.Fatal(err)
	}
	_, err = f.WriteString(content)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		b.t.Fatal(err)
	}
	b.k.Wrote(b.path(rel))
}

// appendTo appends to a file.
func (b *bubble) appendTo(rel, content string) {
	b.t.Helper()
	f, err := os.OpenFile(b.path(rel), os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		b.t.Fatal(err)
	}
	_, err = f.WriteString(content)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		b.t.Fatal(err)
	}
	b.k.Wrote(b.path(rel))
}

// truncate empties a file; the Watcher is told when notify.
func (b *bubble) truncate(rel string, notify bool) {
	b.t.Helper()
	if err := os.Truncate(b.path(rel), 0); err != nil {
		b.t.Fatal(err)
	}
	if notify {
		b.k.Wrote(b.path(rel))
	}
}

func (b *bubble) remove(rel string) {
	b.t.Helper()
	if err := os.Remove(b.path(rel)); err != nil {
		b.t.Fatal(err)
	}
	b.k.Removed(b.path(rel))
}

// rename renames inside the workspace, or out of it when to is "".
func (b *bubble) rename(from, to string) {
	b.t.Helper()
	dst := filepath.Join(b.out, filepath.Base(from))
	if to != "" {
		dst = b.path(to)
	}
	if err := os.Rename(b.path(from), dst); err != nil {
		b.t.Fatal(err)
	}
	b.k.Renamed(b.path(from))
	if to != "" {
		b.k.Created(dst)
	}
}

func (b *bubble) failOpens(rel string, n int) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.fail[b.path(rel)] = n
}

func (b *bubble) opened(rel string) int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.opens[b.path(rel)]
}

// timed is an event and when it is reported, after t0.
type timed struct {
	At      time.Duration
	Type    events.Type
	Path    string
	OldPath string
	SHA256  string
}

func (t timed) String() string {
	return fmt.Sprintf("%v %s %s %s %.8s", t.At, t.Type, t.OldPath, t.Path, t.SHA256)
}

// at is the expectation of an event at d after t0: TYPE PATH [= CONTENT],
// or file.moved OLD -> NEW [= CONTENT].
func at(d time.Duration, what string) timed {
	x := timed{At: d}
	what, content, hasContent := strings.Cut(what, " = ")
	f := strings.Fields(what)
	x.Type, x.Path = events.Type(f[0]), f[1]
	if len(f) == 4 {
		x.OldPath, x.Path = f[1], f[3]
	}
	if hasContent || strings.HasSuffix(what, " =") {
		x.SHA256 = sum(content)
	}
	return x
}

// check waits until a second after the last step or expected event, and
// compares what was reported with want, to the nanosecond.
func (b *bubble) check(want ...timed) {
	b.t.Helper()
	end := b.last
	for _, x := range want {
		end = max(end, x.At)
	}
	b.at(end + time.Second)
	synctest.Wait()
	var got []timed
	for _, ev := range b.log.events() {
		x := timed{At: ev.Time.Sub(b.t0), Type: ev.Type, Path: ev.Path, OldPath: ev.OldPath, SHA256: ev.SHA256}
		if ev.Type == events.FileDeleted {
			x.SHA256 = ""
		}
		got = append(got, x)
	}
	for i := range got {
		if i < len(want) && want[i].SHA256 == "" {
			got[i].SHA256 = ""
		}
	}
	if diff := cmp.Diff(want, got); diff != "" {
		b.t.Errorf("events (-want +got):\n%s", diff)
	}
}

func TestWatcher_Settle(t *testing.T) {
	big := string(bytes.Repeat([]byte("0123456789abcdef"), (2<<20)/16))
	tests := []struct {
		name   string
		files  map[string]string
		run    func(b *bubble)
		before func(*watch.Watcher) // called before Run
	}{
		{"a new file written in pieces is one file.created once quiet", nil, func(b *bubble) {
			b.create("a.txt", "hel")
			b.at(30 * time.Millisecond)
			b.appendTo("a.txt", "lo")
			b.check(at(30*time.Millisecond+bubbleSettle, "file.created a.txt = hello"))
		}, nil},
		{"a new file written without pause is reported after MaxSettle", nil, func(b *bubble) {
			b.create("a.txt", "0")
			content := "0"
			for d := 40 * time.Millisecond; d < watch.MaxSettle; d += 40 * time.Millisecond {
				b.at(d)
				b.appendTo("a.txt", "x")
				content += "x"
			}
			b.check(at(watch.MaxSettle, "file.created a.txt = "+content))
		}, nil},
		{"a truncation then the write is one file.updated", map[string]string{"a.txt": "one"}, func(b *bubble) {
			b.truncate("a.txt", true)
			b.at(100 * time.Millisecond)
			b.write("a.txt", "two")
			b.check(at(100*time.Millisecond, "file.updated a.txt = two"))
		}, nil},
		{"a file left empty is reported after TruncQuiet", map[string]string{"a.txt": "one"}, func(b *bubble) {
			b.truncate("a.txt", true)
			b.check(at(watch.TruncQuiet, "file.updated a.txt ="))
		}, nil},
		{"a rescan that finds a file being rewritten waits for the write", map[string]string{"a.txt": "one"}, func(b *bubble) {
			b.truncate("a.txt", false) // its notification lost
			b.k.Lost(errors.New("lost"))
			b.at(100 * time.Millisecond)
			b.write("a.txt", "two")
			b.check(at(100*time.Millisecond, "file.updated a.txt = two"))
		}, nil},
		{"a rescan that finds a file left empty reports it after TruncQuiet", map[string]string{"a.txt": "one"}, func(b *bubble) {
			b.truncate("a.txt", false)
			b.k.Lost(errors.New("lost"))
			b.check(at(watch.TruncQuiet, "file.updated a.txt ="))
		}, nil},
		{"a rescan that finds a file written while it reads it reads it again once quiet", map[string]string{"a.txt": "one"}, func(b *bubble) {
			b.mu.Lock()
			b.onOpen = func(path string) {
				if path == b.path("a.txt") && b.opens[path] == 1 {
					f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
					if err == nil {
						_, err = f.WriteString(" more")
						f.Close()
					}
					if err != nil {
						b.t.Error(err)
					}
				}
			}
			b.mu.Unlock()
			b.k.Lost(errors.New("lost"))
			b.check(at(bubbleSettle, "file.updated a.txt = one more"))
		}, nil},
		{"a folder moved while a file in it is rewritten", map[string]string{"d/x.txt": "x"}, func(b *bubble) {
			if err := os.Rename(b.path("d"), b.path("e")); err != nil {
				b.t.Fatal(err)
			}
			b.truncate("e/x.txt", false) // before the Watcher rescans e
			b.k.Renamed(b.path("d"))
			b.k.Created(b.path("e"))
			b.at(100 * time.Millisecond)
			b.write("e/x.txt", "x2")
			b.check(
				at(0, "file.moved d/x.txt -> e/x.txt = x"),
				at(100*time.Millisecond, "file.updated e/x.txt = x2"),
			)
		}, nil},
		{"a file removed and made again within Settle is one file.updated", map[string]string{"a.txt": "one"}, func(b *bubble) {
			b.remove("a.txt")
			b.at(20 * time.Millisecond)
			b.create("a.txt", "two")
			b.check(at(20*time.Millisecond+bubbleSettle, "file.updated a.txt = two"))
		}, nil},
		{"a file removed and made again with the same content is nothing", map[string]string{"a.txt": "one"}, func(b *bubble) {
			b.remove("a.txt")
			b.at(20 * time.Millisecond)
			b.create("a.txt", "one")
			b.check()
		}, nil},
		{"a removed file is file.deleted once gone for Settle", map[string]string{"a.txt": "one"}, func(b *bubble) {
			b.remove("a.txt")
			b.check(at(bubbleSettle, "file.deleted a.txt"))
		}, nil},
		{"a rename inside is file.moved at once", map[string]string{"a.txt": "one"}, func(b *bubble) {
			b.rename("a.txt", "b.txt")
			b.check(at(0, "file.moved a.txt -> b.txt = one"))
		}, nil},
		{"a file renamed out is file.deleted after PairWindow", map[string]string{"a.txt": "one"}, func(b *bubble) {
			b.rename("a.txt", "")
			b.check(at(watch.PairWindow, "file.deleted a.txt"))
		}, nil},
		{"a folder renamed out is a file.deleted per file after PairWindow", map[string]string{"d/x.txt": "x", "d/y.txt": "y"}, func(b *bubble) {
			b.rename("d", "")
			b.check(at(watch.PairWindow, "file.deleted d/x.txt"), at(watch.PairWindow, "file.deleted d/y.txt"))
		}, nil},
		{"a big file is read once, when quiet", map[string]string{"big.bin": big}, func(b *bubble) {
			for i := range 5 {
				b.at(time.Duration(i) * 10 * time.Millisecond)
				b.write("big.bin", fmt.Sprint(i))
			}
			b.check(at(40*time.Millisecond+watch.BigQuiet, "file.updated big.bin = 4"+big[1:]))
			if n := b.opened("big.bin"); n != 1 {
				b.t.Errorf("big.bin read %d times, want once", n)
			}
		}, nil},
		{"a file that cannot be read is read again after 20, 40 and 80 ms", nil, func(b *bubble) {
			b.failOpens("a.txt", 3)
			b.create("a.txt", "x")
			b.check(at(bubbleSettle+7*watch.RetryFirst, "file.created a.txt = x"))
			if n := b.opened("a.txt"); n != 4 {
				b.t.Errorf("a.txt opened %d times, want 4", n)
			}
		}, nil},
		{"changes held while the log is full are reported at the next poll once it has room", nil, func(b *bubble) {
			b.log.full.Store(true)
			b.create("a.txt", "x")
			b.at(5 * time.Second)
			b.log.full.Store(false)
			b.check(at(3*watch.PollEvery, "file.created a.txt = x"))
		}, nil},
		{name: "a folder that cannot be watched is rescanned every PollEvery", files: map[string]string{"d/old.txt": "old"}, run: func(b *bubble) {
			b.disk("d/a.txt", "a") // no notification: d is not watched
			b.at(watch.PollEvery + 10*time.Millisecond)
			b.disk("d/b.txt", "b")
			b.check(at(watch.PollEvery, "file.created d/a.txt = a"), at(2*watch.PollEvery, "file.created d/b.txt = b"))
			if n := b.w.Counters().Unwatched.Load(); n != 1 {
				b.t.Errorf("%d folders counted unwatched, want 1", n)
			}
		}, before: func(w *watch.Watcher) {
			w.SetAddWatch(func(name string, add func(string) error) error {
				if filepath.Base(name) == "d" {
					return fmt.Errorf("add watch: %w", syscall.ENOSPC)
				}
				return add(name)
			})
		}},
		{"an announced change is taken in silently until ExpectTTL", nil, func(b *bubble) {
			b.w.Expect("a.txt", sum("a"), false)
			b.w.Expect("b.txt", sum("b"), false)
			b.at(watch.ExpectTTL - time.Second)
			b.create("a.txt", "a")
			b.at(watch.ExpectTTL + time.Second)
			b.create("b.txt", "b")
			b.check(at(watch.ExpectTTL+time.Second+bubbleSettle, "file.created b.txt = b"))
		}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				tt.run(startBubble(t, tt.files, watch.Options{}, tt.before))
			})
		})
	}
}

// TestWatcher_SettleInotify checks the waits where the kernel tells what
// inotify tells: when a writer closes a file, and whether more is queued.
// A change is then settled by these signals, Settle being the bound for
// what they cannot settle (a writer that keeps the file open, a hard
// link, a queue that never goes quiet).
func TestWatcher_SettleInotify(t *testing.T) {
	const quiet = watch.DefaultQuiet
	tests := []struct {
		name  string
		files map[string]string
		run   func(b *bubble)
	}{
		{"a new file is file.created once its writer closed it and the queue is quiet", nil, func(b *bubble) {
			b.create("a.txt", "x")
			b.k.Closed(b.path("a.txt"))
			b.check(at(quiet, "file.created a.txt = x"))
		}},
		{"a new file its writer keeps open is file.created after Settle", nil, func(b *bubble) {
			b.create("a.txt", "x")
			b.check(at(bubbleSettle, "file.created a.txt = x"))
		}},
		{"a new file written again after its close waits for the next close", nil, func(b *bubble) {
			b.k.Batch(func() {
				b.create("a.txt", "x")
				b.k.Closed(b.path("a.txt"))
				b.appendTo("a.txt", "y")
			})
			b.at(10 * time.Millisecond)
			b.k.Closed(b.path("a.txt"))
			b.check(at(10*time.Millisecond+quiet, "file.created a.txt = xy"))
		}},
		{"a file removed and made again in one read is one file.updated", map[string]string{"a.txt": "one"}, func(b *bubble) {
			b.k.Batch(func() {
				b.remove("a.txt")
				b.create("a.txt", "two")
				b.k.Closed(b.path("a.txt"))
			})
			b.check(at(quiet, "file.updated a.txt = two"))
		}},
		{"a file removed and made again within Quiet is one file.updated", map[string]string{"a.txt": "one"}, func(b *bubble) {
			b.remove("a.txt")
			b.at(quiet / 2)
			b.create("a.txt", "two")
			b.k.Closed(b.path("a.txt"))
			b.check(at(quiet/2+quiet, "file.updated a.txt = two"))
		}},
		{"a removed file is file.deleted once the queue is quiet", map[string]string{"a.txt": "one"}, func(b *bubble) {
			b.remove("a.txt")
			b.check(at(quiet, "file.deleted a.txt"))
		}},
		{"a file removed and made again after some work, within Settle, while git holds its index, is one file.updated", map[string]string{"a.txt": "one", ".git/index.lock": ""}, func(b *bubble) {
			b.remove("a.txt")
			b.at(bubbleSettle / 2) // git inflates the blob in between; a loaded machine deschedules it
			b.create("a.txt", "two")
			b.k.Closed(b.path("a.txt"))
			b.check(at(bubbleSettle/2+quiet, "file.updated a.txt = two"))
		}},
		{"a file removed, made again and still being written when Settle is up is one file.updated once closed", map[string]string{"a.txt": "one", ".git/index.lock": ""}, func(b *bubble) {
			b.k.Removed(b.path("a.txt"))
			if err := os.Remove(b.path("a.txt")); err != nil {
				b.t.Fatal(err)
			}
			b.at(bubbleSettle / 2)
			b.disk("a.txt", "") // made again; its notifications not read yet
			b.at(bubbleSettle * 3 / 2)
			b.k.Created(b.path("a.txt"))
			b.write("a.txt", "two")
			b.k.Closed(b.path("a.txt"))
			b.check(at(bubbleSettle*3/2+quiet, "file.updated a.txt = two"))
		}},
		{"a removal the queue never goes quiet after is file.deleted after Settle", map[string]string{"a.txt": "one", "b.txt": "b"}, func(b *bubble) {
			b.remove("a.txt")
			for d := quiet / 2; d < 2*bubbleSettle; d += quiet / 2 {
				b.at(d)
				b.k.Closed(b.path("b.txt")) // nothing to settle
			}
			b.at(2*bubbleSettle + time.Second)
			synctest.Wait()
			// Due at Settle; the notifications still coming may be handled
			// first (the loop picks among what is ready), a few Quiets
			// each, but not until they stop.
			evs := b.log.events()
			if len(evs) != 1 || evs[0].Type != events.FileDeleted || evs[0].Path != "a.txt" {
				b.t.Fatalf("want one file.deleted a.txt, got:\n%s", dump(evs))
			}
			if d := evs[0].Time.Sub(b.t0); d < bubbleSettle || d > bubbleSettle*3/2 {
				b.t.Errorf("file.deleted at %v, want from %v to %v", d, bubbleSettle, bubbleSettle*3/2)
			}
		}},
		{"a file renamed out is file.deleted once the queue is quiet", map[string]string{"a.txt": "one"}, func(b *bubble) {
			b.rename("a.txt", "")
			b.check(at(quiet, "file.deleted a.txt"))
		}},
		{"a known file written and closed is file.updated at its close", map[string]string{"a.txt": "one"}, func(b *bubble) {
			b.write("a.txt", "two")
			b.at(10 * time.Millisecond)
			b.k.Closed(b.path("a.txt"))
			b.check(at(10*time.Millisecond, "file.updated a.txt = two"))
		}},
		{"a known file emptied by the next rewrite before its close is read is file.updated once, with the rewrite", map[string]string{"a.txt": "one"}, func(b *bubble) {
			b.write("a.txt", "two")
			b.truncate("a.txt", false) // the next writer's O_TRUNC, before the close is read
			b.k.Closed(b.path("a.txt"))
			b.k.Wrote(b.path("a.txt"))
			b.at(10 * time.Millisecond)
			b.write("a.txt", "three")
			b.k.Closed(b.path("a.txt"))
			b.check(at(10*time.Millisecond, "file.updated a.txt = three"))
		}},
		{"a known file emptied and closed is file.updated after TruncQuiet", map[string]string{"a.txt": "one"}, func(b *bubble) {
			b.truncate("a.txt", true)
			b.k.Closed(b.path("a.txt"))
			b.check(at(watch.TruncQuiet, "file.updated a.txt ="))
		}},
		{"a known file its writer keeps open is file.updated after Settle", map[string]string{"a.txt": "one"}, func(b *bubble) {
			b.write("a.txt", "two")
			b.check(at(bubbleSettle, "file.updated a.txt = two"))
		}},
		{"a file moved in from outside is file.created at once", nil, func(b *bubble) {
			p := filepath.Join(b.out, "a.txt")
			if err := os.WriteFile(p, []byte("x"), 0o644); err != nil {
				b.t.Fatal(err)
			}
			if err := os.Rename(p, b.path("a.txt")); err != nil {
				b.t.Fatal(err)
			}
			b.k.Moved(b.path("a.txt"))
			b.check(at(0, "file.created a.txt = x"))
		}},
		{"a hard link is file.created after Settle", map[string]string{"a.txt": "one"}, func(b *bubble) {
			if err := os.Link(b.path("a.txt"), b.path("b.txt")); err != nil {
				b.t.Fatal(err)
			}
			b.k.Created(b.path("b.txt"))
			b.check(at(bubbleSettle, "file.created b.txt = one"))
		}},
		{"a folder's own notification of its move, read once it is watched under its new name, is nothing more", map[string]string{"d/x.txt": "x"}, func(b *bubble) {
			if err := os.Rename(b.path("d"), b.path("e")); err != nil {
				b.t.Fatal(err)
			}
			b.k.Batch(func() {
				b.k.Renamed(b.path("d"))
				b.k.Moved(b.path("e"))
			})
			b.at(time.Millisecond)
			b.k.Renamed(b.path("e")) // IN_MOVE_SELF, by the folder's new name
			b.check(at(0, "file.moved d/x.txt -> e/x.txt = x"))
		}},
		{"an atomic save in one read is one file.updated at once", map[string]string{"a.txt": "one"}, func(b *bubble) {
			b.k.Batch(func() {
				b.create("a.new", "two")
				b.k.Closed(b.path("a.new"))
				if err := os.Rename(b.path("a.new"), b.path("a.txt")); err != nil {
					b.t.Fatal(err)
				}
				b.k.Renamed(b.path("a.new"))
				b.k.Moved(b.path("a.txt"))
			})
			b.check(at(0, "file.updated a.txt = two"))
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				tt.run(startBubbleOn(t, tt.files, watch.Options{}, nil, true))
			})
		})
	}
}

// TestWatcher_SettleRemoval checks when a removal is reported where the
// kernel tells when its queue is empty: once it is, unless a replacement
// may be under way — a version-control operation holds the repository
// (its lock file is there), or the workspace was just seen replacing a
// file by removal and creation — when it waits out Settle.
func TestWatcher_SettleRemoval(t *testing.T) {
	const quiet = watch.DefaultQuiet
	tests := []struct {
		name  string
		files map[string]string
		run   func(b *bubble)
	}{
		{"a removal while git holds its index is file.deleted after Settle", map[string]string{"a.txt": "one", ".git/index.lock": ""}, func(b *bubble) {
			b.remove("a.txt")
			b.check(at(bubbleSettle, "file.deleted a.txt"))
		}},
		{"a removal once git let go of its index is file.deleted once the queue is quiet", map[string]string{"a.txt": "one", "b.txt": "b", ".git/index.lock": ""}, func(b *bubble) {
			b.remove("a.txt")
			b.at(10 * time.Millisecond)
			if err := os.Remove(b.path(".git/index.lock")); err != nil { // nothing is told of it
				b.t.Fatal(err)
			}
			b.remove("b.txt")
			b.check(at(10*time.Millisecond+quiet, "file.deleted b.txt"), at(bubbleSettle, "file.deleted a.txt"))
		}},
		{"a removal while Mercurial holds its working folder is file.deleted after Settle", map[string]string{"a.txt": "one"}, func(b *bubble) {
			if err := os.Mkdir(b.path(".hg"), 0o755); err != nil {
				b.t.Fatal(err)
			}
			if err := os.Symlink("host:1234", b.path(".hg/wlock")); err != nil { // as Mercurial makes it
				b.t.Fatal(err)
			}
			b.remove("a.txt")
			b.check(at(bubbleSettle, "file.deleted a.txt"))
		}},
		{"a lock seen is taken as there for LockFresh", map[string]string{"a.txt": "one", "b.txt": "b", "c.txt": "c", ".git/index.lock": ""}, func(b *bubble) {
			b.remove("a.txt")
			b.at(quiet + watch.LockFresh/2)
			if err := os.Remove(b.path(".git/index.lock")); err != nil {
				b.t.Fatal(err)
			}
			b.remove("b.txt")
			b.at(quiet + watch.LockFresh)
			b.remove("c.txt")
			b.check(
				at(quiet+watch.LockFresh+quiet, "file.deleted c.txt"),
				at(bubbleSettle, "file.deleted a.txt"),
				at(quiet+watch.LockFresh/2+bubbleSettle, "file.deleted b.txt"),
			)
		}},
		{"a removal in a nested repository waits for its lock, one outside it does not", map[string]string{"sub/d/a.txt": "one", "b.txt": "b", "sub/.git/index.lock": ""}, func(b *bubble) {
			b.remove("sub/d/a.txt")
			b.remove("b.txt")
			b.check(at(quiet, "file.deleted b.txt"), at(bubbleSettle, "file.deleted sub/d/a.txt"))
		}},
		{"a removal in a repository whose .git is a file (a linked worktree) is file.deleted after Settle", map[string]string{"wt/a.txt": "one", "wt/.git": "gitdir: /elsewhere", "b.txt": "b"}, func(b *bubble) {
			b.remove("wt/a.txt")
			b.remove("b.txt")
			b.check(at(quiet, "file.deleted b.txt"), at(bubbleSettle, "file.deleted wt/a.txt"))
		}},
		{"a removal while the repository above the workspace folder is locked is file.deleted after Settle", map[string]string{"a.txt": "one"}, func(b *bubble) {
			above := filepath.Join(filepath.Dir(b.dir), ".git")
			if err := os.Mkdir(above, 0o755); err != nil {
				b.t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(above, "index.lock"), nil, 0o644); err != nil {
				b.t.Fatal(err)
			}
			b.remove("a.txt")
			b.check(at(bubbleSettle, "file.deleted a.txt"))
		}},
		{"a repository made in a folder after a removal there was reported holds the next one", map[string]string{"d/a.txt": "a", "d/b.txt": "b"}, func(b *bubble) {
			b.remove("d/a.txt")
			b.at(10 * time.Millisecond)
			b.disk("d/.git/index.lock", "")
			b.k.Created(b.path("d/.git"))
			b.remove("d/b.txt")
			b.check(at(quiet, "file.deleted d/a.txt"), at(10*time.Millisecond+bubbleSettle, "file.deleted d/b.txt"))
		}},
		{"a removal whose path is back when the queue is quiet, its creation still to be read, is one file.updated", map[string]string{"a.txt": "one"}, func(b *bubble) {
			b.remove("a.txt")
			b.disk("a.txt", "two") // its notifications not read yet
			b.at(10 * time.Millisecond)
			b.k.Created(b.path("a.txt"))
			b.k.Wrote(b.path("a.txt"))
			b.k.Closed(b.path("a.txt"))
			b.check(at(10*time.Millisecond+quiet, "file.updated a.txt = two"))
		}},
		{"a file removed, reported, and made again within Settle holds removals for ReplaceHold", map[string]string{"a.txt": "one", "b.txt": "b", "c.txt": "c", "d.txt": "d"}, func(b *bubble) {
			b.remove("a.txt")
			b.at(10 * time.Millisecond)
			b.create("a.txt", "two")
			b.k.Closed(b.path("a.txt"))
			b.at(20 * time.Millisecond)
			b.remove("b.txt")
			held := 10*time.Millisecond + watch.ReplaceHold - time.Millisecond
			b.at(held)
			b.remove("c.txt")
			b.at(10*time.Millisecond + watch.ReplaceHold)
			b.remove("d.txt")
			b.check(
				at(quiet, "file.deleted a.txt"),
				at(10*time.Millisecond+quiet, "file.created a.txt = two"),
				at(20*time.Millisecond+bubbleSettle, "file.deleted b.txt"),
				at(10*time.Millisecond+watch.ReplaceHold+quiet, "file.deleted d.txt"),
				at(held+bubbleSettle, "file.deleted c.txt"),
			)
		}},
		{"a file made again after Settle is new, and holds nothing", map[string]string{"a.txt": "one", "b.txt": "b"}, func(b *bubble) {
			b.remove("a.txt")
			b.at(bubbleSettle + 10*time.Millisecond)
			b.create("a.txt", "two")
			b.k.Closed(b.path("a.txt"))
			b.at(bubbleSettle + 20*time.Millisecond)
			b.remove("b.txt")
			b.check(
				at(quiet, "file.deleted a.txt"),
				at(bubbleSettle+10*time.Millisecond+quiet, "file.created a.txt = two"),
				at(bubbleSettle+20*time.Millisecond+quiet, "file.deleted b.txt"),
			)
		}},
		{"a wait for quiet cut short with nothing on its way is taken up again after Quiet", map[string]string{"a.txt": "one"}, func(b *bubble) {
			b.k.CutShort(1)
			b.remove("a.txt")
			b.at(10 * time.Millisecond)
			b.k.CutShort(1)
			b.create("b.txt", "b")
			b.k.Closed(b.path("b.txt"))
			b.check(at(quiet, "file.deleted a.txt"), at(10*time.Millisecond+quiet, "file.created b.txt = b"))
		}},
		{"a wait for quiet cut short by notifications not read yet settles nothing before they are read", map[string]string{"a.txt": "one"}, func(b *bubble) {
			if err := os.Rename(b.path("a.txt"), b.path("b.txt")); err != nil {
				b.t.Fatal(err)
			}
			b.k.CutShort(1)
			b.k.Renamed(b.path("a.txt"))
			b.k.Unread(func() { b.k.Moved(b.path("b.txt")) })
			b.at(10 * time.Millisecond)
			b.k.Read()
			b.check(at(10*time.Millisecond, "file.moved a.txt -> b.txt = one"))
		}},
		{"a removal and a rename away in one read are both settled once the queue is quiet", map[string]string{"a.txt": "one", "b.txt": "b"}, func(b *bubble) {
			b.k.Batch(func() {
				b.remove("a.txt")
				b.rename("b.txt", "")
			})
			b.check(at(quiet, "file.deleted a.txt"), at(quiet, "file.deleted b.txt"))
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				tt.run(startBubbleOn(t, tt.files, watch.Options{}, nil, true))
			})
		})
	}
}
