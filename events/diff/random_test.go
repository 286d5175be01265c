package diff_test

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/filecast/filecast/events/diff"
)

// randomFile returns n lines drawn from a small alphabet, so that equal
// lines are common, ending with LF or, with crlf, mostly CRLF; the last
// line may have no ending.
func randomFile(r *rand.Rand, n int, crlf bool) []byte {
	words := []string{"a", "b", "c", "{", "}", "", "return x", "δ"}
	var b bytes.Buffer
	for i := range n {
		b.WriteString(words[r.IntN(len(words))])
		switch {
		case i == n-1 && r.IntN(4) == 0:
		case crlf && r.IntN(10) > 0:
			b.WriteString("\r\n")
		default:
			b.WriteString("\n")
		}
	}
	return b.Bytes()
}

// mutate returns f with a few lines deleted, inserted or replaced.
func mutate(r *rand.Rand, f []byte, crlf bool) []byte {
	lines := splitKeep(f)
	for range r.IntN(6) {
		i := r.IntN(len(lines) + 1)
		extra := splitKeep(randomFile(r, 1+r.IntN(3), crlf))
		switch r.IntN(3) {
		case 0:
			if i < len(lines) {
				lines = append(lines[:i:i], lines[i+1:]...)
			}
		case 1:
			lines = append(lines[:i:i], append(extra, lines[i:]...)...)
		default:
			if i < len(lines) {
				lines = append(lines[:i:i], append(extra, lines[i+1:]...)...)
			}
		}
	}
	// A line without "\n" can only be the last.
	for i := 0; i < len(lines)-1; i++ {
		if !bytes.HasSuffix(lines[i], []byte("\n")) {
			lines[i] = append(lines[i][:len(lines[i]):len(lines[i])], '\n')
		}
	}
	return bytes.Join(lines, nil)
}

// TestUnified_Random applies the diffs of random pairs to their old side,
// with the work caps as shipped and lowered so far that the coarse paths
// run.
func TestUnified_Random(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for _, caps := range []struct{ work, cost int }{{0, 0}, {200, 4}, {1, 1}} {
		t.Run(fmt.Sprintf("work=%d,cost=%d", caps.work, caps.cost), func(t *testing.T) {
			if caps.work > 0 {
				defer diff.SetCaps(caps.work, caps.cost)()
			}
			for i := range 3000 {
				crlf := i%3 == 0
				old := randomFile(r, r.IntN(40), crlf)
				new := mutate(r, old, crlf)
				if i%10 == 0 {
					new = randomFile(r, r.IntN(40), crlf)
				}
				opts := diff.Options{Context: r.IntN(5) - 1, MaxBytes: -1}
				checkDiff(t, old, new, opts)
				opts.MaxBytes = 1 + r.IntN(200)
				checkDiff(t, old, new, opts)
			}
		})
	}
}

// checkDiff checks the properties every diff has.
func checkDiff(t *testing.T, old, new []byte, opts diff.Options) {
	t.Helper()
	res := diff.Unified(old, new, opts)
	if opts.MaxBytes > 0 && len(res.Text) > opts.MaxBytes {
		t.Fatalf("Unified(%q, %q, %+v): %d bytes, over the bound", old, new, opts, len(res.Text))
	}
	if res.Text != "" && !strings.HasSuffix(res.Text, "\n") {
		t.Fatalf("Unified(%q, %q, %+v) = %q does not end a line", old, new, opts, res.Text)
	}
	got, err := apply(old, res)
	if err != nil {
		t.Fatalf("Unified(%q, %q, %+v) = %q does not apply: %v", old, new, opts, res.Text, err)
	}
	if res.Truncated {
		return
	}
	if !bytes.Equal(got, new) {
		t.Fatalf("Unified(%q, %q, %+v) = %q applies to %q", old, new, opts, res.Text, got)
	}
	added, deleted := 0, 0
	for l := range strings.SplitSeq(res.Text, "\n") {
		switch {
		case strings.HasPrefix(l, "+++ ") || strings.HasPrefix(l, "--- "):
		case strings.HasPrefix(l, "+"):
			added++
		case strings.HasPrefix(l, "-"):
			deleted++
		}
	}
	if added != res.Added || deleted != res.Deleted {
		t.Fatalf("Unified(%q, %q, %+v) = %q counts +%d -%d, its text +%d -%d", old, new, opts, res.Text, res.Added, res.Deleted, added, deleted)
	}
}

// TestUnified_Minimal checks that diffs are as short as diff --minimal's.
func TestUnified_Minimal(t *testing.T) {
	gnu := gnuDiff(t)
	r := rand.New(rand.NewPCG(3, 4))
	for range 150 {
		old := randomFile(r, r.IntN(60), false)
		new := mutate(r, old, false)
		res := diff.Unified(old, new, diff.Options{MaxBytes: -1})
		want := gnu(t, string(old), string(new), diff.Options{}, "--minimal")
		changed := 0
		for l := range strings.SplitSeq(want, "\n") {
			if strings.HasPrefix(l, "+") || strings.HasPrefix(l, "-") {
				changed++
			}
		}
		if got := res.Added + res.Deleted; got != changed {
			t.Fatalf("Unified(%q, %q) changes %d lines, diff --minimal %d:\n%s\ndiff --minimal:\n%s", old, new, got, changed, res.Text, want)
		}
	}
}

// TestUnified_Coarse runs a pair with no line in common, beyond the work
// cap: the diff is a whole replacement, and correct.
func TestUnified_Coarse(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	var old, new bytes.Buffer
	for i := range 20000 {
		fmt.Fprintf(&old, "old %d %d\n", i, r.Int())
		fmt.Fprintf(&new, "new %d %d\n", i, r.Int())
		if i%7 == 0 { // some lines in common, scattered
			fmt.Fprintf(&old, "same %d\n", i)
			fmt.Fprintf(&new, "same %d\n", i)
		}
	}
	checkDiff(t, old.Bytes(), new.Bytes(), diff.Options{MaxBytes: -1})
}

func FuzzUnified(f *testing.F) {
	for _, tc := range unifiedCases() {
		f.Add([]byte(tc.old), []byte(tc.new), int8(tc.opts.Context), int16(tc.opts.MaxBytes))
	}
	f.Fuzz(func(t *testing.T, old, new []byte, ctx int8, max int16) {
		opts := diff.Options{Context: int(ctx) % 8, MaxBytes: int(max)}
		checkDiff(t, old, new, opts)
		opts.MaxBytes = -1
		checkDiff(t, old, new, opts)
	})
}
