// Package diff writes unified diffs of text files, bounded in size, so
// that an agent told a file changed can see what changed in a few hundred
// bytes instead of reading the whole file again.
//
// Unified compares two versions of a file line by line and writes the
// hunks as `diff -u` does: "@@ -a,b +c,d @@" headers, three lines of
// context, '-' and '+' lines, and the "\ No newline at end of file" marker
// after a last line without one. Its output is bounded: past
// Options.MaxBytes (DefaultMaxBytes, 2 KiB) it ends at a line boundary and
// Result.Truncated is set. Comparing nothing with a file gives the start of
// a created file the same way ("@@ -0,0 +1,n @@" and '+' lines); a file
// emptied gives its former lines as '-' lines.
//
// A sketch, for a file.updated event whose previous content is known:
//
//	switch {
//	case !diff.IsText(prev) || !diff.IsText(cur):
//		ev.DiffUnavailable = "binary"
//	default:
//		r := diff.Unified(prev, cur, diff.Options{})
//		ev.Diff, ev.DiffTruncated = r.Text, r.Truncated
//	}
//
// # Line endings
//
// Lines are compared with their line endings, so a file whose lines went
// from CRLF to LF differs on every line. When every line shown ends with
// CRLF in both versions (a Windows file edited in place), the CR is left
// out of the text and Result.CRLF is set; otherwise each CR is kept where
// it is, so that a change of line endings shows as "-text\r" and "+text".
//
// # Cost
//
// The common head and tail of the two versions are skipped first, a
// memory compare over bytes, so a one-line change in a 1 MB file costs
// about as much as comparing the file with itself. Only the lines in
// between are compared, with Myers' O(ND) algorithm in linear space.
// Its work is capped: past the cap (far beyond any edit of a source file)
// the rest of the comparison gives coarser hunks — a block of '-' lines
// and a block of '+' lines where a finer diff was not looked for — which
// are still a correct diff. The CPU spent on any pair is bounded.
//
// Unified and IsText are safe for concurrent use; they neither keep nor
// modify their arguments.
package diff

import (
	"bytes"
)

// Defaults of Options.
const (
	// DefaultContext is the lines of context around each change.
	DefaultContext = 3
	// DefaultMaxBytes bounds Result.Text.
	DefaultMaxBytes = 2 << 10
)

// Options tunes Unified; the zero value gives three lines of context and
// at most 2 KiB of output, without file names.
type Options struct {
	// Context is the lines of unchanged text shown around each change:
	// zero means DefaultContext, a negative number none.
	Context int
	// MaxBytes bounds the length of Result.Text: zero means
	// DefaultMaxBytes, a negative number no bound.
	MaxBytes int
	// OldName and NewName, when either is set, start the diff with
	// "--- OldName" and "+++ NewName" lines, as patch tools expect.
	OldName, NewName string
}

func (o Options) context() int {
	switch {
	case o.Context == 0:
		return DefaultContext
	case o.Context < 0:
		return 0
	}
	return o.Context
}

func (o Options) maxBytes() int {
	switch {
	case o.MaxBytes == 0:
		return DefaultMaxBytes
	case o.MaxBytes < 0:
		return int(^uint(0) >> 1)
	}
	return o.MaxBytes
}

// Result is a unified diff. Its zero value is the diff of two equal
// versions.
type Result struct {
	// Text holds the hunks, each line ending with "\n"; empty when the
	// versions are equal, or when not even the first changed line fits
	// in Options.MaxBytes (then Truncated is set).
	Text string
	// Truncated is set when changed lines were left out to keep Text
	// within Options.MaxBytes. Text then ends at a line boundary, and the
	// header of a hunk cut short counts only the lines shown. (The last
	// hunk may also lose some of its trailing context to the bound.)
	Truncated bool
	// Added and Deleted count the lines added and removed by the whole
	// diff, those left out of Text included.
	Added, Deleted int
	// CRLF is set when every line shown ended with CRLF in both versions
	// and Text shows them without the CR.
	CRLF bool
}

// Unified returns the unified diff that turns old into new. With old
// empty, it is the start of new as a created file; with new empty, the
// lines old had.
func Unified(old, new []byte, opts Options) Result {
	if bytes.Equal(old, new) {
		return Result{}
	}
	ctx := opts.context()

	// Skip the common head and tail, whole lines only, keeping ctx lines
	// of each as context.
	head := lineStart(old, commonPrefix(old, new))
	tail := lineAlignedSuffix(old, new, head)
	start := backLines(old, head, ctx)
	oldStop, newStop := len(old)-tail, len(new)-tail
	budget := opts.maxBytes()

	// Lines only added (a created file) or only removed (an emptied one)
	// past the bound: the lines past it cannot be shown, so they are
	// counted, not compared.
	added, deleted, cut := 0, 0, false
	switch oldCore, newCore := old[head:oldStop], new[head:newStop]; {
	case len(oldCore) == 0 && len(newCore) > budget:
		added, cut = countLines(newCore), true
		newStop = head + lineEnd(newCore, budget)
	case len(newCore) == 0 && len(oldCore) > budget:
		deleted, cut = countLines(oldCore), true
		oldStop = head + lineEnd(oldCore, budget)
	default:
		extra := forwardLines(old[oldStop:], ctx)
		oldStop += extra
		newStop += extra
	}

	a := splitLines(old[start:oldStop])
	b := splitLines(new[start:newStop])
	d := compare(a, b)
	w := writer{
		a:      a,
		b:      b,
		base:   bytes.Count(old[:start], newline),
		ctx:    ctx,
		budget: budget,
		crlf:   crlfOnly(old[start:oldStop], new[start:newStop]),
	}
	r := w.write(d.blocks(), opts.OldName, opts.NewName)
	if cut {
		r.Added, r.Deleted, r.Truncated = added, deleted, true
	}
	return r
}

// countLines counts the lines of buf, a last one without "\n" included.
func countLines(buf []byte) int {
	n := bytes.Count(buf, newline)
	if len(buf) > 0 && buf[len(buf)-1] != '\n' {
		n++
	}
	return n
}

// lineEnd returns the end of the line that holds byte n-1 of buf.
func lineEnd(buf []byte, n int) int {
	if n <= 0 {
		return 0
	}
	nl := bytes.IndexByte(buf[n-1:], '\n')
	if nl < 0 {
		return len(buf)
	}
	return n + nl
}

var newline = []byte{'\n'}

// commonPrefix returns the length of the longest common prefix of a and b.
func commonPrefix(a, b []byte) int {
	n := min(len(a), len(b))
	i := 0
	// Blocks first: bytes.Equal is a vectorised memory compare.
	const block = 256
	for i+block <= n && bytes.Equal(a[i:i+block], b[i:i+block]) {
		i += block
	}
	for i < n && a[i] == b[i] {
		i++
	}
	return i
}

// commonSuffix returns the length of the longest common suffix of a and
// b, at most limit.
func commonSuffix(a, b []byte, limit int) int {
	n := min(len(a), len(b), limit)
	i := 0
	const block = 256
	for i+block <= n && bytes.Equal(a[len(a)-i-block:len(a)-i], b[len(b)-i-block:len(b)-i]) {
		i += block
	}
	for i < n && a[len(a)-1-i] == b[len(b)-1-i] {
		i++
	}
	return i
}

// lineStart returns the start of the line that holds offset i of buf.
func lineStart(buf []byte, i int) int {
	return bytes.LastIndexByte(buf[:i], '\n') + 1
}

// lineAlignedSuffix returns the length of the longest common suffix of a
// and b that starts a line in both and does not reach back before head.
func lineAlignedSuffix(a, b []byte, head int) int {
	k := commonSuffix(a, b, min(len(a), len(b))-head)
	for k > 0 {
		i, j := len(a)-k, len(b)-k
		if (i == 0 || a[i-1] == '\n') && (j == 0 || b[j-1] == '\n') {
			return k
		}
		// Past the first byte of the suffix, a and b hold the same bytes:
		// the next line start of a is one of b too.
		nl := bytes.IndexByte(a[i:], '\n')
		if nl < 0 {
			return 0
		}
		k -= nl + 1
	}
	return 0
}

// backLines moves back up to n lines from i, a line start of buf.
func backLines(buf []byte, i, n int) int {
	for ; n > 0 && i > 0; n-- {
		i = bytes.LastIndexByte(buf[:i-1], '\n') + 1
	}
	return i
}

// forwardLines returns the length of the first n lines of buf, or of buf
// when it has fewer.
func forwardLines(buf []byte, n int) int {
	i := 0
	for ; n > 0 && i < len(buf); n-- {
		nl := bytes.IndexByte(buf[i:], '\n')
		if nl < 0 {
			return len(buf)
		}
		i += nl + 1
	}
	return i
}

// splitLines splits buf after each "\n"; the last line has none when buf
// does not end with one.
func splitLines(buf []byte) [][]byte {
	if len(buf) == 0 {
		return nil
	}
	lines := make([][]byte, 0, bytes.Count(buf, newline)+1)
	for len(buf) > 0 {
		nl := bytes.IndexByte(buf, '\n')
		if nl < 0 {
			lines = append(lines, buf)
			break
		}
		lines = append(lines, buf[:nl+1:nl+1])
		buf = buf[nl+1:]
	}
	return lines
}

// crlfOnly reports whether the lines of a and b end with CRLF, every one
// that ends, and at least one does.
func crlfOnly(a, b []byte) bool {
	seen := false
	for _, buf := range [][]byte{a, b} {
		for {
			nl := bytes.IndexByte(buf, '\n')
			if nl < 0 {
				break
			}
			if nl == 0 || buf[nl-1] != '\r' {
				return false
			}
			seen = true
			buf = buf[nl+1:]
		}
	}
	return seen
}
