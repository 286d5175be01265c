package bench

import (
	"context"
	"fmt"
	"time"
)

// drainWait is how long a step of changes waits for every receiver to
// hear of them after the last one: 10 s, plus 1 ms per 1,000 changes.
func drainWait(changes int) time.Duration {
	return 10*time.Second + time.Duration(changes)*time.Microsecond
}

// runMixed measures each kind of change — create, modify, delete, move —
// at a steady mixed rate (see mixOrder) beside the bare fsnotify watcher
// and watchman, through filecast's resource notifications and
// list_changes, with the CPU per change of filecast's process and of
// watchman's.
func runMixed(ctx context.Context, c Config) (Result, error) {
	rg, err := startRig(ctx, c, c.Files)
	if err != nil {
		return Result{}, err
	}
	defer rg.close()
	sr, err := rg.step(ctx, 1, c.Rate, c.Duration, drainWait(c.Rate*int(c.Duration/time.Second)), rg.rx)
	if err != nil {
		return Result{}, err
	}
	r := Result{Summary: fmt.Sprintf("%d changes at %d/s over %s (40 %% creates, 40 %% modifies, 20 %% deletes, plus moves; %d-byte files) in a workspace of %d files; filecast mcp --root over stdio",
		sr.changes, c.Rate, sr.writing.Round(time.Millisecond), mixSize, c.Files)}
	floor := rg.rx[0]
	for k := range nKinds {
		fs := summarise(rg.l.latencies(floor.h, k, 1))
		for _, rx := range rg.rx {
			lat := rg.l.latencies(rx.h, k, 1)
			r.row(kindNames[k]+" → "+rx.name, lat)
			if rx.name == rxNotes || rx.name == rxChanges {
				s := summarise(lat)
				r.fig(fmt.Sprintf("%s: added to fsnotify at p50 (%s)", kindNames[k], rx.name), micros(s.P50-fs.P50), "µs")
				r.fig(fmt.Sprintf("%s: added to fsnotify at p99 (%s)", kindNames[k], rx.name), micros(s.P99-fs.P99), "µs")
			}
		}
	}
	r.fig("changes/s issued", perSecond(sr.changes, sr.writing), "/s")
	for _, rx := range rg.rx {
		if d, ok := sr.cpu[rx.name]; ok && rx.name != rxNotes && sr.changes > 0 {
			name := "filecast"
			if rx.name == rxWatch {
				name = fmt.Sprintf("watchman (settle %d ms)", watchmanSettle)
			}
			r.fig(name+" CPU per change", micros(d/time.Duration(sr.changes)), "µs")
		}
	}
	for _, rx := range rg.rx {
		t := rg.l.tally(rx.h, 1)
		dup, wrong, _ := rg.l.counts(rx.h)
		lost := 0
		for _, n := range t.lost {
			lost += n
		}
		r.worst(fmt.Sprintf("changes lost (%s)", rx.name), float64(lost))
		if rx.name == rxChanges {
			r.worst("events of another type than the change, or for no change (list_changes)", float64(wrong))
			r.worst("duplicate events (list_changes)", float64(dup))
		}
		if t.coalesced > 0 {
			r.fig(fmt.Sprintf("changes coalesced into a later one (%s)", rx.name), float64(t.coalesced), "")
		}
		if !sr.complete[rx.name] {
			r.note("%s had not heard of every change %s after the last", rx.name, drainWait(sr.changes))
		}
	}
	r.Notes = append(r.Notes, rg.notes...)
	if rg.overflow.Load() {
		r.note("the bare fsnotify watcher overflowed")
	}
	r.note("latency: from just before a change's first system call until the receiver reports it: " +
		"list_changes by an event of its type, path and content; resources/updated, watchman and fsnotify by the path")
	r.note("CPU per change: the whole process (filecast: watcher, log, hub and session) from the first change until every receiver had heard of the last, over the changes")
	return r, nil
}

// rampMaxP99 is the latency a ramp step must stay within at p99.
const rampMaxP99 = 50 * time.Millisecond

// runRamp finds the highest mixed rate each receiver hears of without a
// loss and with p99 within rampMaxP99: from c.Rate, the rate doubles each
// step (of c.Duration) until every receiver has failed a step, the rate
// passes c.MaxRate, or the writer cannot keep up. A receiver that fails
// is stopped, so that it no longer takes CPU from the others.
func runRamp(ctx context.Context, c Config) (Result, error) {
	rg, err := startRig(ctx, c, c.Files)
	if err != nil {
		return Result{}, err
	}
	defer rg.close()
	r := Result{Summary: fmt.Sprintf("mixed changes (as in mixed) from %d/s, doubling every %s until a step loses a change or its p99 passes %s; workspace of %d files; filecast mcp --root over stdio",
		c.Rate, c.Duration, rampMaxP99, c.Files)}
	active := append([]*mixReceiver(nil), rg.rx...)
	best := map[string]int{}
	step := 1
	for rate := c.Rate; len(active) > 0 && rate <= c.MaxRate && ctx.Err() == nil; rate *= 2 {
		sr, err := rg.step(ctx, step, rate, c.Duration, 5*time.Second+time.Duration(rate)*c.Duration/time.Second*time.Microsecond, active)
		if err != nil {
			return r, err
		}
		issued := perSecond(sr.changes, sr.writing)
		var still, failed []*mixReceiver
		for _, rx := range active {
			lat := rg.l.allLatencies(rx.h, step)
			r.row(fmt.Sprintf("%d/s → %s", rate, rx.name), lat)
			t := rg.l.tally(rx.h, step)
			lost := 0
			for _, n := range t.lost {
				lost += n
			}
			p99 := summarise(lat).P99
			if lost == 0 && p99 <= rampMaxP99 && sr.complete[rx.name] {
				best[rx.name] = rate
				still = append(still, rx)
				continue
			}
			r.note("%s failed at %d/s: %d changes lost (creates, modifies, deletes, moves: %v), p99 %s", rx.name, rate, lost, t.lost, dur(p99))
			failed = append(failed, rx)
		}
		active = still
		filecastOn := false // list_changes and resources/updated share a process
		for _, rx := range active {
			filecastOn = filecastOn || rx.name == rxNotes || rx.name == rxChanges
		}
		for _, rx := range failed {
			if !filecastOn || rx.name != rxNotes && rx.name != rxChanges {
				rx.stop()
			}
		}
		step++
		if issued < 0.8*float64(rate) {
			r.note("the writer issued only %.0f changes/s at %d/s: stopped there", issued, rate)
			break
		}
	}
	for _, rx := range rg.rx {
		r.fig("highest lossless rate with p99 ≤ 50 ms, "+rx.name, float64(best[rx.name]), "/s")
	}
	for _, rx := range active {
		r.note("%s had not failed when the ramp stopped", rx.name)
	}
	r.Notes = append(r.Notes, rg.notes...)
	if rg.overflow.Load() {
		r.note("the bare fsnotify watcher overflowed")
	}
	return r, nil
}
