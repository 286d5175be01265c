//go:build unix

package watch_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/filecast/filecast/events/eventstest"
	"github.com/filecast/filecast/events/watch"
	"github.com/filecast/filecast/events/workspace"
)

// BenchmarkPoll_Idle2000 measures what polling costs while nothing
// changes: the CPU time (user and system, from getrusage) of one round
// over a tree of 2,000 files in 100 folders on the temporary folder's
// disk, and what share of a core that is at a 250 ms interval.
func BenchmarkPoll_Idle2000(b *testing.B) { benchPollIdle(b, 100, 20, 250*time.Millisecond) }

// BenchmarkPoll_Idle100k is BenchmarkPoll_Idle2000 for 100,000 files in
// 1,000 folders at the default 1 s interval. Run it with -benchtime 20x.
func BenchmarkPoll_Idle100k(b *testing.B) { benchPollIdle(b, 1000, 100, time.Second) }

func benchPollIdle(b *testing.B, dirs, perDir int, interval time.Duration) {
	root := filepath.Join(b.TempDir(), "ws")
	for d := range dirs {
		sub := filepath.Join(root, fmt.Sprintf("d%03d", d/10), fmt.Sprintf("e%03d", d))
		if err := os.MkdirAll(sub, 0o755); err != nil {
			b.Fatal(err)
		}
		for i := range perDir {
			if err := os.WriteFile(filepath.Join(sub, fmt.Sprintf("f%04d.go", i)), []byte(fmt.Sprintf("package p // %d/%d\n", d, i)), 0o644); err != nil {
				b.Fatal(err)
			}
		}
	}
	// Files written just now are hashed again until their mtime is
	// racyWindow old: let the tree age first, as a workspace has.
	old := time.Now().Add(-time.Hour)
	if err := filepath.WalkDir(root, func(p string, _ os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		return os.Chtimes(p, old, old)
	}); err != nil {
		b.Fatal(err)
	}
	ws, err := workspace.Parse("bench=" + root)
	if err != nil {
		b.Fatal(err)
	}
	w, err := watch.New(watch.Options{Workspace: ws, Watch: watch.Poll, PollInterval: time.Hour}, &sink{})
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	b.Cleanup(func() {
		cancel()
		if err := <-done; !errors.Is(err, context.Canceled) {
			b.Errorf("Run: %v", err)
		}
	})
	select {
	case <-w.Ready():
	case err := <-done:
		b.Fatalf("Run returned before Ready: %v", err)
	}
	if files, _ := w.Files(""); len(files) != dirs*perDir {
		b.Fatalf("indexed %d files, want %d", len(files), dirs*perDir)
	}
	// The first round lists every folder; later ones only stat.
	if err := w.PollRound(ctx); err != nil {
		b.Fatal(err)
	}
	cpu0, t0 := eventstest.CPUTime(b), time.Now()
	n := 0
	for b.Loop() {
		if err := w.PollRound(ctx); err != nil {
			b.Fatal(err)
		}
		n++
	}
	perRound := (eventstest.CPUTime(b) - cpu0) / time.Duration(n)
	wall := time.Since(t0) / time.Duration(n)
	// Rounds start an interval apart, or DutyFactor times their duration
	// when that is longer.
	period := max(interval, watch.DutyFactor*wall)
	b.ReportMetric(float64(perRound.Microseconds())/1000, "cpu-ms/round")
	b.ReportMetric(100*perRound.Seconds()/interval.Seconds(), "%core@"+interval.String())
	b.ReportMetric(100*perRound.Seconds()/period.Seconds(), "%core-scheduled")
	b.ReportMetric(period.Seconds(), "s/round-scheduled")
	b.ReportMetric(float64(perRound.Nanoseconds())/float64(dirs*perDir), "cpu-ns/file")
}
