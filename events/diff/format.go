package diff

import (
	"bytes"
	"strconv"
)

// noNewline follows a last line that has no "\n".
const noNewline = "\\ No newline at end of file\n"

// writer renders the blocks of a comparison as unified hunks within a
// byte budget.
type writer struct {
	a, b   [][]byte // the lines compared; only a file's last line can lack "\n"
	base   int      // lines of the files before a[0] and b[0]
	ctx    int      // lines of context
	budget int      // bytes of output allowed
	crlf   bool     // show "\r\n" as "\n"
}

func (w *writer) write(blocks []block, oldName, newName string) Result {
	r := Result{CRLF: w.crlf}
	for _, bl := range blocks {
		r.Deleted += bl.a1 - bl.a0
		r.Added += bl.b1 - bl.b0
	}
	var names string
	if oldName != "" || newName != "" {
		names = "--- " + oldName + "\n+++ " + newName + "\n"
	}
	left := w.budget - len(names)
	var out []byte
	for h := 0; h < len(blocks); {
		last := h
		for last+1 < len(blocks) && blocks[last+1].a0-blocks[last].a1 <= 2*w.ctx {
			last++
		}
		var complete bool
		out, complete = w.appendHunk(out, blocks[h:last+1], left-len(out))
		if !complete {
			r.Truncated = true
			break
		}
		h = last + 1
	}
	if len(out) > 0 {
		r.Text = names + string(out)
	}
	return r
}

// appendHunk appends the hunk of blocks bs with its context if it fits in
// left bytes, and reports true. Otherwise it appends as many of its first
// blocks as fit, whole, and reports false; when none fits and dst is
// empty, the first of the first block's '-' and '+' lines — so that a
// diff holds something whenever a line of each side fits.
func (w *writer) appendHunk(dst []byte, bs []block, left int) (out []byte, complete bool) {
	first := bs[0]
	pre := min(w.ctx, first.a0)
	sa, sb := first.a0-pre, first.b0-pre
	na, nb := pre, pre
	size := w.linesSize(w.a[sa:first.a0], left)
	fit, fitA, fitB, fitSize := 0, 0, 0, 0
	for k, bl := range bs {
		if k > 0 {
			gap := bl.a0 - bs[k-1].a1
			size += w.linesSize(w.a[bs[k-1].a1:bl.a0], left)
			na, nb = na+gap, nb+gap
		}
		size += w.linesSize(w.a[bl.a0:bl.a1], left) + w.linesSize(w.b[bl.b0:bl.b1], left)
		na, nb = na+bl.a1-bl.a0, nb+bl.b1-bl.b0
		if headerSize(w.base+sa, na, w.base+sb, nb)+size > left {
			break
		}
		fit, fitA, fitB, fitSize = k+1, na, nb, size
	}
	if fit == 0 {
		if len(dst) > 0 {
			return dst, false
		}
		return w.appendPart(dst, first, left), false
	}
	// As much of the trailing context as fits.
	end := bs[fit-1].a1
	post := 0
	if fit == len(bs) {
		for end+post < len(w.a) && post < w.ctx {
			n := w.lineSize(w.a[end+post])
			if headerSize(w.base+sa, fitA+1, w.base+sb, fitB+1)+fitSize+n > left {
				break
			}
			post, fitA, fitB, fitSize = post+1, fitA+1, fitB+1, fitSize+n
		}
	}
	dst = appendHeader(dst, w.base+sa, fitA, w.base+sb, fitB)
	i := sa
	for _, bl := range bs[:fit] {
		for ; i < bl.a0; i++ {
			dst = w.appendLine(dst, ' ', w.a[i])
		}
		for ; i < bl.a1; i++ {
			dst = w.appendLine(dst, '-', w.a[i])
		}
		for j := bl.b0; j < bl.b1; j++ {
			dst = w.appendLine(dst, '+', w.b[j])
		}
	}
	for ; i < end+post; i++ {
		dst = w.appendLine(dst, ' ', w.a[i])
	}
	return dst, fit == len(bs)
}

// appendPart appends the start of block bl, too big to fit in left bytes:
// its leading context if room is left for a change, then '-' and '+' lines
// taken in turn while they fit, under a header that counts them; nothing
// unless a line of each side the block has fits.
func (w *writer) appendPart(dst []byte, bl block, left int) []byte {
	for _, pre := range []int{min(w.ctx, bl.a0), 0} {
		sa, sb := bl.a0-pre, bl.b0-pre
		size := w.linesSize(w.a[sa:bl.a0], left)
		i, j := bl.a0, bl.b0 // next '-' and '+' lines to take
		for more := true; more; {
			more = false
			if i < bl.a1 {
				n := w.lineSize(w.a[i])
				if headerSize(w.base+sa, i-sa+1, w.base+sb, j-sb)+size+n <= left {
					i, size, more = i+1, size+n, true
				}
			}
			if j < bl.b1 {
				n := w.lineSize(w.b[j])
				if headerSize(w.base+sa, i-sa, w.base+sb, j-sb+1)+size+n <= left {
					j, size, more = j+1, size+n, true
				}
			}
		}
		// Half a replacement would read as a deletion or an insertion.
		if i == bl.a0 && bl.a1 > bl.a0 || j == bl.b0 && bl.b1 > bl.b0 {
			continue
		}
		dst = appendHeader(dst, w.base+sa, i-sa, w.base+sb, j-sb)
		for k := sa; k < bl.a0; k++ {
			dst = w.appendLine(dst, ' ', w.a[k])
		}
		for k := bl.a0; k < i; k++ {
			dst = w.appendLine(dst, '-', w.a[k])
		}
		for k := bl.b0; k < j; k++ {
			dst = w.appendLine(dst, '+', w.b[k])
		}
		return dst
	}
	return dst
}

// linesSize returns the length of lines as appendLine writes them, or a
// number over limit as soon as it is.
func (w *writer) linesSize(lines [][]byte, limit int) int {
	size := 0
	for _, l := range lines {
		size += w.lineSize(l)
		if size > limit {
			break
		}
	}
	return size
}

// lineSize is the length of l as appendLine writes it.
func (w *writer) lineSize(l []byte) int {
	n := len(l)
	switch {
	case !bytes.HasSuffix(l, newline):
		return 1 + n + 1 + len(noNewline)
	case w.crlf && bytes.HasSuffix(l, crlf):
		return n // the kind in, the CR out
	}
	return 1 + n
}

var crlf = []byte("\r\n")

// appendLine appends line l of the given kind (' ', '-' or '+').
func (w *writer) appendLine(dst []byte, kind byte, l []byte) []byte {
	dst = append(dst, kind)
	switch {
	case !bytes.HasSuffix(l, newline):
		dst = append(dst, l...)
		dst = append(dst, '\n')
		return append(dst, noNewline...)
	case w.crlf && bytes.HasSuffix(l, crlf):
		dst = append(dst, l[:len(l)-2]...)
		return append(dst, '\n')
	}
	return append(dst, l...)
}

// appendHeader appends "@@ -a,na +b,nb @@" for ranges of na lines from
// line a (0-based) and nb from line b, as diff -u writes them.
func appendHeader(dst []byte, a, na, b, nb int) []byte {
	dst = append(dst, "@@ -"...)
	dst = appendRange(dst, a, na)
	dst = append(dst, " +"...)
	dst = appendRange(dst, b, nb)
	return append(dst, " @@\n"...)
}

// appendRange writes "start,count" with a 1-based start, or "start" alone
// for one line; an empty range names the line before it.
func appendRange(dst []byte, start, count int) []byte {
	switch count {
	case 0:
		dst = strconv.AppendInt(dst, int64(start), 10)
		return append(dst, ",0"...)
	case 1:
		return strconv.AppendInt(dst, int64(start)+1, 10)
	}
	dst = strconv.AppendInt(dst, int64(start)+1, 10)
	dst = append(dst, ',')
	return strconv.AppendInt(dst, int64(count), 10)
}

func headerSize(a, na, b, nb int) int {
	return len("@@ - + @@\n") + rangeSize(a, na) + rangeSize(b, nb)
}

func rangeSize(start, count int) int {
	switch count {
	case 0:
		return digits(start) + 2
	case 1:
		return digits(start + 1)
	}
	return digits(start+1) + 1 + digits(count)
}

func digits(n int) int {
	d := 1
	for n >= 10 {
		n /= 10
		d++
	}
	return d
}
