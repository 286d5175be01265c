package delta_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/filecast/filecast/events"
	"github.com/filecast/filecast/events/delta"
)

// megabyte is 1 MB of lines of text.
func megabyte() string {
	var b strings.Builder
	for i := 0; b.Len() < 1<<20; i++ {
		fmt.Fprintf(&b, "line %d of a file of a megabyte, with some text after the number\n", i)
	}
	return b.String()
}

// BenchmarkEvents_1MB is the diff of a one-line change in a 1 MB file as
// list_changes with diff true computes it, from contents in memory: what
// delta adds to reading them from the store (see events/hub's
// BenchmarkHub_Diff1MB for both).
func BenchmarkEvents_1MB(b *testing.B) {
	src := source(b)
	old := megabyte()
	ev := update(src, old, strings.Replace(old, "line 7000 of", "line 7000 (edited) of", 1))
	evs := []events.Event{ev}
	b.SetBytes(ev.Size)
	b.ReportAllocs()
	for b.Loop() {
		d, err := delta.Events(b.Context(), src, evs, delta.Options{})
		if err != nil || !strings.Contains(d[0].Text, "+line 7000 (edited)") {
			b.Fatalf("Events = %+v, %v", d, err)
		}
	}
}

// BenchmarkSince_1MB is read_file with since on a 1 MB file changed in one
// line: the earlier content from memory, the file's own given.
func BenchmarkSince_1MB(b *testing.B) {
	src := source(b)
	old := megabyte()
	sha := src.PutContent(ws, []byte(old))
	cur := []byte(strings.Replace(old, "line 7000 of", "line 7000 (edited) of", 1))
	b.SetBytes(int64(len(cur)))
	b.ReportAllocs()
	for b.Loop() {
		d, err := delta.Since(b.Context(), src, ws, sha, cur, delta.Options{MaxBytes: 256 << 10})
		if err != nil || !strings.Contains(d.Text, "+line 7000 (edited)") {
			b.Fatalf("Since = %+v, %v", d, err)
		}
	}
}
