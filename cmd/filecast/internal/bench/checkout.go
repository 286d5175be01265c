package bench

import (
	"bytes"
	"context"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"time"

	"github.com/fsnotify/fsnotify"
	"github.com/sourcegraph/conc"
)

// change is what a changed path of the checkout must end as.
type change struct {
	deleted bool
	sum     string // sha256 of the content on branch two
	kind    string // modified, added or deleted
}

// repoPlan lays out the two branches: of every four changed files two are
// modified, one added and one deleted, and every fourth file stays the
// same; 500 changed files a folder. Branch "one" holds the modified files
// (first content), the deleted ones and the unchanged ones; branch "two"
// the modified files (second content), the added ones and the unchanged ones.
type repoPlan struct {
	one, two map[string]string // path → content
	changes  map[string]change
}

func planRepo(n int) repoPlan {
	p := repoPlan{one: map[string]string{}, two: map[string]string{}, changes: map[string]change{}}
	for i := range n {
		dir := fmt.Sprintf("d%03d/", i/500)
		switch i % 4 {
		case 0, 1:
			path := fmt.Sprintf("%sm%06d.txt", dir, i)
			p.one[path], p.two[path] = fmt.Sprintf("one %d\n", i), fmt.Sprintf("two %d\n", i)
			p.changes[path] = change{sum: sha256hex(p.two[path]), kind: "modified"}
		case 2:
			path := fmt.Sprintf("%sa%06d.txt", dir, i)
			p.two[path] = fmt.Sprintf("new %d\n", i)
			p.changes[path] = change{sum: sha256hex(p.two[path]), kind: "added"}
		case 3:
			path := fmt.Sprintf("%sx%06d.txt", dir, i)
			p.one[path] = fmt.Sprintf("old %d\n", i)
			p.changes[path] = change{deleted: true, kind: "deleted"}
		}
		if i%4 == 0 {
			path := fmt.Sprintf("%su%06d.txt", dir, i)
			p.one[path], p.two[path] = fmt.Sprintf("same %d\n", i), fmt.Sprintf("same %d\n", i)
		}
	}
	return p
}

// gitRun runs git in dir with no user or system configuration.
func gitRun(ctx context.Context, dir string, args ...string) error {
	cmd := exec.CommandContext(ctx, "git", append([]string{"-C", dir}, args...)...)
	cmd.Env = append(os.Environ(), "GIT_CONFIG_NOSYSTEM=1", "GIT_CONFIG_GLOBAL="+os.DevNull,
		"GIT_AUTHOR_NAME=bench", "GIT_AUTHOR_EMAIL=bench@localhost", "GIT_COMMITTER_NAME=bench", "GIT_COMMITTER_EMAIL=bench@localhost")
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("git %v: %w: %s", args, err, bytes.TrimSpace(out.Bytes()))
	}
	return nil
}

// cachedRepo returns a git repository with the branches of p, made once
// under dir (default the temp folder) and reused; it is left on branch one.
func cachedRepo(ctx context.Context, dir string, n int, p repoPlan) (string, error) {
	if dir == "" {
		dir = os.TempDir()
	}
	top := filepath.Join(dir, fmt.Sprintf("filecast-bench-git-%d", n))
	ws, marker := filepath.Join(top, "ws"), filepath.Join(top, "complete")
	if _, err := os.Stat(marker); err == nil {
		if err := gitRun(ctx, ws, "checkout", "-q", "-f", "one"); err != nil {
			return "", err
		}
		return ws, gitRun(ctx, ws, "clean", "-q", "-f", "-d", "-x")
	}
	if err := os.RemoveAll(top); err != nil {
		return "", fmt.Errorf("make repository: %w", err)
	}
	writeAll := func(files map[string]string) error {
		for path, body := range files {
			full := filepath.Join(ws, filepath.FromSlash(path))
			if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
				return err
			}
			if err := os.WriteFile(full, []byte(body), 0o644); err != nil {
				return err
			}
		}
		return nil
	}
	if err := os.MkdirAll(ws, 0o755); err != nil {
		return "", fmt.Errorf("make repository: %w", err)
	}
	steps := []func() error{
		func() error { return gitRun(ctx, ws, "init", "-q") },
		func() error { return gitRun(ctx, ws, "symbolic-ref", "HEAD", "refs/heads/one") },
		func() error { return writeAll(p.one) },
		func() error { return gitRun(ctx, ws, "add", "-A") },
		func() error { return gitRun(ctx, ws, "commit", "-q", "-m", "one") },
		func() error { return gitRun(ctx, ws, "checkout", "-q", "-b", "two") },
		func() error {
			for path, ch := range p.changes {
				if ch.deleted {
					if err := os.Remove(filepath.Join(ws, filepath.FromSlash(path))); err != nil {
						return err
					}
				}
			}
			return writeAll(p.two)
		},
		func() error { return gitRun(ctx, ws, "add", "-A") },
		func() error { return gitRun(ctx, ws, "commit", "-q", "-m", "two") },
		func() error { return gitRun(ctx, ws, "checkout", "-q", "one") },
		func() error { return os.WriteFile(marker, nil, 0o644) },
	}
	for _, step := range steps {
		if err := step(); err != nil {
			return "", fmt.Errorf("make repository: %w", err)
		}
	}
	return ws, nil
}

// runCheckout checks out a branch that changes c.Changes files under a
// running "filecast mcp" whose session pages list_changes (limit 1000),
// and measures when every change has been seen.
func runCheckout(ctx context.Context, c Config) (Result, error) {
	r := Result{Summary: fmt.Sprintf("git checkout changing %d files under filecast mcp --root over stdio, list_changes pages of 1000", c.Changes)}
	if _, err := exec.LookPath("git"); err != nil {
		r.Skipped = "the git command is not installed"
		return r, nil
	}
	plan := planRepo(c.Changes)
	t := time.Now()
	ws, err := cachedRepo(ctx, c.Dir, c.Changes, plan)
	if err != nil {
		return r, err
	}
	if d := time.Since(t); d > time.Second {
		r.note("prepared the repository in %s (cached for later runs)", d.Round(time.Millisecond))
	}
	base, _, data, err := makeBase(c)
	if err != nil {
		return r, err
	}
	defer os.RemoveAll(base)

	p, cl, stop, err := startStdioMCP(c.Binary, append([]string{"mcp", "--root", wsName + "=" + ws, "--data", data, "--log-level", "warn"}, c.Flags...), c.Log, nil)
	if err != nil {
		return r, err
	}
	defer stop()
	ictx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	if _, err := cl.initialize(ictx); err != nil {
		return r, err
	}
	hc := unixClient(filepath.Join(data, "hub.sock"))
	defer hc.CloseIdleConnections()
	if _, err := waitHealthy(ictx, hc, "http://filecast/healthz", p, 10*time.Millisecond, 60*time.Second); err != nil {
		return r, err
	}
	if _, err := cl.callTool(ictx, "subscribe", map[string]any{}, nil); err != nil {
		return r, err
	}

	// The floor: a bare fsnotify watcher on every folder but .git.
	var dirs []string
	err = filepath.WalkDir(ws, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && d.Name() == ".git" {
			return filepath.SkipDir
		}
		if d.IsDir() {
			dirs = append(dirs, path)
		}
		return nil
	})
	if err != nil {
		return r, fmt.Errorf("walk repository: %w", err)
	}
	w, err := fsnotify.NewBufferedWatcher(1 << 17)
	if err != nil {
		return r, fmt.Errorf("start bare fsnotify: %w", err)
	}
	for _, d := range dirs {
		if err := w.Add(d); err != nil {
			w.Close()
			return r, fmt.Errorf("watch %s with bare fsnotify: %w", d, err)
		}
	}

	var (
		mu        sync.Mutex
		final     = map[string]time.Time{} // path → when its final state arrived
		floorSeen = map[string]time.Time{} // path → first bare fsnotify event
		events    int
		unexpect  int
		byType    = map[string]int{}
		byPath    = map[string][]string{} // path → the types of its events, in order
		pages     int
		overflows int
		overflow  bool
	)
	runCtx, stop := context.WithCancel(ctx)
	var wg conc.WaitGroup
	wg.Go(func() {
		defer w.Close()
		for {
			select {
			case <-runCtx.Done():
				return
			case err, ok := <-w.Errors:
				if !ok {
					return
				}
				if err == fsnotify.ErrEventOverflow {
					mu.Lock()
					overflow = true
					mu.Unlock()
				}
			case ev, ok := <-w.Events:
				if !ok {
					return
				}
				at := time.Now()
				rel, err := filepath.Rel(ws, ev.Name)
				if err != nil {
					continue
				}
				rel = filepath.ToSlash(rel)
				mu.Lock()
				if _, ok := plan.changes[rel]; ok {
					if _, ok := floorSeen[rel]; !ok {
						floorSeen[rel] = at
					}
				}
				mu.Unlock()
			}
		}
	})
	s := &session{c: cl}
	wg.Go(func() {
		s.consume(runCtx, func(pg *changesPage, at time.Time) {
			mu.Lock()
			defer mu.Unlock()
			pages++
			if pg.Overflowed {
				overflows++
			}
			for _, e := range pg.Events {
				events++
				byType[e.Type]++
				byPath[e.Path] = append(byPath[e.Path], e.Type)
				want, ok := plan.changes[e.Path]
				if !ok {
					unexpect++
					continue
				}
				if want.deleted && e.Type == "file.deleted" || !want.deleted && e.Type != "file.deleted" && e.SHA256 == want.sum {
					if _, ok := final[e.Path]; !ok {
						final[e.Path] = at
					}
				} else {
					delete(final, e.Path) // a later event undid it
				}
			}
		})
	})

	cpu0 := p.cpu()
	t0 := time.Now()
	err = gitRun(ctx, ws, "checkout", "-q", "two")
	t1 := time.Now()
	if err != nil {
		stop()
		wg.Wait()
		return r, err
	}
	n := len(plan.changes)
	waitFor(ctx, 30*time.Second+time.Duration(n)*time.Millisecond, func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(final) == n && len(floorSeen) == n
	})
	// A moment more, to catch events that would undo a final state.
	time.Sleep(100 * time.Millisecond)
	cpu := p.cpu() - cpu0
	rss := p.peakRSS()
	stop()
	wg.Wait()

	mu.Lock()
	defer mu.Unlock()
	var toAgent, toFloor []time.Duration
	var last, lastFloor time.Time
	for _, at := range final {
		toAgent = append(toAgent, at.Sub(t0))
		if at.After(last) {
			last = at
		}
	}
	for _, at := range floorSeen {
		toFloor = append(toFloor, at.Sub(t0))
		if at.After(lastFloor) {
			lastFloor = at
		}
	}
	r.row("checkout start → bare fsnotify event (floor)", toFloor)
	r.row("checkout start → final state in list_changes", toAgent)
	r.fig("git checkout took", millis(t1.Sub(t0)), "ms")
	if len(final) == n {
		r.fig(fmt.Sprintf("checkout finished → all %d changes seen (negative: before git exited)", n), millis(last.Sub(t1)), "ms")
	}
	if len(floorSeen) == n {
		r.fig("checkout finished → bare fsnotify saw every path (floor)", millis(lastFloor.Sub(t1)), "ms")
	}
	r.worst("changes lost (path never reached its final state)", float64(n-len(final)))
	r.fig("events received", float64(events), "")
	for _, k := range []string{"file.created", "file.updated", "file.deleted", "file.moved"} {
		r.fig("  "+k, float64(byType[k]), "")
	}
	r.worst("events for unchanged paths", float64(unexpect))
	// Each changed path must be exactly one event of its kind: a modified
	// file one file.updated (not deleted and created), an added one one
	// file.created, a deleted one one file.deleted.
	wantType := map[string]string{"modified": "file.updated", "added": "file.created", "deleted": "file.deleted"}
	notOne := 0
	for path, ch := range plan.changes {
		if got := byPath[path]; len(got) != 1 || got[0] != wantType[ch.kind] {
			notOne++
		}
	}
	r.worst("changed paths not reported as exactly one event of their kind", float64(notOne))
	r.fig("list_changes pages", float64(pages), "")
	r.worst("overflowed list_changes results", float64(overflows))
	if cpu > 0 {
		r.fig("filecast CPU from checkout to the last event", millis(cpu), "ms")
	}
	if rss > 0 {
		r.fig("filecast peak RSS", mib(rss), "MiB")
	}
	if overflow {
		r.note("the bare fsnotify watcher overflowed")
	}
	r.note("a change is seen when its path's latest event matches branch two: file.deleted for a deleted file, " +
		"else created/updated with branch two's sha256")
	return r, nil
}
