package bench

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"github.com/fsnotify/fsnotify"
)

// ledger records every write a run makes, so that what a session, a
// webhook receiver or the bare watcher reports can be matched to the write
// it reports. Write n goes to file n mod len(names) with the content "w<n>",
// so an event's sha256 names its write. A ledger is safe for concurrent
// use.
type ledger struct {
	root  string
	names []string       // slash-separated paths relative to root
	index map[string]int // path → file

	mu     sync.Mutex
	at     []time.Time // by write: when it was issued (just before the write call)
	byFile [][]int     // write numbers of each file, in order
	bySum  map[string]int
}

func newLedger(root string, names []string) *ledger {
	l := &ledger{root: root, names: names, index: make(map[string]int, len(names)),
		byFile: make([][]int, len(names)), bySum: map[string]int{}}
	for i, n := range names {
		l.index[n] = i
	}
	return l
}

func content(n int) string { return "w" + strconv.Itoa(n) }

func sha256hex(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}

// write makes the next write and returns its number.
func (l *ledger) write() (int, error) {
	l.mu.Lock()
	n := len(l.at)
	f := n % len(l.names)
	c := content(n)
	l.bySum[sha256hex(c)] = n
	l.byFile[f] = append(l.byFile[f], n)
	l.at = append(l.at, time.Now())
	l.mu.Unlock()
	if err := os.WriteFile(filepath.Join(l.root, filepath.FromSlash(l.names[f])), []byte(c), 0o644); err != nil {
		return n, fmt.Errorf("write: %w", err)
	}
	return n, nil
}

// writes returns how many writes were made.
func (l *ledger) writes() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.at)
}

// writeAt writes count times, at rate writes per second (0: as fast as
// possible), or for d when count is 0. It returns when it is done or ctx
// is.
func (l *ledger) writeAt(ctx context.Context, rate, count int, d time.Duration) (time.Duration, error) {
	start := time.Now()
	var interval time.Duration
	if rate > 0 {
		interval = time.Second / time.Duration(rate)
	}
	next := start
	for i := 0; ctx.Err() == nil; i++ {
		if count > 0 && i >= count || count == 0 && time.Since(start) >= d {
			break
		}
		if _, err := l.write(); err != nil {
			return time.Since(start), err
		}
		if interval > 0 {
			next = next.Add(interval)
			if w := time.Until(next); w > 0 {
				time.Sleep(w)
			}
		}
	}
	return time.Since(start), ctx.Err()
}

// heard is what one listener (a session, the bare watcher) has heard of
// the writes. Its methods are called with the ledger's lock held, through
// the ledger's methods.
type heard struct {
	seen    []bool // by write number
	last    []int  // by file: the last write seen, -1 for none
	covered []int  // by file: how many of its writes a notification covered
	lat     []time.Duration
	stamp   []time.Duration // write → the event's own timestamp

	dup, disorder, unknown int
	notes, coalesced       int
}

func (l *ledger) newHeard() *heard {
	h := &heard{last: make([]int, len(l.names)), covered: make([]int, len(l.names))}
	for i := range h.last {
		h.last[i] = -1
	}
	return h
}

// see records that h received, at at, an event for path with content sum
// stamped ts (zero if unknown). An event for content the ledger did not
// write (a file's initial content, an intermediate state) counts as
// unknown; a write seen twice as a duplicate; a write older than one
// already seen for its file as out of order.
func (l *ledger) see(h *heard, path, sum string, ts, at time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	n, ok := l.bySum[sum]
	f, okf := l.index[path]
	if !ok || !okf || n%len(l.names) != f {
		h.unknown++
		return
	}
	if len(h.seen) < len(l.at) {
		h.seen = append(h.seen, make([]bool, len(l.at)-len(h.seen))...)
	}
	if h.seen[n] {
		h.dup++
		return
	}
	h.seen[n] = true
	if n < h.last[f] {
		h.disorder++
	}
	h.last[f] = max(h.last[f], n)
	h.lat = append(h.lat, at.Sub(l.at[n]))
	if !ts.IsZero() {
		h.stamp = append(h.stamp, ts.Sub(l.at[n]))
	}
}

// cover records a notification about path received at at: it covers
// every write of the file issued before at and not covered yet, each with
// its own latency. A notification that covers no write is unknown.
func (l *ledger) cover(h *heard, path string, at time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	f, ok := l.index[path]
	if !ok {
		h.unknown++
		return
	}
	h.notes++
	ws := l.byFile[f]
	i := h.covered[f]
	for ; i < len(ws) && !l.at[ws[i]].After(at); i++ {
		h.lat = append(h.lat, at.Sub(l.at[ws[i]]))
	}
	if i == h.covered[f] {
		h.unknown++
		return
	}
	h.coalesced += i - h.covered[f] - 1
	h.covered[f] = i
}

// tally says how complete what h heard is. A write not seen but followed
// by a seen write of the same file is coalesced (allowed); writes after a
// file's last seen write are lost, and the file incomplete.
type tally struct {
	seen, coalesced, lost, incomplete int
}

func (l *ledger) tally(h *heard) tally {
	l.mu.Lock()
	defer l.mu.Unlock()
	var t tally
	for _, ws := range l.byFile {
		// ws is in write order: everything after the last seen write is
		// lost, everything unseen before it is coalesced.
		lastSeen := -1
		for i, n := range ws {
			if n < len(h.seen) && h.seen[n] {
				t.seen++
				lastSeen = i
			}
		}
		unseenBefore := lastSeen + 1 - countSeen(h, ws[:lastSeen+1])
		t.coalesced += unseenBefore
		if lost := len(ws) - 1 - lastSeen; lost > 0 {
			t.lost += lost
			t.incomplete++
		}
	}
	return t
}

func countSeen(h *heard, ws []int) int {
	n := 0
	for _, w := range ws {
		if w < len(h.seen) && h.seen[w] {
			n++
		}
	}
	return n
}

// complete reports whether h has seen the last write of every file.
func (l *ledger) complete(h *heard) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	for f, ws := range l.byFile {
		if len(ws) > 0 && h.last[f] != ws[len(ws)-1] {
			return false
		}
	}
	return true
}

// notified reports whether h's notifications cover the last write of
// every file.
func (l *ledger) notified(h *heard) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	for f, ws := range l.byFile {
		if h.covered[f] < len(ws) {
			return false
		}
	}
	return true
}

// uncovered counts the files whose last write no notification of h covered.
func (l *ledger) uncovered(h *heard) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for f, ws := range l.byFile {
		if h.covered[f] < len(ws) {
			n++
		}
	}
	return n
}

// latencies returns a copy of h's latencies, and of its timestamp delays.
func (l *ledger) latencies(h *heard) (lat, stamp []time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]time.Duration(nil), h.lat...), append([]time.Duration(nil), h.stamp...)
}

// counts returns h's counters.
func (l *ledger) counts(h *heard) (dup, disorder, unknown, notes, coalesced int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return h.dup, h.disorder, h.unknown, h.notes, h.coalesced
}

// baseline is a bare fsnotify watcher on the ledger's files: the floor
// filecast is measured against. Every Write or Create event covers the
// writes of its file issued before it arrived, as a notification does.
type baseline struct {
	l        *ledger
	w        *fsnotify.Watcher
	h        *heard
	overflow bool
}

// newBaseline watches dirs (absolute paths); run reads its events.
func newBaseline(l *ledger, dirs []string) (*baseline, error) {
	w, err := fsnotify.NewBufferedWatcher(65536)
	if err != nil {
		return nil, fmt.Errorf("start bare fsnotify: %w", err)
	}
	for _, d := range dirs {
		if err := w.Add(d); err != nil {
			w.Close()
			return nil, fmt.Errorf("watch %s with bare fsnotify: %w", d, err)
		}
	}
	return &baseline{l: l, w: w, h: l.newHeard()}, nil
}

// run reads events until ctx is done, then closes the watcher.
func (b *baseline) run(ctx context.Context) {
	defer b.w.Close()
	for {
		select {
		case <-ctx.Done():
			return
		case err, ok := <-b.w.Errors:
			if !ok {
				return
			}
			if err == fsnotify.ErrEventOverflow {
				b.l.mu.Lock()
				b.overflow = true
				b.l.mu.Unlock()
			}
		case ev, ok := <-b.w.Events:
			if !ok {
				return
			}
			at := time.Now()
			if !ev.Has(fsnotify.Write) && !ev.Has(fsnotify.Create) {
				continue
			}
			rel, err := filepath.Rel(b.l.root, ev.Name)
			if err != nil {
				continue
			}
			b.l.cover(b.h, filepath.ToSlash(rel), at)
		}
	}
}

// waitFor polls cond every 10 ms until it holds, ctx is done or timeout
// passes; it reports whether cond held.
func waitFor(ctx context.Context, timeout time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(timeout)
	for {
		if cond() {
			return true
		}
		if ctx.Err() != nil || time.Now().After(deadline) {
			return false
		}
		time.Sleep(10 * time.Millisecond)
	}
}
