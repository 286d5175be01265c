package bench_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/filecast/filecast/cmd/filecast/internal/bench"
	"github.com/filecast/filecast/events/eventstest"
)

// binary is the filecast binary built once for the tests.
var binary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "filecast-bench-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binary = filepath.Join(dir, "filecast")
	cmd := exec.Command("go", "build", "-o", binary, "../..")
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "build filecast:", err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// TestRun runs every scenario at a tiny size against the built binary and
// checks that each measured what it should and lost nothing.
func TestRun(t *testing.T) {
	tiny := bench.Config{Rate: 200, Duration: 200 * time.Millisecond, Files: 20}
	tests := []struct {
		scenario string
		cfg      func(c bench.Config) bench.Config
		rows     []string // rows that must have samples
		figures  []string // figures that must be there
	}{
		{"latency", func(c bench.Config) bench.Config { c.Sessions = 3; return c },
			[]string{"write → fsnotify (floor)", "write → list_changes", "write → resources/updated"},
			[]string{"filecast CPU per write", "filecast peak RSS (largest process)"}},
		{"latency", func(c bench.Config) bench.Config { c.Sessions = 2; c.Stdio = true; return c },
			[]string{"write → list_changes", "write → resources/updated"},
			[]string{"filecast peak RSS (sum of 2 processes)"}},
		{"mixed", func(c bench.Config) bench.Config { return c },
			[]string{"create → fsnotify (floor)", "create → list_changes", "modify → resources/updated", "delete → list_changes", "move → list_changes"},
			[]string{"changes/s issued"}},
		{"ramp", func(c bench.Config) bench.Config { c.MaxRate = 400; return c },
			[]string{"200/s → fsnotify (floor)", "200/s → list_changes"},
			[]string{"highest lossless rate with p99 ≤ 50 ms, fsnotify (floor)"}},
		{"remote", func(c bench.Config) bench.Config { return c },
			[]string{"write → list_changes", "write → resources/updated"},
			[]string{"filecast peak RSS (sum of 2 processes)"}},
		{"throughput", func(c bench.Config) bench.Config { c.Rate = 0; c.Changes = 400; c.Sessions = 2; return c },
			[]string{"write → list_changes"},
			[]string{"changes/s complete in every session (writes ÷ time to the last)"}},
		{"startup", func(c bench.Config) bench.Config { c.Files = 500; c.FileSize = 2000; return c },
			[]string{"spawn → initialize answered (10 files)", "spawn → index complete (10 files)"},
			[]string{"spawn → index complete (500 files, first start, fresh data folder)",
				"spawn → every file's content kept for diffs, in the background (first start)", "content store on disk per 10,000 files"}},
		{"checkout", func(c bench.Config) bench.Config { c.Changes = 200; return c },
			[]string{"checkout start → final state in list_changes"},
			[]string{"filecast peak RSS"}},
		{"webhooks", func(c bench.Config) bench.Config { c.Changes = 200; return c },
			[]string{"write → POST received (paced)", "event timestamp → POST (paced)"},
			[]string{"deliveries/s (burst: deliveries ÷ first write → last POST)"}},
	}
	for _, tt := range tests {
		name := tt.scenario
		cfg := tt.cfg(tiny)
		if cfg.Stdio {
			name += "/stdio"
		}
		t.Run(name, func(t *testing.T) {
			if tt.scenario == "checkout" {
				if _, err := exec.LookPath("git"); err != nil {
					t.Skip("git is not installed")
				}
			}
			cfg.Binary = binary
			cfg.Dir = t.TempDir()
			var log bytes.Buffer
			cfg.Log = &log
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			before := runtime.NumGoroutine()
			res, err := bench.Run(ctx, tt.scenario, cfg)
			if err != nil {
				t.Fatalf("Run: %v\nfilecast stderr:\n%s", err, log.String())
			}
			// Every goroutine Run started has ended (an exiting HTTP
			// connection may take a moment).
			if !eventstest.Poll(2*time.Second, func() bool { return runtime.NumGoroutine() <= before }) {
				buf := make([]byte, 1<<20)
				t.Fatalf("%d goroutines after Run, %d before:\n%s", runtime.NumGoroutine(), before, buf[:runtime.Stack(buf, true)])
			}
			rows := tt.rows
			if _, err := exec.LookPath("watchman"); err == nil && (tt.scenario == "mixed" || tt.scenario == "ramp") {
				rows = append(rows, map[string]string{"mixed": "delete → watchman", "ramp": "200/s → watchman"}[tt.scenario])
			}
			var out strings.Builder
			res.Print(&out)
			t.Log("\n" + out.String())
			for _, row := range rows {
				if s, ok := res.Row(row); !ok || s.N == 0 || s.P50 <= 0 {
					t.Errorf("row %q: %+v, present %v; want samples", row, s, ok)
				}
			}
			for _, f := range tt.figures {
				if v, ok := res.Figure(f); !ok || v <= 0 {
					t.Errorf("figure %q = %v, present %v; want > 0", f, v, ok)
				}
			}
			for _, f := range res.Figures {
				if f.Worst && f.Value != 0 {
					t.Errorf("%s = %v, want 0", f.Name, f.Value)
				}
			}
		})
	}
}

func TestRun_UnknownScenario(t *testing.T) {
	if _, err := bench.Run(context.Background(), "nope", bench.Config{Binary: binary}); err == nil {
		t.Fatal("Run accepted an unknown scenario")
	}
}

// TestMedian: latencies and figures are medians over runs, losses the worst run.
func TestMedian(t *testing.T) {
	run := func(p50 time.Duration, rate, lost float64) bench.Result {
		return bench.Result{Scenario: "x", Summary: "s",
			Rows:    []bench.Row{{Name: "a", Stats: bench.Stats{N: 10, P50: p50, P90: p50, P99: p50, Max: p50}}},
			Figures: []bench.Figure{{Name: "rate", Value: rate, Unit: "/s"}, {Name: "lost", Value: lost, Worst: true}}}
	}
	got := bench.Median([]bench.Result{run(3*time.Millisecond, 10, 0), run(1*time.Millisecond, 30, 2), run(2*time.Millisecond, 20, 0)})
	want := bench.Result{Scenario: "x", Summary: "median of 3 runs; s",
		Rows:    []bench.Row{{Name: "a", Stats: bench.Stats{N: 10, P50: 2 * time.Millisecond, P90: 2 * time.Millisecond, P99: 2 * time.Millisecond, Max: 2 * time.Millisecond}}},
		Figures: []bench.Figure{{Name: "rate", Value: 20, Unit: "/s"}, {Name: "lost", Value: 2, Worst: true}}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Median (-want +got):\n%s", diff)
	}
}
