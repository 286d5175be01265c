package diff_test

import (
	"bytes"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/filecast/filecast/events/diff"
)

var (
	sourceOnce sync.Once
	source     []byte
)

// megabyte returns 1 MB of Go source: this repository's own files, over
// and over.
func megabyte(tb testing.TB) []byte {
	tb.Helper()
	sourceOnce.Do(func() {
		var all []byte
		_ = filepath.WalkDir("../..", func(path string, d fs.DirEntry, err error) error {
			if err == nil && !d.IsDir() && strings.HasSuffix(path, ".go") {
				if b, err := os.ReadFile(path); err == nil {
					all = append(all, b...)
				}
			}
			return nil
		})
		for len(source) < 1<<20 && len(all) > 0 {
			source = append(source, all...)
		}
		source = source[:bytes.LastIndexByte(source[:1<<20], '\n')+1]
	})
	if len(source) == 0 {
		tb.Fatal("no Go source found under ../..")
	}
	return source
}

// everyNth changes every nth line of f.
func everyNth(f []byte, n int) []byte {
	lines := bytes.SplitAfter(f, []byte("\n"))
	for i := n / 2; i < len(lines); i += n {
		lines[i] = append([]byte("// changed\t"), lines[i]...)
	}
	return bytes.Join(lines, nil)
}

// BenchmarkUnified diffs a 1 MB source file against versions of it.
func BenchmarkUnified(b *testing.B) {
	old := megabyte(b)
	mid := bytes.IndexByte(old[len(old)/2:], '\n') + len(old)/2 + 1
	other := bytes.ToUpper(old) // few lines in common
	lines := bytes.SplitAfter(old, []byte("\n"))
	rand.New(rand.NewPCG(1, 1)).Shuffle(len(lines), func(i, j int) { lines[i], lines[j] = lines[j], lines[i] })
	shuffled := bytes.Join(lines, nil) // every line in common, in another order
	for _, bc := range []struct {
		name     string
		old, new []byte
	}{
		{"one-line-changed", old, bytes.Join([][]byte{old[:mid], []byte("\tx := 1 // a new line\n"), old[mid:]}, nil)},
		{"append", old, append(old[:len(old):len(old)], "func appended() {}\n"...)},
		{"every-1000th-line", old, everyNth(old, 1000)},
		{"every-100th-line", old, everyNth(old, 100)},
		{"every-10th-line", old, everyNth(old, 10)},
		{"created", nil, old},
		{"emptied", old, nil},
		{"upper-cased", old, other},
		{"shuffled", old, shuffled},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(max(len(bc.old), len(bc.new))))
			var r diff.Result
			for b.Loop() {
				r = diff.Unified(bc.old, bc.new, diff.Options{})
			}
			b.ReportMetric(float64(r.Added+r.Deleted), "lines-changed")
			b.ReportMetric(float64(len(r.Text)), "text-bytes")
		})
	}
}

func BenchmarkIsText(b *testing.B) {
	data := megabyte(b)
	b.ReportAllocs()
	for b.Loop() {
		if !diff.IsText(data) {
			b.Fatal("source is not text")
		}
	}
}
