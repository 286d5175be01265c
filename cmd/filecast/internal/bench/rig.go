package bench

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/fsnotify/fsnotify"
	"github.com/sourcegraph/conc"
)

// receiver names of the mixed and ramp scenarios, in the order printed.
const (
	rxFloor   = "fsnotify (floor)"
	rxWatch   = "watchman"
	rxNotes   = "resources/updated"
	rxChanges = "list_changes"
)

// mixReceiver is one of what the mixed and ramp scenarios measure: the
// bare fsnotify watcher, watchman, or one of the two ways filecast tells
// a session. stop ends it (and its process, when it has one of its own).
type mixReceiver struct {
	name string
	h    *mixHeard
	stop func()
	cpu  func() time.Duration // the CPU time of its process; nil when it has none of its own
}

// rig is the mixed workload's workspace and everything that listens to
// it: a bare fsnotify watcher (the floor), a watchman server when one is
// installed, and one "filecast mcp --root" process over stdio (the
// embedded hub) with a session that is notified of every file
// (resources/subscribe of the workspace's folder URI) and long-polls
// list_changes.
type rig struct {
	l        *mixLedger
	rx       []*mixReceiver // in the order printed
	notes    []string
	overflow atomic.Bool // the bare fsnotify watcher overflowed
	ops      int         // changes made so far (the next change's number)
	close    func()
}

// once returns f made safe to call more than once.
func once(f func()) func() {
	var o sync.Once
	return func() { o.Do(f) }
}

// startRig makes a workspace of files files under c.Dir, starts every
// receiver on it and makes one change of each kind (step 0) that each
// must hear of.
func startRig(ctx context.Context, c Config, files int) (_ *rig, err error) {
	base, root, data, err := makeBase(c)
	if err != nil {
		return nil, err
	}
	r := &rig{}
	var closers []func()
	r.close = func() {
		for i := len(closers) - 1; i >= 0; i-- {
			closers[i]()
		}
		os.RemoveAll(base)
	}
	defer func() {
		if err != nil {
			r.close()
		}
	}()
	if r.l, err = newMixLedger(root, files); err != nil {
		return nil, err
	}
	runCtx, cancel := context.WithCancel(ctx)
	var wg conc.WaitGroup
	closers = append(closers, func() { cancel(); wg.Wait() })

	// The floor.
	fw, err := fsnotify.NewBufferedWatcher(1 << 16)
	if err != nil {
		return nil, fmt.Errorf("start bare fsnotify: %w", err)
	}
	floor := &mixReceiver{name: rxFloor, h: r.l.newHeard(rxFloor), stop: once(func() { fw.Close() })}
	closers = append(closers, floor.stop)
	for _, d := range append([]string{""}, mixFolders[:]...) {
		if err := fw.Add(filepath.Join(root, d)); err != nil {
			return nil, fmt.Errorf("watch %s with bare fsnotify: %w", d, err)
		}
	}
	wg.Go(func() {
		for {
			select {
			case ev, ok := <-fw.Events:
				if !ok {
					return
				}
				at := time.Now()
				if rel, err := filepath.Rel(root, ev.Name); err == nil {
					r.l.cover(floor.h, filepath.ToSlash(rel), at)
				}
			case err, ok := <-fw.Errors:
				if !ok {
					return
				}
				if errors.Is(err, fsnotify.ErrEventOverflow) {
					r.overflow.Store(true)
				}
			}
		}
	})
	r.rx = append(r.rx, floor)

	// watchman before filecast, which then indexes watchman's
	// configuration file silently.
	if !c.NoWatchman {
		wm, err := startWatchman(ctx, root, c.Log)
		switch {
		case errors.Is(err, errNoWatchman):
			r.notes = append(r.notes, "watchman is not installed: measured without it")
		case err != nil:
			return nil, err
		default:
			rx := &mixReceiver{name: rxWatch, h: r.l.newHeard(rxWatch), stop: once(wm.close), cpu: wm.cpu}
			closers = append(closers, rx.stop)
			wg.Go(func() { wm.run(func(name string, at time.Time) { r.l.cover(rx.h, name, at) }) })
			r.rx = append(r.rx, rx)
		}
	}

	// filecast, with the session's notifications and list_changes.
	notes := &mixReceiver{name: rxNotes, h: r.l.newHeard(rxNotes)}
	changes := &mixReceiver{name: rxChanges, h: r.l.newHeard(rxChanges)}
	onNote := func(method string, params json.RawMessage, at time.Time) {
		if method != "notifications/resources/updated" {
			return
		}
		var p struct {
			URI string `json:"uri"`
		}
		if json.Unmarshal(params, &p) == nil {
			r.l.cover(notes.h, strings.TrimPrefix(p.URI, uriPrefix), at)
		}
	}
	p, cl, stop, err := startStdioMCP(c.Binary, append([]string{"mcp", "--root", wsName + "=" + root, "--data", data, "--log-level", "warn"}, c.Flags...), c.Log, onNote)
	if err != nil {
		return nil, err
	}
	stopFC := once(stop)
	closers = append(closers, stopFC)
	notes.stop, notes.cpu = stopFC, p.cpu
	changes.stop, changes.cpu = stopFC, p.cpu
	ictx, icancel := context.WithTimeout(ctx, 60*time.Second)
	defer icancel()
	if _, err := cl.initialize(ictx); err != nil {
		return nil, err
	}
	// The initial index complete: changes from now on are reported.
	hc := unixClient(filepath.Join(data, "hub.sock"))
	_, err = waitHealthy(ictx, hc, "http://filecast/healthz", p, 5*time.Millisecond, 60*time.Second)
	hc.CloseIdleConnections()
	if err != nil {
		return nil, err
	}
	if _, err := cl.callTool(ictx, "subscribe", map[string]any{"paths": []string{"**"}, "events": []string{"created", "updated", "deleted", "moved"}}, nil); err != nil {
		return nil, err
	}
	if _, err := cl.call(ictx, "resources/subscribe", map[string]any{"uri": uriPrefix}, nil); err != nil {
		return nil, err
	}
	s := &session{c: cl}
	wg.Go(func() {
		s.consume(runCtx, func(pg *changesPage, at time.Time) {
			for _, e := range pg.Events {
				r.l.see(changes.h, e.Type, e.Path, e.OldPath, e.SHA256, at)
			}
		})
	})
	r.rx = append(r.rx, notes, changes)

	// A warm-up round, step 0: one of each kind, paced, heard by all.
	if _, err := r.step(ctx, 0, 200, time.Duration(len(mixOrder))*5*time.Millisecond, 30*time.Second, r.rx); err != nil {
		return nil, fmt.Errorf("warm up: %w", err)
	}
	for _, rx := range r.rx {
		if t := r.l.tally(rx.h, 0); t.lost != [nKinds]int{} {
			return nil, fmt.Errorf("warm up: %s did not report every change (lost by kind %v)", rx.name, t.lost)
		}
	}
	return r, nil
}

// find returns the receiver called name, nil when there is none.
func (r *rig) find(name string) *mixReceiver {
	for _, rx := range r.rx {
		if rx.name == name {
			return rx
		}
	}
	return nil
}

// stepRun is what one step of changes at a rate did.
type stepRun struct {
	step     int
	rate     int
	changes  int
	writing  time.Duration
	complete map[string]bool          // receivers that heard everything before the deadline
	cpu      map[string]time.Duration // CPU of each receiver's process over the step and its drain
}

// step makes changes at rate for d as step, then waits until every
// receiver of active has heard of all of them, or wait has passed since
// the last change.
func (r *rig) step(ctx context.Context, step, rate int, d, wait time.Duration, active []*mixReceiver) (stepRun, error) {
	sr := stepRun{step: step, rate: rate, complete: map[string]bool{}, cpu: map[string]time.Duration{}}
	cpu0 := map[string]time.Duration{}
	for _, rx := range active {
		if rx.cpu != nil {
			cpu0[rx.name] = rx.cpu()
		}
	}
	r.l.setStep(step)
	from := r.ops
	n, took, err := r.l.writeAt(ctx, r.ops, rate, d)
	r.ops += n
	sr.changes, sr.writing = n, took
	if err != nil {
		return sr, err
	}
	deadline := time.Now().Add(wait)
	for {
		all := true
		for _, rx := range active {
			if !sr.complete[rx.name] {
				sr.complete[rx.name] = r.l.complete(rx.h, from)
				all = all && sr.complete[rx.name]
			}
		}
		if all || time.Now().After(deadline) || ctx.Err() != nil {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	for _, rx := range active {
		if rx.cpu != nil {
			sr.cpu[rx.name] = rx.cpu() - cpu0[rx.name]
		}
	}
	return sr, ctx.Err()
}
