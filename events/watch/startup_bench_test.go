package watch_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/filecast/filecast/events/watch"
	"github.com/filecast/filecast/events/workspace"
)

// BenchmarkWatcher_StartupIndex measures the time from Run to Ready on a
// workspace of 100,000 small files in 100 folders on /dev/shm, with no
// persisted index (a first start: every file is read and hashed) and then
// with the index the first start saved. The files are created once, outside
// the timing. Run with -benchtime 1x; each iteration starts both watchers.
func BenchmarkWatcher_StartupIndex(b *testing.B) {
	const dirs, perDir = 100, 1000
	if _, err := os.Stat("/dev/shm"); err != nil {
		b.Skip("no /dev/shm")
	}
	base, err := os.MkdirTemp("/dev/shm", "filecast-startup-")
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = os.RemoveAll(base) })
	root := filepath.Join(base, "ws")
	for d := range dirs {
		sub := filepath.Join(root, fmt.Sprintf("d%03d", d))
		if err := os.MkdirAll(sub, 0o755); err != nil {
			b.Fatal(err)
		}
		for i := range perDir {
			if err := os.WriteFile(filepath.Join(sub, fmt.Sprintf("f%04d.md", i)), []byte(fmt.Sprintf("file %d/%d\n", d, i)), 0o644); err != nil {
				b.Fatal(err)
			}
		}
	}
	ws, err := workspace.Parse("docs=" + root)
	if err != nil {
		b.Fatal(err)
	}
	files := float64(dirs * perDir)
	start := func(index string) time.Duration {
		w, err := watch.New(watch.Options{Workspace: ws, IndexPath: index}, &sink{})
		if err != nil {
			b.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		done := make(chan error, 1)
		t0 := time.Now()
		go func() { done <- w.Run(ctx) }()
		select {
		case <-w.Ready():
		case err := <-done:
			b.Fatalf("Run returned before Ready: %v", err)
		case <-time.After(5 * time.Minute):
			b.Fatal("not ready after 5 minutes")
		}
		took := time.Since(t0)
		if got, _ := w.Files(""); len(got) != int(files) {
			b.Fatalf("indexed %d files, want %d", len(got), int(files))
		}
		cancel()
		if err := <-done; !errors.Is(err, context.Canceled) {
			b.Fatalf("Run: %v", err)
		}
		return took
	}
	b.ReportAllocs()
	for b.Loop() {
		index := filepath.Join(base, "state", "index.json")
		_ = os.RemoveAll(filepath.Dir(index))
		cold := start(index)
		warm := start(index)
		b.ReportMetric(cold.Seconds(), "s/index")
		b.ReportMetric(files/cold.Seconds(), "files/s")
		b.ReportMetric(warm.Seconds(), "s/warm-index")
	}
}
