package watch_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/filecast/filecast/events/hub/hubtest"
)

// BenchmarkWatcher_Burst measures how many file changes per second go
// from a write on tmpfs to an event every subscriber can read: a burst of
// 20,000 writes to distinct known files, waited for in the hub's ring,
// complete and in order. "serial" appends one event at a time, "batched"
// lets the watcher append a burst in batches.
func BenchmarkWatcher_Burst(b *testing.B) {
	const files = 20000
	for _, bc := range []struct {
		name   string
		serial bool
	}{{"serial", true}, {"batched", false}} {
		b.Run(bc.name, func(b *testing.B) {
			if _, err := os.Stat("/dev/shm"); err != nil {
				b.Skip("no /dev/shm")
			}
			dir, err := os.MkdirTemp("/dev/shm", "filecast-bench-")
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() { _ = os.RemoveAll(dir) })
			paths := make([]string, files)
			for i := range paths {
				paths[i] = filepath.Join(dir, fmt.Sprintf("f%05d.txt", i))
				if err := os.WriteFile(paths[i], []byte(fmt.Sprintf("%012d", 0)), 0o644); err != nil {
					b.Fatal(err)
				}
			}
			st := hubtest.Start(b, hubtest.Options{Dirs: []string{dir}, NoLock: true, SerialAppend: bc.serial})
			ctx := context.Background()
			page, err := st.Hub.Changes(ctx, "docs", 0, 1, 0)
			if err != nil {
				b.Fatal(err)
			}
			head := page.Next
			var total time.Duration
			b.ReportAllocs()
			for round := 1; b.Loop(); round++ {
				content := []byte(fmt.Sprintf("%012d", round))
				start := time.Now()
				for _, p := range paths {
					f, err := os.OpenFile(p, os.O_WRONLY, 0)
					if err != nil {
						b.Fatal(err)
					}
					if _, err := f.WriteAt(content, 0); err != nil {
						b.Fatal(err)
					}
					if err := f.Close(); err != nil {
						b.Fatal(err)
					}
				}
				seen := map[string]bool{}
				deadline := time.Now().Add(hubtest.Timeout * 3)
				for len(seen) < files {
					if time.Now().After(deadline) {
						b.Fatalf("only %d of %d changes arrived", len(seen), files)
					}
					page, err := st.Hub.Changes(ctx, "docs", head, 1000, time.Second)
					if err != nil {
						b.Fatal(err)
					}
					for _, ev := range page.Events {
						if ev.Seq != head+1 {
							b.Fatalf("seq %d after %d", ev.Seq, head)
						}
						head = ev.Seq
						if ev.SHA256 == "" || seen[ev.Path] {
							b.Fatalf("unexpected event %+v", ev)
						}
						seen[ev.Path] = true
					}
				}
				total += time.Since(start)
			}
			b.ReportMetric(float64(files*b.N)/total.Seconds(), "changes/s")
		})
	}
}
