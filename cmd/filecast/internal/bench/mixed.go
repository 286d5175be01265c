package bench

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"
)

// opKind is a kind of change the mixed workload makes.
type opKind uint8

const (
	kindCreate opKind = iota // a new file, written whole (os.WriteFile)
	kindModify               // an existing file rewritten (os.WriteFile)
	kindDelete               // a file removed
	kindMove                 // a file renamed, inside its folder or to the other one
	nKinds
)

var kindNames = [nKinds]string{"create", "modify", "delete", "move"}

// kindEvent is the event type that reports each kind.
var kindEvent = [nKinds]string{"file.created", "file.updated", "file.deleted", "file.moved"}

// mixOrder is the mixed workload's pattern, repeated: of every 11
// changes 4 are creates, 4 modifies, 2 deletes and 1 a move (40 %, 40 %,
// 20 %, plus moves).
var mixOrder = [...]opKind{kindCreate, kindModify, kindCreate, kindDelete, kindModify, kindMove,
	kindCreate, kindModify, kindDelete, kindCreate, kindModify}

// mixFolders are the folders the mixed workload's files live in; a move
// goes to the other folder every second time.
var mixFolders = [...]string{"d0", "d1"}

// mixSize is the size of every file the mixed workload writes.
const mixSize = 128

// mixOp is one change the mixed workload made.
type mixOp struct {
	kind opKind
	path string    // the path changed: the new file, the file rewritten or removed, a move's new name
	old  string    // a move's old name
	sum  string    // sha256 of the content written (create, modify)
	at   time.Time // when it was issued, just before its first system call
	step int       // the ramp step it belongs to
}

// mixLedger records the changes of a mixed run so that what a receiver
// reports — an event with its type, path and content, or only a path —
// can be matched to the change it reports. A path is never used twice: a
// new file and a move's target always get a fresh name, so a path has one
// create (or move to it), then modifies, then one delete or move away.
// Methods are safe for concurrent use, except the writer's (do, writeAt),
// which one goroutine calls.
type mixLedger struct {
	root string

	mu     sync.Mutex
	ops    []mixOp
	bySum  map[string]int   // creates and modifies, by content
	byPath map[string][]int // ops by the path they changed (a move by its new name), in order
	byOld  map[string]int   // moves, by their old name
	step   int

	// Owned by the writer.
	pool  []string // live files, least recently changed first
	names int      // fresh names made
	moves int
	buf   []byte
}

// newMixLedger makes n files of mixSize bytes under root, spread over
// mixFolders, and returns a ledger whose pool holds them.
func newMixLedger(root string, n int) (*mixLedger, error) {
	l := &mixLedger{root: root, bySum: map[string]int{}, byPath: map[string][]int{}, byOld: map[string]int{}, buf: make([]byte, mixSize)}
	for _, d := range mixFolders {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			return nil, fmt.Errorf("make workspace: %w", err)
		}
	}
	for i := range n {
		p := l.fresh(i)
		if err := os.WriteFile(filepath.Join(root, filepath.FromSlash(p)), l.body(-1-i), 0o644); err != nil {
			return nil, fmt.Errorf("make workspace: %w", err)
		}
		l.pool = append(l.pool, p)
	}
	return l, nil
}

// fresh returns a new name in the folder i mod len(mixFolders).
func (l *mixLedger) fresh(i int) string {
	l.names++
	return fmt.Sprintf("%s/n%07d.txt", mixFolders[i%len(mixFolders)], l.names)
}

// body returns the content of change n: "w<n>" padded to mixSize bytes
// (the initial files have negative n).
func (l *mixLedger) body(n int) []byte {
	b := l.buf[:0]
	b = fmt.Appendf(b, "w%d ", n)
	for len(b) < mixSize-1 {
		b = append(b, '.')
	}
	return append(b, '\n')
}

// setStep tags the changes made from now on.
func (l *mixLedger) setStep(s int) {
	l.mu.Lock()
	l.step = s
	l.mu.Unlock()
}

// do makes change number n of the workload.
func (l *mixLedger) do(n int) error {
	k := mixOrder[n%len(mixOrder)]
	if len(l.pool) < 2 && k != kindCreate {
		k = kindModify
		if len(l.pool) == 0 {
			k = kindCreate
		}
	}
	op := mixOp{kind: k}
	var body []byte
	switch k {
	case kindCreate:
		op.path = l.fresh(n)
	case kindModify, kindDelete:
		op.path = l.pool[0]
		l.pool = l.pool[1:]
	case kindMove:
		op.old = l.pool[0]
		l.pool = l.pool[1:]
		l.moves++
		dir := op.old[:strings.IndexByte(op.old, '/')]
		if l.moves%2 == 0 {
			// To the other folder.
			for _, d := range mixFolders {
				if d != dir {
					dir = d
					break
				}
			}
		}
		l.names++
		op.path = fmt.Sprintf("%s/n%07d.txt", dir, l.names)
	}
	if k == kindCreate || k == kindModify {
		body = l.body(n)
		op.sum = sha256hex(string(body))
	}
	abs := filepath.Join(l.root, filepath.FromSlash(op.path))
	l.mu.Lock()
	i := len(l.ops)
	op.step = l.step
	op.at = time.Now()
	l.ops = append(l.ops, op)
	if op.sum != "" {
		l.bySum[op.sum] = i
	}
	l.byPath[op.path] = append(l.byPath[op.path], i)
	if k == kindMove {
		l.byOld[op.old] = i
	}
	l.mu.Unlock()
	var err error
	switch k {
	case kindCreate, kindModify:
		err = os.WriteFile(abs, body, 0o644)
	case kindDelete:
		err = os.Remove(abs)
	case kindMove:
		err = os.Rename(filepath.Join(l.root, filepath.FromSlash(op.old)), abs)
	}
	if err != nil {
		return fmt.Errorf("%s %s: %w", kindNames[k], op.path, err)
	}
	if k != kindDelete {
		l.pool = append(l.pool, op.path)
	}
	return nil
}

// writeAt makes changes at rate per second for d (the first change is
// number first) and returns how many it made and how long that took.
// Pacing sleeps only when ahead, so at rates beyond the timer's
// resolution the changes come in short bursts at the average rate.
func (l *mixLedger) writeAt(ctx context.Context, first, rate int, d time.Duration) (int, time.Duration, error) {
	start := time.Now()
	interval := time.Second / time.Duration(max(rate, 1))
	next := start
	n := 0
	for ctx.Err() == nil && time.Since(start) < d {
		if err := l.do(first + n); err != nil {
			return n, time.Since(start), err
		}
		n++
		next = next.Add(interval)
		if w := time.Until(next); w > 0 {
			time.Sleep(w)
		}
	}
	return n, time.Since(start), ctx.Err()
}

// mixHeard is what one receiver has heard of the changes.
type mixHeard struct {
	name    string
	seen    []bool         // by change
	covered map[string]int // by path: how many of its changes a path report covered
	lat     [nKinds][]time.Duration
	latAt   [nKinds][]int // the change of each latency
	dup     int           // events for a change already reported
	wrong   int           // events of another type than the change's, or for no change made
	extra   int           // path reports covering no new change (a move's old name, a second notification)
}

func (l *mixLedger) newHeard(name string) *mixHeard {
	return &mixHeard{name: name, covered: map[string]int{}}
}

// seenLocked marks change i seen at at.
func (l *mixLedger) seenLocked(h *mixHeard, i int, at time.Time) {
	if len(h.seen) < len(l.ops) {
		h.seen = append(h.seen, make([]bool, len(l.ops)-len(h.seen))...)
	}
	if h.seen[i] {
		h.dup++
		return
	}
	h.seen[i] = true
	k := l.ops[i].kind
	h.lat[k] = append(h.lat[k], at.Sub(l.ops[i].at))
	h.latAt[k] = append(h.latAt[k], i)
}

// see records an event (list_changes) received at at.
func (l *mixLedger) see(h *mixHeard, typ, path, old, sum string, at time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	i := -1
	switch typ {
	case "file.created", "file.updated":
		if n, ok := l.bySum[sum]; ok && l.ops[n].path == path {
			i = n
		}
	case "file.deleted":
		for _, n := range l.byPath[path] {
			if l.ops[n].kind == kindDelete {
				i = n
			}
		}
	case "file.moved":
		for _, n := range l.byPath[path] {
			if l.ops[n].kind == kindMove && l.ops[n].old == old {
				i = n
			}
		}
	}
	if i < 0 {
		h.wrong++
		return
	}
	if kindEvent[l.ops[i].kind] != typ {
		h.wrong++
	}
	l.seenLocked(h, i, at)
}

// cover records a report about path (a notification, a watchman file, a
// bare fsnotify event) received at at: it covers every change of the
// path issued before at and not covered yet, each with its own latency.
func (l *mixLedger) cover(h *mixHeard, path string, at time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	ops := l.byPath[path]
	i := h.covered[path]
	start := i
	for ; i < len(ops) && !l.ops[ops[i]].at.After(at); i++ {
		l.seenLocked(h, ops[i], at)
	}
	if i == start {
		h.extra++
		return
	}
	h.covered[path] = i
}

// mixTally is how complete what a receiver heard of one step is.
type mixTally struct {
	lost      [nKinds]int // changes never reported, nor a later change of their path
	coalesced int         // changes not reported, but a later change of their path was
	total     int
}

// tally counts the changes of step (-1: all) that h never heard of.
func (l *mixLedger) tally(h *mixHeard, step int) mixTally {
	l.mu.Lock()
	defer l.mu.Unlock()
	var t mixTally
	for i, op := range l.ops {
		if step >= 0 && op.step != step {
			continue
		}
		t.total++
		if i < len(h.seen) && h.seen[i] {
			continue
		}
		if l.laterSeenLocked(h, i) {
			t.coalesced++
			continue
		}
		t.lost[op.kind]++
	}
	return t
}

// laterSeenLocked reports whether a later change of change i's path was
// heard: a later change of the path, or its move away.
func (l *mixLedger) laterSeenLocked(h *mixHeard, i int) bool {
	op := l.ops[i]
	if op.kind == kindDelete {
		return false
	}
	for _, n := range l.byPath[op.path] {
		if n > i && n < len(h.seen) && h.seen[n] {
			return true
		}
	}
	if n, ok := l.byOld[op.path]; ok && n > i && n < len(h.seen) && h.seen[n] {
		return true
	}
	return false
}

// complete reports whether h heard of the last change of every path
// changed since change from.
func (l *mixLedger) complete(h *mixHeard, from int) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	for i := from; i < len(l.ops); i++ {
		if i < len(h.seen) && h.seen[i] {
			continue
		}
		if !l.laterSeenLocked(h, i) {
			return false
		}
	}
	return true
}

// latencies returns h's latencies of one kind for the changes of step
// (-1: all).
func (l *mixLedger) latencies(h *mixHeard, k opKind, step int) []time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []time.Duration
	for j, d := range h.lat[k] {
		if step < 0 || l.ops[h.latAt[k][j]].step == step {
			out = append(out, d)
		}
	}
	return out
}

// allLatencies returns h's latencies of every kind for step (-1: all).
func (l *mixLedger) allLatencies(h *mixHeard, step int) []time.Duration {
	var out []time.Duration
	for k := range nKinds {
		out = append(out, l.latencies(h, k, step)...)
	}
	return out
}

func (l *mixLedger) count() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.ops)
}

func (l *mixLedger) counts(h *mixHeard) (dup, wrong, extra int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return h.dup, h.wrong, h.extra
}
