package diff_test

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/google/go-cmp/cmp"

	"github.com/filecast/filecast/events/diff"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

// numbered returns lines "line from" to "line to", each ending with eol.
func numbered(from, to int, eol string) string {
	var b strings.Builder
	for i := from; i <= to; i++ {
		fmt.Fprintf(&b, "line %d%s", i, eol)
	}
	return b.String()
}

// replaceLine replaces line n (1-based) of s with repl, which keeps no
// line ending of its own.
func replaceLine(s string, n int, repl string) string {
	lines := strings.SplitAfter(s, "\n")
	eol := lines[n-1][len(strings.TrimRight(lines[n-1], "\r\n")):]
	lines[n-1] = repl + eol
	return strings.Join(lines, "")
}

type unifiedCase struct {
	name     string
	old, new string
	opts     diff.Options
	// gnu is how diff -u's output compares with Text: "same" (after its
	// file name lines, unless the case sets names), "prefix" (Text stops
	// at a hunk boundary of it), "same-without-cr" (Text is diff -u's
	// with CRs before newlines left out) or "" (not compared).
	gnu            string
	truncated      bool
	crlf           bool
	added, deleted int
}

func unifiedCases() []unifiedCase {
	base := numbered(1, 30, "\n")
	crlf := numbered(1, 30, "\r\n")
	scattered := base
	for _, n := range []int{3, 11, 19, 27} {
		scattered = replaceLine(scattered, n, fmt.Sprintf("changed %d", n))
	}
	return []unifiedCase{
		{name: "equal", old: base, new: base, gnu: "same"},
		{name: "edit-middle", old: base, new: replaceLine(base, 15, "fifteen"), gnu: "same", added: 1, deleted: 1},
		{name: "append", old: base, new: base + "line 31\nline 32\n", gnu: "same", added: 2},
		{name: "append-to-unterminated", old: "a\nb", new: "a\nbc\nd\n", gnu: "same", added: 2, deleted: 1},
		{name: "add-final-newline", old: "a\nb", new: "a\nb\n", gnu: "same", added: 1, deleted: 1},
		{name: "remove-final-newline", old: "a\nb\n", new: "a\nb", gnu: "same", added: 1, deleted: 1},
		{name: "insert-at-start", old: base, new: "new first\n" + base, gnu: "same", added: 1},
		{name: "delete-at-start", old: base, new: numbered(3, 30, "\n"), gnu: "same", deleted: 2},
		{name: "delete-at-end", old: base, new: numbered(1, 27, "\n"), gnu: "same", deleted: 3},
		{name: "truncate-to-empty", old: numbered(1, 5, "\n"), new: "", gnu: "same", deleted: 5},
		{name: "create", old: "", new: numbered(1, 5, "\n"), gnu: "same", added: 5},
		{name: "create-unterminated", old: "", new: "only line", gnu: "same", added: 1},
		{name: "both-unterminated", old: "a", new: "b", gnu: "same", added: 1, deleted: 1},
		{name: "two-hunks", old: base, new: replaceLine(replaceLine(base, 5, "five"), 20, "twenty"), gnu: "same", added: 2, deleted: 2},
		{name: "merged-at-gap-6", old: base, new: replaceLine(replaceLine(base, 5, "five"), 12, "twelve"), gnu: "same", added: 2, deleted: 2},
		{name: "apart-at-gap-7", old: base, new: replaceLine(replaceLine(base, 5, "five"), 13, "thirteen"), gnu: "same", added: 2, deleted: 2},
		{name: "crlf-edit", old: crlf, new: replaceLine(crlf, 15, "fifteen"), gnu: "same-without-cr", crlf: true, added: 1, deleted: 1},
		{name: "crlf-append", old: crlf, new: crlf + "line 31\r\n", gnu: "same-without-cr", crlf: true, added: 1},
		{name: "crlf-to-lf", old: numbered(1, 4, "\r\n"), new: numbered(1, 4, "\n"), gnu: "same", added: 4, deleted: 4},
		{name: "lf-to-crlf-one-line", old: base, new: replaceLine(base, 10, "line 10\r"), gnu: "same", added: 1, deleted: 1},
		{name: "crlf-edit-beside-lf-line", old: "a\r\nb\r\nc\n", new: "a\r\nB\r\nc\n", gnu: "same", added: 1, deleted: 1},
		{name: "crlf-unterminated", old: "a\r\nb\r\nc", new: "a\r\nB\r\nc", gnu: "same-without-cr", crlf: true, added: 1, deleted: 1},
		{name: "context-0", old: base, new: scattered, opts: diff.Options{Context: -1}, gnu: "same", added: 4, deleted: 4},
		{name: "context-1", old: base, new: scattered, opts: diff.Options{Context: 1}, gnu: "same", added: 4, deleted: 4},
		{name: "context-5", old: base, new: scattered, opts: diff.Options{Context: 5}, gnu: "same", added: 4, deleted: 4},
		{name: "names", old: base, new: replaceLine(base, 2, "two"), opts: diff.Options{OldName: "a/notes.txt", NewName: "b/notes.txt"}, gnu: "same", added: 1, deleted: 1},
		{name: "unicode", old: "café\n日本語\nsecond ✓\n", new: "café\n日本語のテキスト\nsecond ✓\n", gnu: "same", added: 1, deleted: 1},
		{name: "repeated-lines", old: "a\nb\na\nb\n", new: "a\nb\na\nb\na\nb\n", gnu: "same", added: 2},
		{name: "code-insert-function", old: goOld, new: goNew, gnu: "same", added: 4},
		{name: "truncated-at-hunk", old: base, new: scattered, opts: diff.Options{Context: -1, MaxBytes: 60}, gnu: "prefix", truncated: true, added: 4, deleted: 4},
		{name: "truncated-in-hunk", old: numbered(1, 50, "\n"), new: numbered(101, 150, "\n"), opts: diff.Options{MaxBytes: 200}, truncated: true, added: 50, deleted: 50},
		{name: "truncated-create", old: "", new: numbered(1, 500, "\n"), truncated: true, added: 500},
		{name: "truncated-empties", old: numbered(1, 500, "\n"), new: "", truncated: true, deleted: 500},
		{name: "line-longer-than-bound", old: "short\n", new: strings.Repeat("x", 3000) + "\n", truncated: true, added: 1, deleted: 1},
		{name: "unbounded", old: numbered(1, 300, "\n"), new: numbered(301, 600, "\n"), opts: diff.Options{MaxBytes: -1}, gnu: "same", added: 300, deleted: 300},
	}
}

const goOld = `package x

func a() int {
	return 1
}

func c() int {
	return 3
}
`

const goNew = `package x

func a() int {
	return 1
}

func b() int {
	return 2
}

func c() int {
	return 3
}
`

func TestUnified(t *testing.T) {
	for _, tc := range unifiedCases() {
		t.Run(tc.name, func(t *testing.T) {
			r := diff.Unified([]byte(tc.old), []byte(tc.new), tc.opts)
			golden(t, filepath.Join("testdata", tc.name+".diff"), r.Text)
			got := struct {
				Truncated, CRLF bool
				Added, Deleted  int
			}{r.Truncated, r.CRLF, r.Added, r.Deleted}
			want := struct {
				Truncated, CRLF bool
				Added, Deleted  int
			}{tc.truncated, tc.crlf, tc.added, tc.deleted}
			if d := cmp.Diff(want, got); d != "" {
				t.Errorf("result (-want +got):\n%s", d)
			}
			limit := tc.opts.MaxBytes
			if limit == 0 {
				limit = diff.DefaultMaxBytes
			}
			if limit > 0 && len(r.Text) > limit {
				t.Errorf("Text has %d bytes, over the bound of %d", len(r.Text), limit)
			}
			if !utf8.ValidString(r.Text) {
				t.Errorf("Text is not valid UTF-8")
			}
			patched, err := apply([]byte(tc.old), r)
			if err != nil {
				t.Fatalf("the diff does not apply: %v\n%s", err, r.Text)
			}
			if !r.Truncated && string(patched) != tc.new {
				t.Errorf("the diff applied to old gives %q, want %q", patched, tc.new)
			}
		})
	}
}

// TestUnified_GNU compares Unified's text with diff -u's.
func TestUnified_GNU(t *testing.T) {
	gnu := gnuDiff(t)
	for _, tc := range unifiedCases() {
		if tc.gnu == "" {
			continue
		}
		t.Run(tc.name, func(t *testing.T) {
			r := diff.Unified([]byte(tc.old), []byte(tc.new), tc.opts)
			want := gnu(t, tc.old, tc.new, tc.opts)
			switch tc.gnu {
			case "same":
				if r.Text != want {
					t.Errorf("Unified differs from diff -u:\n%s", cmp.Diff(want, r.Text))
				}
			case "same-without-cr":
				if want = strings.ReplaceAll(want, "\r\n", "\n"); r.Text != want {
					t.Errorf("Unified differs from diff -u without CRs:\n%s", cmp.Diff(want, r.Text))
				}
			case "prefix":
				if r.Text == "" || !strings.HasPrefix(want, r.Text) || !strings.HasPrefix(want[len(r.Text):], "@@ ") {
					t.Errorf("Unified's %q is not diff -u's cut at a hunk:\n%s", r.Text, want)
				}
			default:
				t.Fatalf("unknown comparison %q", tc.gnu)
			}
		})
	}
}

// gnuDiff returns a function that runs GNU diff -u on old and new and
// returns its output without the file name lines, unless opts names the
// files; extra are more options for diff. It skips the test, saying so, when GNU diff is not installed.
func gnuDiff(t *testing.T) func(t *testing.T, old, new string, opts diff.Options, extra ...string) string {
	t.Helper()
	path, err := exec.LookPath("diff")
	if err == nil {
		out, verr := exec.Command(path, "--version").Output()
		if verr != nil || !bytes.Contains(out, []byte("GNU")) {
			err = errors.New("not GNU diff")
		}
	}
	if err != nil {
		t.Skipf("SKIPPED: comparing with GNU diff needs GNU diffutils on PATH: %v", err)
	}
	return func(t *testing.T, old, new string, opts diff.Options, extra ...string) string {
		t.Helper()
		dir := t.TempDir()
		a, b := filepath.Join(dir, "old"), filepath.Join(dir, "new")
		if err := os.WriteFile(a, []byte(old), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(b, []byte(new), 0o600); err != nil {
			t.Fatal(err)
		}
		ctx := opts.Context
		switch {
		case ctx == 0:
			ctx = diff.DefaultContext
		case ctx < 0:
			ctx = 0
		}
		args := []string{"-U" + strconv.Itoa(ctx)}
		named := opts.OldName != "" || opts.NewName != ""
		if named {
			args = append(args, "--label", opts.OldName, "--label", opts.NewName)
		}
		args = append(args, extra...)
		out, err := exec.Command(path, append(args, a, b)...).Output()
		if code := exitCode(err); code > 1 {
			t.Fatalf("diff: %v", err)
		}
		s := string(out)
		if !named && s != "" {
			for range 2 {
				s = s[strings.IndexByte(s, '\n')+1:]
			}
		}
		return s
	}
}

func exitCode(err error) int {
	if err == nil {
		return 0
	}
	if ee, ok := errors.AsType[*exec.ExitError](err); ok {
		return ee.ExitCode()
	}
	return 2
}

// golden compares got with the file at path, or rewrites it with -update.
func golden(t *testing.T, path, got string) {
	t.Helper()
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to write it)", err)
	}
	if got != string(want) {
		t.Errorf("differs from %s (-want +got):\n%s", path, cmp.Diff(string(want), got))
	}
}

func TestIsText(t *testing.T) {
	long := strings.Repeat("a", diff.TextWindow-1)
	for _, tc := range []struct {
		name string
		data string
		want bool
	}{
		{"empty", "", true},
		{"ascii", "hello\nworld\n", true},
		{"utf-8", "café ✓ 日本語\n", true},
		{"crlf", "a\r\nb\r\n", true},
		{"nul", "a\x00b", false},
		{"invalid utf-8", "a\xffb", false},
		{"latin-1", "caf\xe9\n", false},
		{"utf-16 with bom", "\xff\xfeh\x00i\x00", false},
		{"character cut by the window", long + "é", true},
		{"character cut by the end of data", "abc\xc3", false},
		{"invalid byte at the end of the window", long + "\xff" + "tail", false},
		{"nul after the window", long + "aa\x00", true},
		{"invalid after the window", long + "aa\xff", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := diff.IsText([]byte(tc.data)); got != tc.want {
				t.Errorf("IsText(%q...) = %v, want %v", tc.data[:min(len(tc.data), 20)], got, tc.want)
			}
		})
	}
}
