// Package bench is filecast's own end-to-end benchmark: it starts the
// filecast binary as a user would, drives it through its real interfaces
// (MCP over stdio or streamable HTTP, the hub's HTTP API, webhooks) and
// measures what an agent or a service sees, beside a bare fsnotify watcher
// measured in the same run as the floor.
//
//	res, err := bench.Run(ctx, "latency", bench.Config{Binary: "filecast", Sessions: 10, Duration: 5 * time.Second})
//	if err != nil { ... }
//	res.Print(os.Stdout)
//
// The scenarios (see [Scenarios]) are:
//
//   - latency: write → list_changes and write → notifications/resources/updated
//     through the embedded hub, over stdio or streamable HTTP sessions;
//   - mixed: creates, modifies, deletes and moves at a steady mixed rate,
//     each kind's latency beside the bare fsnotify watcher and watchman
//     (when installed), and the CPU per change of filecast and watchman;
//   - ramp: the mixed workload at a rate that doubles each step, until a
//     receiver loses a change or its p99 passes 50 ms;
//   - remote: the same through "filecast hub" and "filecast mcp --hub";
//   - throughput: Changes writes as fast as possible, checked complete and in
//     order in every session;
//   - startup: spawn → initialize and spawn → complete index on a large
//     workspace, and spawn → initialize on a small one;
//   - checkout: a git checkout that changes Changes files, followed by a
//     session paging list_changes;
//   - webhooks: signed deliveries to a receiver in this process.
//
// Every figure comes from the processes' real interfaces and /proc (CPU
// time and peak RSS, so those two are Linux only). Run ends every process
// and goroutine it starts before it returns; a Config may be reused.
package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
	"strings"
	"sync"
	"time"
)

// Scenarios lists the scenario names Run accepts, in the order "all" runs them.
var Scenarios = []string{"latency", "mixed", "remote", "throughput", "ramp", "startup", "checkout", "webhooks"}

// ErrScenario reports a scenario name Run does not know.
var ErrScenario = errors.New("bench: unknown scenario")

// Config says what to measure. Zero values take the scenario's defaults.
type Config struct {
	Binary   string        // the filecast binary to start
	Dir      string        // where to make workspaces (e.g. /dev/shm for tmpfs); "" = os.TempDir()
	Sessions int           // MCP sessions (default 1); with Stdio, one "filecast mcp" process per session
	Rate     int           // file writes per second; 0 = 1000, or as fast as possible for throughput
	Duration time.Duration // how long to write at Rate (default 5s)
	Files    int           // files written round-robin (default 100, throughput 1,000); startup: workspace size (default 100,000)
	FileSize int           // startup: bytes of source-like text per file of the workspace; 0 = a dozen bytes
	Tree     string        // startup: index this folder (left as it is) instead of a generated workspace
	Changes  int           // throughput: writes (25,000); checkout: changed files (20,000); webhooks: burst writes (5,000)
	Stdio    bool          // sessions over stdio instead of streamable HTTP
	Log      io.Writer     // the filecast processes' stderr, written by one process at a time; nil discards it
	Flags    []string      // extra flags for the filecast process under test, e.g. --cpuprofile FILE

	MaxRate    int  // ramp: the highest rate tried (default 256,000/s)
	NoWatchman bool // mixed, ramp: leave watchman out even when it is installed
}

func (c Config) withDefaults(scenario string) Config {
	if c.Sessions <= 0 {
		c.Sessions = 1
	}
	if c.Duration <= 0 {
		c.Duration = 5 * time.Second
		if scenario == "ramp" {
			c.Duration = 2 * time.Second
		}
	}
	if c.MaxRate <= 0 {
		c.MaxRate = 256_000
	}
	if c.Rate <= 0 && scenario != "throughput" {
		c.Rate = 1000
	}
	if c.Files <= 0 {
		c.Files = 100
		switch scenario {
		case "startup":
			c.Files = 100_000
		case "throughput", "mixed":
			c.Files = 1000
		case "ramp":
			c.Files = 10_000
		}
	}
	if c.Changes <= 0 {
		switch scenario {
		case "throughput":
			c.Changes = 25_000
		case "checkout":
			c.Changes = 20_000
		default:
			c.Changes = 5_000
		}
	}
	return c
}

// Run performs one run of a scenario; it ends every process it starts.
func Run(ctx context.Context, scenario string, c Config) (Result, error) {
	c = c.withDefaults(scenario)
	if c.Log != nil {
		c.Log = &syncWriter{w: c.Log}
	}
	if c.Binary == "" {
		return Result{}, errors.New("bench: no filecast binary given")
	}
	var (
		r   Result
		err error
	)
	switch scenario {
	case "latency":
		r, err = runLatency(ctx, c, false)
	case "mixed":
		r, err = runMixed(ctx, c)
	case "ramp":
		r, err = runRamp(ctx, c)
	case "remote":
		r, err = runLatency(ctx, c, true)
	case "throughput":
		r, err = runThroughput(ctx, c)
	case "startup":
		r, err = runStartup(ctx, c)
	case "checkout":
		r, err = runCheckout(ctx, c)
	case "webhooks":
		r, err = runWebhooks(ctx, c)
	default:
		return Result{}, fmt.Errorf("%w %q (want one of %s or all)", ErrScenario, scenario, strings.Join(Scenarios, ", "))
	}
	r.Scenario = scenario
	if err != nil {
		return r, fmt.Errorf("scenario %s: %w", scenario, err)
	}
	return r, nil
}

// syncWriter serialises the writes of several processes' stderr.
type syncWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (s *syncWriter) Write(b []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.Write(b)
}

// Result is what one run of a scenario measured.
type Result struct {
	Scenario string
	Summary  string   // what ran, in one line
	Rows     []Row    // latency distributions
	Figures  []Figure // single figures: rates, CPU, memory, counts
	Notes    []string // how figures were counted, caveats
	Skipped  string   // why the scenario did not run ("" when it ran)
}

// Row is one latency distribution of a Result.
type Row struct {
	Name  string
	Stats Stats
}

// Figure is one number of a Result; Worst figures (losses, errors) are
// combined across runs by their maximum, the others by their median.
type Figure struct {
	Name  string
	Value float64
	Unit  string // "µs", "ms", "/s", "MiB", "" for a count
	Worst bool
}

// Stats summarises latencies.
type Stats struct {
	N                  int
	P50, P90, P99, Max time.Duration
}

func summarise(d []time.Duration) Stats {
	if len(d) == 0 {
		return Stats{}
	}
	d = slices.Clone(d)
	slices.Sort(d)
	at := func(q float64) time.Duration { return d[min(len(d)-1, int(q*float64(len(d))))] }
	return Stats{N: len(d), P50: at(0.50), P90: at(0.90), P99: at(0.99), Max: d[len(d)-1]}
}

// Row returns the row called name, and whether there is one.
func (r Result) Row(name string) (Stats, bool) {
	for _, x := range r.Rows {
		if x.Name == name {
			return x.Stats, true
		}
	}
	return Stats{}, false
}

// Figure returns the figure called name, and whether there is one.
func (r Result) Figure(name string) (float64, bool) {
	for _, f := range r.Figures {
		if f.Name == name {
			return f.Value, true
		}
	}
	return 0, false
}

func (r *Result) row(name string, d []time.Duration) {
	r.Rows = append(r.Rows, Row{Name: name, Stats: summarise(d)})
}

func (r *Result) fig(name string, v float64, unit string) {
	r.Figures = append(r.Figures, Figure{Name: name, Value: v, Unit: unit})
}

func (r *Result) worst(name string, v float64) {
	r.Figures = append(r.Figures, Figure{Name: name, Value: v, Worst: true})
}

func (r *Result) note(format string, args ...any) {
	r.Notes = append(r.Notes, fmt.Sprintf(format, args...))
}

// Print writes the result as a table.
func (r Result) Print(w io.Writer) {
	fmt.Fprintf(w, "== %s: %s\n", r.Scenario, r.Summary)
	if r.Skipped != "" {
		fmt.Fprintf(w, "skipped: %s\n", r.Skipped)
		return
	}
	if len(r.Rows) > 0 {
		width := 28
		for _, x := range r.Rows {
			width = max(width, len([]rune(x.Name)))
		}
		fmt.Fprintf(w, "%-*s %8s %10s %10s %10s %10s\n", width, "path", "n", "p50", "p90", "p99", "max")
		for _, x := range r.Rows {
			s := x.Stats
			fmt.Fprintf(w, "%-*s %8d %10s %10s %10s %10s\n", width+len(x.Name)-len([]rune(x.Name)), x.Name, s.N,
				dur(s.P50), dur(s.P90), dur(s.P99), dur(s.Max))
		}
	}
	for _, f := range r.Figures {
		fmt.Fprintf(w, "  %s: %s\n", f.Name, f.format())
	}
	for _, n := range r.Notes {
		fmt.Fprintf(w, "  note: %s\n", n)
	}
}

func (f Figure) format() string {
	switch {
	case f.Unit == "":
		return fmt.Sprintf("%.0f", f.Value)
	case f.Unit == "/s" || f.Unit == "µs":
		return fmt.Sprintf("%.0f %s", f.Value, f.Unit)
	}
	return fmt.Sprintf("%.1f %s", f.Value, f.Unit)
}

// dur formats a latency in µs below 10 ms, in ms above.
func dur(d time.Duration) string {
	if d < 10*time.Millisecond && d > -10*time.Millisecond {
		return fmt.Sprintf("%.0fµs", float64(d)/float64(time.Microsecond))
	}
	return fmt.Sprintf("%.1fms", float64(d)/float64(time.Millisecond))
}

func micros(d time.Duration) float64 { return float64(d) / float64(time.Microsecond) }
func millis(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
func mib(b int64) float64            { return float64(b) / (1 << 20) }

// Median combines the results of several runs of one scenario: each
// latency figure and each figure is the median over the runs, except Worst
// figures, which are the maximum. Rows and figures missing from some runs
// are combined over the runs that have them.
func Median(runs []Result) Result {
	if len(runs) == 0 {
		return Result{}
	}
	out := Result{Scenario: runs[0].Scenario, Summary: runs[0].Summary, Notes: runs[0].Notes, Skipped: runs[0].Skipped}
	if len(runs) > 1 {
		out.Summary = fmt.Sprintf("median of %d runs; %s", len(runs), out.Summary)
	}
	for _, x := range runs[0].Rows {
		var n []int
		var p50, p90, p99, mx []time.Duration
		for _, r := range runs {
			if s, ok := r.Row(x.Name); ok {
				n = append(n, s.N)
				p50, p90, p99, mx = append(p50, s.P50), append(p90, s.P90), append(p99, s.P99), append(mx, s.Max)
			}
		}
		out.Rows = append(out.Rows, Row{Name: x.Name, Stats: Stats{N: median(n), P50: median(p50), P90: median(p90), P99: median(p99), Max: median(mx)}})
	}
	for _, f := range runs[0].Figures {
		var v []float64
		for _, r := range runs {
			if x, ok := r.Figure(f.Name); ok {
				v = append(v, x)
			}
		}
		if f.Worst {
			f.Value = slices.Max(v)
		} else {
			f.Value = median(v)
		}
		out.Figures = append(out.Figures, f)
	}
	return out
}

func median[T int | float64 | time.Duration](v []T) T {
	if len(v) == 0 {
		return 0
	}
	v = slices.Clone(v)
	slices.Sort(v)
	return v[len(v)/2]
}

// perSecond returns n per d, 0 when d is not positive.
func perSecond(n int, d time.Duration) float64 {
	if d <= 0 {
		return 0
	}
	return math.Round(float64(n) / d.Seconds())
}
