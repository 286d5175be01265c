package diff

import "unsafe"

// Caps of the comparison's work; variables so that tests can lower them.
var (
	// maxWork caps the steps (diagonals tried and lines compared) of one
	// comparison: once spent, what is left to compare becomes whole
	// blocks of '-' and '+' lines.
	maxWork = 1 << 22
	// maxCost caps the edit distance one bisection looks for: past it, it
	// splits at the point its forward search reached furthest instead of
	// the middle of a shortest edit script.
	maxCost = 1024
)

// edits marks the lines of a deleted and the lines of b inserted; the
// lines left unmarked match one for one, in order.
type edits struct {
	da, db []bool
}

// block is a run of changes: lines a0..a1 of a replaced by b0..b1 of b.
type block struct{ a0, a1, b0, b1 int }

// compare finds the lines to delete from a and insert from b.
func compare(a, b [][]byte) *edits {
	e := &edits{da: make([]bool, len(a)), db: make([]bool, len(b))}
	if len(a) == 0 || len(b) == 0 {
		mark(e.da, 0, len(a))
		mark(e.db, 0, len(b))
		return e
	}
	ia, ib, ids := lineIDs(a, b)
	// A line that the other side does not have is a change whatever the
	// alignment: leave those out of the search (as GNU diff does), which
	// keeps it short when most changed lines are new text.
	inA, inB := make([]bool, ids), make([]bool, ids)
	for _, id := range ia {
		inA[id] = true
	}
	for _, id := range ib {
		inB[id] = true
	}
	ka, ra := keep(ia, inB, e.da)
	kb, rb := keep(ib, inA, e.db)
	if len(ra) == 0 || len(rb) == 0 {
		mark(e.da, 0, len(a))
		mark(e.db, 0, len(b))
		return e
	}
	sub := &edits{da: make([]bool, len(ra)), db: make([]bool, len(rb))}
	m := myers{a: ra, b: rb, e: sub, work: maxWork}
	size := len(ra) + len(rb) + 3
	m.v1, m.v2 = make([]int, size), make([]int, size)
	m.compare(0, len(ra), 0, len(rb))
	for i, d := range sub.da {
		e.da[ka[i]] = d
	}
	for j, d := range sub.db {
		e.db[kb[j]] = d
	}
	return e
}

// keep returns the positions and ids of the lines whose id is in other,
// and marks the others changed.
func keep(ids []int32, other []bool, changed []bool) (pos []int, kept []int32) {
	pos, kept = make([]int, 0, len(ids)), make([]int32, 0, len(ids))
	for i, id := range ids {
		if !other[id] {
			changed[i] = true
			continue
		}
		pos, kept = append(pos, i), append(kept, id)
	}
	return pos, kept
}

// lineIDs numbers the lines of a and b from 0 so that equal lines, and
// only they, have equal numbers, and returns how many numbers it gave.
func lineIDs(a, b [][]byte) (ia, ib []int32, n int) {
	ids := make(map[string]int32, len(a))
	number := func(lines [][]byte) []int32 {
		out := make([]int32, len(lines))
		for i, l := range lines {
			// The key aliases the caller's bytes, which Unified neither
			// modifies nor keeps: the map dies with this comparison.
			k := unsafe.String(unsafe.SliceData(l), len(l))
			id, ok := ids[k]
			if !ok {
				id = int32(len(ids)) //nolint:gosec // fewer lines than int32 holds: the input is in memory
				ids[k] = id
			}
			out[i] = id
		}
		return out
	}
	ia, ib = number(a), number(b)
	return ia, ib, len(ids)
}

func mark(m []bool, from, to int) {
	for i := from; i < to; i++ {
		m[i] = true
	}
}

// blocks returns the runs of changes in order.
func (e *edits) blocks() []block {
	var out []block
	i, j := 0, 0
	for i < len(e.da) || j < len(e.db) {
		if i < len(e.da) && j < len(e.db) && !e.da[i] && !e.db[j] {
			i, j = i+1, j+1
			continue
		}
		b := block{a0: i, b0: j}
		for i < len(e.da) && e.da[i] {
			i++
		}
		for j < len(e.db) && e.db[j] {
			j++
		}
		if i == b.a0 && j == b.b0 {
			// Unmarked lines left on one side only: the marks do not
			// pair up, which compare never produces.
			panic("diff: inconsistent edit script")
		}
		b.a1, b.b1 = i, j
		out = append(out, b)
	}
	return out
}

// myers is Myers' O(ND) difference algorithm in linear space ("An O(ND)
// Difference Algorithm and Its Variations", 1986, section 4b): find the
// middle snake of a shortest edit script, then solve both halves.
type myers struct {
	a, b   []int32
	e      *edits
	v1, v2 []int // furthest x reached per diagonal, forward and backward
	work   int   // steps left before compare stops looking
}

// compare marks the differences of a[a0:a1] and b[b0:b1].
func (m *myers) compare(a0, a1, b0, b1 int) {
	for {
		for a0 < a1 && b0 < b1 && m.a[a0] == m.b[b0] {
			a0, b0 = a0+1, b0+1
		}
		for a0 < a1 && b0 < b1 && m.a[a1-1] == m.b[b1-1] {
			a1, b1 = a1-1, b1-1
		}
		if a0 == a1 || b0 == b1 {
			mark(m.e.da, a0, a1)
			mark(m.e.db, b0, b1)
			return
		}
		x, y, ok := m.split(a0, a1, b0, b1)
		if !ok || x == a0 && y == b0 || x == a1 && y == b1 {
			mark(m.e.da, a0, a1)
			mark(m.e.db, b0, b1)
			return
		}
		m.compare(a0, x, b0, y)
		a0, b0 = x, y
	}
}

// split returns a point (x, y) on an edit script of a[a0:a1] and
// b[b0:b1], strictly between its ends, or ok false when there is no
// common line to find or the work cap is spent. a and b differ in their
// first and last lines, and neither is empty.
func (m *myers) split(a0, a1, b0, b1 int) (x, y int, ok bool) {
	if m.work <= 0 {
		return 0, 0, false
	}
	n, mm := a1-a0, b1-b0
	maxD := (n + mm + 1) / 2
	off := maxD
	size := 2*maxD + 2
	m.work -= size
	v1, v2 := m.v1[:size], m.v2[:size]
	for i := range v1 {
		v1[i], v2[i] = -1, -1
	}
	v1[off+1], v2[off+1] = 0, 0
	delta := n - mm
	front := delta%2 != 0 // the forward search is the one that meets
	// Diagonals that left the grid are skipped from then on.
	k1lo, k1hi, k2lo, k2hi := 0, 0, 0, 0
	a, b := m.a, m.b
	for d := range maxD {
		if m.work <= 0 {
			return 0, 0, false
		}
		if d > maxCost {
			m.work -= 2*d + 1
			return m.furthest(a0, b0, n, mm, off, d)
		}
		for k := -d + k1lo; k <= d-k1hi; k += 2 {
			i := off + k
			var x1 int
			if k == -d || (k != d && v1[i-1] < v1[i+1]) {
				x1 = v1[i+1]
			} else {
				x1 = v1[i-1] + 1
			}
			y1 := x1 - k
			s := x1
			for x1 < n && y1 < mm && a[a0+x1] == b[b0+y1] {
				x1, y1 = x1+1, y1+1
			}
			m.work -= 1 + x1 - s
			v1[i] = x1
			switch {
			case x1 > n:
				k1hi += 2
			case y1 > mm:
				k1lo += 2
			case front:
				j := off + delta - k
				if j >= 0 && j < size && v2[j] != -1 && x1 >= n-v2[j] {
					return a0 + x1, b0 + y1, true
				}
			}
		}
		for k := -d + k2lo; k <= d-k2hi; k += 2 {
			i := off + k
			var x2 int
			if k == -d || (k != d && v2[i-1] < v2[i+1]) {
				x2 = v2[i+1]
			} else {
				x2 = v2[i-1] + 1
			}
			y2 := x2 - k
			s := x2
			for x2 < n && y2 < mm && a[a1-1-x2] == b[b1-1-y2] {
				x2, y2 = x2+1, y2+1
			}
			m.work -= 1 + x2 - s
			v2[i] = x2
			switch {
			case x2 > n:
				k2hi += 2
			case y2 > mm:
				k2lo += 2
			case !front:
				j := off + delta - k
				if j >= 0 && j < size && v1[j] != -1 {
					x1 := v1[j]
					y1 := off + x1 - j
					if x1 >= n-x2 {
						return a0 + x1, b0 + y1, true
					}
				}
			}
		}
	}
	// No common line: the paths never met.
	return 0, 0, false
}

// furthest returns the point the forward search reached furthest after d
// rounds, for a split that is correct but not the middle of a shortest
// script.
func (m *myers) furthest(a0, b0, n, mm, off, d int) (x, y int, ok bool) {
	best := -1
	for k := -d; k <= d; k++ {
		x1 := m.v1[off+k]
		y1 := x1 - k
		if x1 < 0 || x1 > n || y1 < 0 || y1 > mm {
			continue
		}
		if s := x1 + y1; s > best && s > 0 && s < n+mm {
			best, x, y = s, x1, y1
		}
	}
	if best < 0 {
		return 0, 0, false
	}
	return a0 + x, b0 + y, true
}
