package bench

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/sourcegraph/conc"
)

// drive is one paced or unpaced writing run against a fleet: what every
// session and the bare watcher heard, and what it cost.
type drive struct {
	l        *ledger
	f        *fleet
	base     *baseline
	writes   int
	writing  time.Duration // from the first write to the last
	complete time.Duration // from the first write until every session had every file's last write, or 0
	floor    time.Duration // the same for the bare watcher, or 0
	drained  bool          // every session got everything, notifications included, before the deadline
	cpu      time.Duration
	self     time.Duration // this process's CPU over the same span: the clients' own cost
	rss, all int64
}

// runDrive starts the fleet, writes (count writes at rate, or for
// c.Duration when count is 0) and waits for the sessions to hear of
// everything.
func runDrive(ctx context.Context, c Config, remote bool, rate, count int) (_ *drive, cleanup func(), err error) {
	base, root, data, err := makeBase(c)
	if err != nil {
		return nil, nil, err
	}
	cleanup = func() { os.RemoveAll(base) }
	defer func() {
		if err != nil {
			cleanup() // after the fleet has stopped: deferred calls run last first
		}
	}()
	names, err := flatFiles(root, c.Files)
	if err != nil {
		return nil, nil, err
	}
	d := &drive{l: newLedger(root, names)}
	d.f, err = startFleet(ctx, c, d.l, data, remote)
	if err != nil {
		return nil, nil, err
	}
	defer d.f.close()
	d.base, err = newBaseline(d.l, []string{root})
	if err != nil {
		return nil, nil, err
	}

	runCtx, cancel := context.WithCancel(ctx)
	var wg conc.WaitGroup
	wg.Go(func() { d.base.run(runCtx) })
	for _, s := range d.f.sessions {
		wg.Go(func() {
			s.consume(runCtx, func(p *changesPage, at time.Time) {
				for _, e := range p.Events {
					d.l.see(s.changes, e.Path, e.SHA256, e.Timestamp, at)
				}
			})
		})
	}
	stop := func() {
		cancel()
		wg.Wait()
	}

	cpu0, self0 := d.f.procs.cpu(), selfCPU()
	start := time.Now()
	d.writing, err = d.l.writeAt(ctx, rate, count, c.Duration)
	d.writes = d.l.writes()
	if err != nil {
		stop()
		return nil, nil, err
	}
	// Wait for the last events: 10 s, plus 1 ms per write beyond 10,000.
	wait := 10*time.Second + time.Duration(max(0, d.writes-10_000))*time.Millisecond
	allSeen := func() bool {
		for _, s := range d.f.sessions {
			if !d.l.complete(s.changes) {
				return false
			}
		}
		return true
	}
	floorDone := func() bool { return d.l.notified(d.base.h) }
	deadline := time.Now().Add(wait)
	for time.Now().Before(deadline) && ctx.Err() == nil {
		if d.complete == 0 && allSeen() {
			d.complete = time.Since(start)
		}
		if d.floor == 0 && floorDone() {
			d.floor = time.Since(start)
		}
		notified := true
		for _, s := range d.f.sessions {
			notified = notified && d.l.notified(s.notes)
		}
		if d.complete > 0 && d.floor > 0 && notified {
			d.drained = true
			break
		}
		time.Sleep(2 * time.Millisecond)
	}
	d.cpu, d.self = d.f.procs.cpu()-cpu0, selfCPU()-self0
	d.rss, d.all = d.f.procs.peakRSS()
	stop()
	return d, cleanup, nil
}

// sessionFigures adds what every run reports about its sessions: losses,
// order, duplicates, overflows, and the processes' CPU and memory.
func (d *drive) sessionFigures(r *Result) {
	var lost, incomplete, coalesced, dup, disorder, unknown, overflows, nerr int
	var notes, missing, extra, noteCoalesced int
	for _, s := range d.f.sessions {
		t := d.l.tally(s.changes)
		lost, incomplete, coalesced = lost+t.lost, incomplete+t.incomplete, coalesced+t.coalesced
		du, di, un, _, _ := d.l.counts(s.changes)
		dup, disorder, unknown = dup+du, disorder+di, unknown+un
		_, _, ex, n, co := d.l.counts(s.notes)
		notes, extra, noteCoalesced = notes+n, extra+ex, noteCoalesced+co
		missing += d.l.uncovered(s.notes)
		overflows += s.overflows
		nerr += s.nerr
	}
	r.worst("lost writes (list_changes, all sessions)", float64(lost))
	r.worst("files missing their last write (list_changes)", float64(incomplete))
	r.worst("events out of order per file", float64(disorder))
	r.worst("duplicate events", float64(dup))
	r.worst("files whose last write was never notified", float64(missing))
	r.worst("overflowed list_changes results", float64(overflows))
	r.worst("failed list_changes calls", float64(nerr))
	r.fig("writes coalesced in list_changes (later write seen)", float64(coalesced), "")
	r.fig("events for content not written by the bench", float64(unknown), "")
	r.fig("resources/updated notifications", float64(notes), "")
	r.fig("writes coalesced into a later notification", float64(noteCoalesced), "")
	r.fig("notifications covering no new write", float64(extra), "")
	if d.cpu > 0 && d.writes > 0 {
		r.fig("filecast CPU per write", micros(d.cpu/time.Duration(d.writes)), "µs")
		r.fig("filecast CPU over the run", millis(d.cpu), "ms")
		r.fig("benchmark's own CPU over the run (clients, watcher, writer)", millis(d.self), "ms")
	}
	if d.rss > 0 {
		r.fig("filecast peak RSS (largest process)", mib(d.rss), "MiB")
		if len(d.f.procs) > 1 {
			r.fig(fmt.Sprintf("filecast peak RSS (sum of %d processes)", len(d.f.procs)), mib(d.all), "MiB")
		}
	}
	if !d.drained {
		r.note("not every session heard of every write within the drain deadline")
	}
	r.note("a write is lost when a session never saw it nor a later write of the same file; " +
		"a notification covers every write of its file issued before it arrived")
}

func mode(c Config, remote bool) string {
	switch {
	case remote:
		return fmt.Sprintf("filecast hub + %d × filecast mcp --hub (stdio)", c.Sessions)
	case c.Stdio:
		return fmt.Sprintf("%d × filecast mcp --root over stdio on one data folder", c.Sessions)
	}
	return fmt.Sprintf("filecast mcp --http, %d streamable-HTTP session(s)", c.Sessions)
}

// runLatency measures write → list_changes and write →
// notifications/resources/updated at c.Rate for c.Duration.
func runLatency(ctx context.Context, c Config, remote bool) (Result, error) {
	if remote {
		c.Stdio = true
	}
	d, cleanup, err := runDrive(ctx, c, remote, c.Rate, 0)
	if err != nil {
		return Result{}, err
	}
	defer cleanup()
	r := Result{Summary: fmt.Sprintf("%d writes at %d/s over %s to %d files; %s",
		d.writes, c.Rate, d.writing.Round(time.Millisecond), c.Files, mode(c, remote))}
	floor, _ := d.l.latencies(d.base.h)
	var toAgent, toNote, toStamp []time.Duration
	for i, s := range d.f.sessions {
		lat, stamp := d.l.latencies(s.changes)
		toAgent = append(toAgent, lat...)
		if i == 0 {
			toStamp = stamp
		}
		lat, _ = d.l.latencies(s.notes)
		toNote = append(toNote, lat...)
	}
	r.row("write → fsnotify (floor)", floor)
	r.row("write → event timestamp", toStamp)
	r.row("write → list_changes", toAgent)
	r.row("write → resources/updated", toNote)
	fs, ag, nt := summarise(floor), summarise(toAgent), summarise(toNote)
	r.fig("writes/s issued", perSecond(d.writes, d.writing), "/s")
	r.fig("added to fsnotify at p50 (list_changes)", micros(ag.P50-fs.P50), "µs")
	r.fig("added to fsnotify at p99 (list_changes)", micros(ag.P99-fs.P99), "µs")
	r.fig("added to fsnotify at p50 (resources/updated)", micros(nt.P50-fs.P50), "µs")
	r.fig("added to fsnotify at p99 (resources/updated)", micros(nt.P99-fs.P99), "µs")
	d.sessionFigures(&r)
	return r, nil
}

// runThroughput writes c.Changes changes (at c.Rate, or as fast as
// possible) and measures how long every session takes to have them all.
func runThroughput(ctx context.Context, c Config) (Result, error) {
	d, cleanup, err := runDrive(ctx, c, false, c.Rate, c.Changes)
	if err != nil {
		return Result{}, err
	}
	defer cleanup()
	pace := "as fast as possible"
	if c.Rate > 0 {
		pace = fmt.Sprintf("at %d/s", c.Rate)
	}
	r := Result{Summary: fmt.Sprintf("%d writes %s to %d files; %s", d.writes, pace, c.Files, mode(c, false))}
	floor, _ := d.l.latencies(d.base.h)
	var toAgent, toNote []time.Duration
	for _, s := range d.f.sessions {
		lat, _ := d.l.latencies(s.changes)
		toAgent = append(toAgent, lat...)
		lat, _ = d.l.latencies(s.notes)
		toNote = append(toNote, lat...)
	}
	r.row("write → fsnotify (floor)", floor)
	r.row("write → list_changes", toAgent)
	r.row("write → resources/updated", toNote)
	r.fig("writes/s issued", perSecond(d.writes, d.writing), "/s")
	events := len(toAgent) / max(1, len(d.f.sessions))
	r.fig("events in list_changes per session", float64(events), "")
	if d.complete > 0 {
		r.fig("events/s delivered per session (events ÷ time to the last)", perSecond(events, d.complete), "/s")
		r.fig("changes/s complete in every session (writes ÷ time to the last)", perSecond(d.writes, d.complete), "/s")
		r.fig("time until every session had every file's last write", millis(d.complete), "ms")
	} else {
		r.worst("sessions incomplete at the deadline", 1)
	}
	if d.floor > 0 {
		r.fig("changes/s seen by bare fsnotify (floor)", perSecond(d.writes, d.floor), "/s")
	}
	if d.base.overflow {
		r.note("the bare fsnotify watcher overflowed")
	}
	d.sessionFigures(&r)
	r.note("complete = every file's last write seen by every session; in order = per file, no event for an older write after a newer one")
	return r, nil
}
