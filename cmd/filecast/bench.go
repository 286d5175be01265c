package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/filecast/filecast/cmd/filecast/internal/bench"
)

// benchConfig is "filecast bench": the end-to-end benchmark scenarios.
type benchConfig struct {
	cfg      bench.Config
	scenario string
	runs     int
	verbose  bool
	binary   string
	fs       *flag.FlagSet
	given    map[string]bool // the flags given; set by Validate
}

func (c *benchConfig) flags(fs *flag.FlagSet) {
	c.fs = fs
	fs.StringVar(&c.scenario, "scenario", "latency", "what to measure: "+strings.Join(bench.Scenarios, ", ")+", or all")
	fs.IntVar(&c.cfg.Sessions, "sessions", 1, "MCP sessions, each subscribed and long-polling list_changes (with --stdio: one filecast mcp process each, sharing one hub)")
	fs.IntVar(&c.cfg.Rate, "rate", 1000, "file writes per second (throughput: as fast as possible unless given; ramp: the first step)")
	fs.DurationVar(&c.cfg.Duration, "duration", 5*time.Second, "how long to write at --rate (ramp: each step, default 2s)")
	fs.IntVar(&c.cfg.Files, "files", 100, "distinct files written round-robin (throughput: default 1000; startup: workspace size, default 100000; mixed, ramp: files at the start, default 1000 and 10000)")
	fs.StringVar(&c.cfg.Tree, "tree", "", "startup: index this folder (only read, e.g. a checkout) instead of a generated workspace")
	fs.IntVar(&c.cfg.FileSize, "file-size", 0, "startup: bytes of source-like text in each file of the workspace (default a dozen bytes)")
	fs.IntVar(&c.cfg.Changes, "changes", 0, "throughput: writes (default 25000); checkout: files the checkout changes (default 20000); webhooks: burst writes (default 5000)")
	fs.BoolVar(&c.cfg.Stdio, "stdio", false, "sessions over stdio instead of streamable HTTP (remote always uses stdio)")
	fs.StringVar(&c.cfg.Dir, "dir", "", "where to create workspaces and state (e.g. /dev/shm for tmpfs); default the temp folder")
	fs.StringVar(&c.binary, "binary", "", "the filecast binary to measure (default this one): compares builds with the same benchmark")
	fs.IntVar(&c.runs, "runs", 3, "repeat each scenario and report medians")
	fs.BoolVar(&c.verbose, "v", false, "copy the filecast processes' stderr to this stderr and print every run")
	fs.IntVar(&c.cfg.MaxRate, "max-rate", 256000, "ramp: the highest rate tried")
	fs.BoolVar(&c.cfg.NoWatchman, "no-watchman", false, "mixed, ramp: leave watchman out even when it is installed")
	fs.Var((*listFlag)(&c.cfg.Flags), "mcp-flag", "pass this flag to the filecast process under test (repeatable; the hub in remote and webhooks, every mcp process with --stdio --sessions N), e.g. --mcp-flag=--cpuprofile=cpu.out")
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), help("bench"), "Flags:\n")
		fs.PrintDefaults()
	}
}

// Validate checks the flags and finds this binary.
func (c *benchConfig) Validate(e *env) error {
	exe, err := os.Executable()
	if err != nil {
		return fmt.Errorf("find own binary: %w", err)
	}
	c.cfg.Binary = exe
	if c.binary != "" {
		c.cfg.Binary = c.binary
	}
	if c.verbose {
		c.cfg.Log = e.stderr
	}
	c.runs = max(c.runs, 1)
	c.given = map[string]bool{}
	if c.fs != nil {
		c.fs.Visit(func(f *flag.Flag) { c.given[f.Name] = true })
	}
	return nil
}

// Run runs the scenarios and prints their tables.
func (c *benchConfig) Run(ctx context.Context, e *env) error {
	scenarios := []string{c.scenario}
	if c.scenario == "all" {
		scenarios = bench.Scenarios
	}
	for _, s := range scenarios {
		cfg := c.cfg
		// Defaults that differ by scenario apply unless the flag was given.
		if !c.given["files"] && (s == "startup" || s == "throughput" || s == "mixed" || s == "ramp") {
			cfg.Files = 0
		}
		if !c.given["duration"] && s == "ramp" {
			cfg.Duration = 0
		}
		if !c.given["rate"] && s == "throughput" {
			cfg.Rate = 0
		}
		var results []bench.Result
		for i := range c.runs {
			res, err := bench.Run(ctx, s, cfg)
			if err != nil {
				return err
			}
			if res.Skipped != "" {
				results = []bench.Result{res}
				break
			}
			if c.verbose && c.runs > 1 {
				fmt.Fprintf(e.stdout, "run %d of %d\n", i+1, c.runs)
				res.Print(e.stdout)
				fmt.Fprintln(e.stdout)
			}
			results = append(results, res)
		}
		bench.Median(results).Print(e.stdout)
		fmt.Fprintln(e.stdout)
	}
	return nil
}
