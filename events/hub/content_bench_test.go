package hub_test

import (
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/filecast/filecast/events"
	"github.com/filecast/filecast/events/content"
	"github.com/filecast/filecast/events/delta"
	"github.com/filecast/filecast/events/eventstest"
	"github.com/filecast/filecast/events/hub/hubtest"
)

// BenchmarkHub_Change measures one change of a file on disk, from the
// write to its event in the log, with and without the content store:
// cpu-µs/change is the whole process's CPU (watcher, hub, JetStream, the
// store's writers and the retirement of the content replaced), per
// change, one change at a time.
func BenchmarkHub_Change(b *testing.B) {
	for _, size := range []int{16, 6500} {
		for _, store := range []bool{false, true} {
			name := fmt.Sprintf("%dB/store=%v", size, store)
			b.Run(name, func(b *testing.B) {
				opts := hubtest.Options{}
				if store {
					opts.Contents = &content.Options{}
				}
				st := hubtest.Start(b, opts)
				line := strings.Repeat("x", 60) + "\n"
				body := strings.Repeat(line, max(size/len(line), 1))
				head := st.Head(b, "docs")
				i := 0
				start := eventstest.CPUTime(b)
				for b.Loop() {
					rel := fmt.Sprintf("f%02d.txt", i%20)
					data := fmt.Sprintf("%s%d\n", body, i)
					i++
					if err := os.WriteFile(st.Path("docs", rel), []byte(data), 0o644); err != nil {
						b.Fatal(err)
					}
					for {
						ev := st.Next(b, "docs", head)
						head = ev.Seq
						if ev.SHA256 == sum(data) {
							break
						}
					}
				}
				if st.Contents != nil {
					if err := st.Contents.Flush(b.Context()); err != nil {
						b.Fatal(err)
					}
				}
				b.ReportMetric(float64((eventstest.CPUTime(b)-start).Microseconds())/float64(b.N), "cpu-µs/change")
			})
		}
	}
}

// BenchmarkHub_Diff1MB is the diff of a one-line change in a 1 MB file as
// list_changes gives it: both contents read back from the content store
// through the hub (JetStream, S2, sha256 check), then compared.
func BenchmarkHub_Diff1MB(b *testing.B) {
	st := hubtest.Start(b, hubtest.Options{Contents: &content.Options{MaxFileSize: 2 << 20}})
	var sb strings.Builder
	for i := 0; sb.Len() < 1<<20; i++ {
		fmt.Fprintf(&sb, "line %d of a file of a megabyte, with some text after the number\n", i)
	}
	old := sb.String()
	cur := strings.Replace(old, "line 7000 of", "line 7000 (edited) of", 1)
	change(b, st, "docs", "big.txt", old)
	ev := change(b, st, "docs", "big.txt", cur)
	if err := st.Contents.Flush(b.Context()); err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(cur)))
	b.ReportAllocs()
	start := eventstest.CPUTime(b)
	for b.Loop() {
		d, err := delta.Events(b.Context(), st.Hub, []events.Event{ev}, delta.Options{})
		if err != nil || !strings.Contains(d[0].Text, "+line 7000 (edited)") {
			b.Fatalf("diff = %+v, %v", d, err)
		}
	}
	b.ReportMetric(float64((eventstest.CPUTime(b)-start).Microseconds())/float64(b.N), "cpu-µs/op")
}
