package diff_test

import (
	"bytes"
	"fmt"
	"strconv"
	"strings"

	"github.com/filecast/filecast/events/diff"
)

// apply applies the hunks of r to old, as patch would, and returns the
// result. It fails on a hunk that does not match old, on malformed lines
// and on a header whose counts disagree with its lines: a Text that apply
// accepts is a well-formed diff of old.
func apply(old []byte, r diff.Result) ([]byte, error) {
	lines := splitKeep(old)
	text := r.Text
	if strings.HasPrefix(text, "--- ") {
		for range 2 {
			nl := strings.IndexByte(text, '\n')
			if nl < 0 {
				return nil, fmt.Errorf("file name lines without a hunk")
			}
			text = text[nl+1:]
		}
	}
	var out []byte
	next := 0  // next line of old to copy
	prevA := 0 // first line of old after the last hunk, to check order
	rest := text
	for rest != "" {
		nl := strings.IndexByte(rest, '\n')
		if nl < 0 {
			return nil, fmt.Errorf("text does not end with a newline")
		}
		header := rest[:nl]
		rest = rest[nl+1:]
		sa, na, sb, nb, err := parseHeader(header)
		if err != nil {
			return nil, err
		}
		// sa is 1-based, or the line before for an empty range.
		start := sa - 1
		if na == 0 {
			start = sa
		}
		if start < prevA || start > len(lines) {
			return nil, fmt.Errorf("hunk %q starts at line %d, after %d of %d", header, start+1, prevA, len(lines))
		}
		for ; next < start; next++ {
			out = append(out, lines[next]...)
		}
		if nb > 0 && len(out) != 0 && !bytes.HasSuffix(out, []byte("\n")) {
			return nil, fmt.Errorf("hunk %q follows a line without a newline", header)
		}
		gotA, gotB := 0, 0
		for gotA < na || gotB < nb {
			nl := strings.IndexByte(rest, '\n')
			if nl < 0 {
				return nil, fmt.Errorf("hunk %q: %d of %d old and %d of %d new lines, then the end", header, gotA, na, gotB, nb)
			}
			l := rest[:nl+1]
			rest = rest[nl+1:]
			if l == "" || strings.HasPrefix(l, "\\") {
				return nil, fmt.Errorf("hunk %q: unexpected line %q", header, l)
			}
			body := l[1:]
			if strings.HasPrefix(rest, "\\ No newline at end of file\n") {
				rest = rest[len("\\ No newline at end of file\n"):]
				body = strings.TrimSuffix(body, "\n")
			} else if r.CRLF {
				body = strings.TrimSuffix(body, "\n") + "\r\n"
			}
			switch l[0] {
			case ' ', '-':
				if next >= len(lines) || string(lines[next]) != body {
					have := "end of file"
					if next < len(lines) {
						have = strconv.Quote(string(lines[next]))
					}
					return nil, fmt.Errorf("hunk %q: line %d is %s, the diff says %q", header, next+1, have, body)
				}
				next++
				gotA++
				if l[0] == ' ' {
					out = append(out, body...)
					gotB++
				}
			case '+':
				out = append(out, body...)
				gotB++
			default:
				return nil, fmt.Errorf("hunk %q: line %q has no ' ', '-' or '+'", header, l)
			}
		}
		if gotA != na || gotB != nb {
			return nil, fmt.Errorf("hunk %q has %d old and %d new lines", header, gotA, gotB)
		}
		before := len(splitKeep(out)) - nb // lines of the result before the hunk's
		if nb > 0 && sb-1 != before || nb == 0 && sb != before {
			return nil, fmt.Errorf("hunk %q: its new lines come after line %d", header, before)
		}
		prevA = next
	}
	for ; next < len(lines); next++ {
		out = append(out, lines[next]...)
	}
	return out, nil
}

// parseHeader reads "@@ -a,b +c,d @@".
func parseHeader(h string) (sa, na, sb, nb int, err error) {
	var a, b string
	if _, err := fmt.Sscanf(h, "@@ -%s +%s @@", &a, &b); err != nil || !strings.HasSuffix(h, " @@") {
		return 0, 0, 0, 0, fmt.Errorf("bad hunk header %q", h)
	}
	if sa, na, err = parseRange(a); err == nil {
		sb, nb, err = parseRange(b)
	}
	if err != nil {
		return 0, 0, 0, 0, fmt.Errorf("bad hunk header %q: %w", h, err)
	}
	return sa, na, sb, nb, nil
}

func parseRange(s string) (start, count int, err error) {
	first, second, found := strings.Cut(s, ",")
	if start, err = strconv.Atoi(first); err != nil {
		return 0, 0, err
	}
	if !found {
		return start, 1, nil
	}
	if count, err = strconv.Atoi(second); err != nil || count == 1 {
		return 0, 0, fmt.Errorf("bad count %q", second)
	}
	return start, count, nil
}

// splitKeep splits after each "\n".
func splitKeep(b []byte) [][]byte {
	var out [][]byte
	for len(b) > 0 {
		nl := bytes.IndexByte(b, '\n')
		if nl < 0 {
			return append(out, b)
		}
		out = append(out, b[:nl+1])
		b = b[nl+1:]
	}
	return out
}
