package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"slices"
	"time"

	"github.com/filecast/filecast/bench"
)

// benchCmd is "filecast bench": the end-to-end latency benchmark.
type benchCmd struct {
	cfg  bench.Config
	runs int
}

func (c *benchCmd) flags(fs *flag.FlagSet) {
	fs.IntVar(&c.cfg.Sessions, "sessions", 1, "MCP sessions over streamable HTTP, each long-polling list_changes")
	fs.IntVar(&c.cfg.Rate, "rate", 1000, "file writes per second")
	fs.DurationVar(&c.cfg.Duration, "duration", 5*time.Second, "how long to write")
	fs.IntVar(&c.cfg.Files, "files", 100, "distinct files written round-robin")
	fs.BoolVar(&c.cfg.Stdio, "stdio", false, "one session over stdio instead of HTTP sessions")
	fs.StringVar(&c.cfg.Dir, "dir", "", "where to create the workspace (e.g. /dev/shm for tmpfs); default the temp folder")
	fs.IntVar(&c.runs, "runs", 3, "repeat the run and report medians")
	fs.Var((*listFlag)(&c.cfg.Flags), "mcp-flag", "pass this flag to the filecast mcp process under test (repeatable), e.g. --mcp-flag=--cpuprofile=cpu.out")
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), `Usage: filecast bench [--sessions N] [--rate R] [--duration D] [--stdio] [--dir DIR] [--runs N]

Starts this binary as "filecast mcp" on a fresh workspace, writes files at a
steady rate and reports write → agent latency (p50/p90/p99/max) beside a bare
fsnotify watcher measured in the same run.

Example:
  filecast bench --sessions 50 --rate 1000 --duration 5s --dir /dev/shm

Flags:
`)
		fs.PrintDefaults()
	}
}

func (c *benchCmd) run(ctx context.Context, e *env) error {
	exe, err := os.Executable()
	if err != nil {
		return fmt.Errorf("find own binary: %w", err)
	}
	c.cfg.Binary = exe
	if c.runs < 1 {
		c.runs = 1
	}
	var p50, p99, base50, base99 []time.Duration
	for i := range c.runs {
		res, err := bench.Run(ctx, c.cfg)
		if err != nil {
			return err
		}
		fmt.Fprintf(e.stdout, "run %d of %d\n", i+1, c.runs)
		res.Print(e.stdout)
		fmt.Fprintln(e.stdout)
		p50, p99 = append(p50, res.ToAgent.P50), append(p99, res.ToAgent.P99)
		base50, base99 = append(base50, res.Baseline.P50), append(base99, res.Baseline.P99)
	}
	med := func(d []time.Duration) string {
		slices.Sort(d)
		return fmt.Sprintf("%.0fµs", float64(d[len(d)/2])/float64(time.Microsecond))
	}
	fmt.Fprintf(e.stdout, "median of %d runs: write → list_changes p50 %s p99 %s; fsnotify floor p50 %s p99 %s\n",
		c.runs, med(p50), med(p99), med(base50), med(base99))
	return nil
}
