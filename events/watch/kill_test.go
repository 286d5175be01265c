package watch_test

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/filecast/filecast/events"
	"github.com/filecast/filecast/events/eventstest"
	"github.com/filecast/filecast/events/journal"
	"github.com/filecast/filecast/events/natsd"
	"github.com/filecast/filecast/events/natsd/natstest"
	"github.com/filecast/filecast/events/watch"
	"github.com/filecast/filecast/events/workspace"
)

// killChildEnv makes the test binary run as the watcher process of
// TestWatcher_KillNine: "DATA|WORKSPACE".
const killChildEnv = "FILECAST_WATCH_KILL_CHILD"

const (
	killFiles  = 100  // files there before the first start
	killBefore = 1000 // writes while the child runs; it is killed after them
	killAfter  = 1000 // writes while no watcher runs
)

// startKillWatcher runs a watcher over the journal in data, as filecast
// does, and returns once it is ready.
func startKillWatcher(t testing.TB, ctx context.Context, data, dir string) (*watch.Watcher, watch.Log, <-chan error) {
	t.Helper()
	ws, err := workspace.Parse("test=" + dir)
	if err != nil {
		t.Fatal(err)
	}
	srv := natstest.StartWith(t, natsd.Options{StoreDir: filepath.Join(data, "jetstream")})
	j := openJournalOn(t, srv, journal.Options{})
	w, err := watch.New(watch.Options{
		Workspace: ws,
		IndexPath: filepath.Join(data, "index", "test.json"),
		Log:       j,
		Logger:    slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})),
	}, j)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	select {
	case <-w.Ready():
	case err := <-done:
		t.Fatalf("Run returned before Ready: %v", err)
	case <-time.After(eventstest.Timeout):
		t.Fatal("watcher not ready in time")
	}
	return w, j, done
}

// runKillChild watches until it is killed, or its parent goes (its
// stdin closes).
func runKillChild(t *testing.T, spec string) {
	data, dir, _ := strings.Cut(spec, "|")
	startKillWatcher(t, context.Background(), data, dir)
	fmt.Println("ready")
	_, _ = io.Copy(io.Discard, os.Stdin)
	os.Exit(3)
}

// TestWatcher_KillNine kills a watcher process in the middle of a burst of
// writes, changes more files while none runs, and starts a new one on the
// same data folder: the log then holds every file's final content as its
// last event, and no change twice — also when the index file is lost.
func TestWatcher_KillNine(t *testing.T) {
	if spec := os.Getenv(killChildEnv); spec != "" {
		runKillChild(t, spec)
		return
	}
	if testing.Short() {
		t.Skip("runs child processes")
	}
	for _, lose := range []bool{false, true} {
		name := "index kept"
		if lose {
			name = "index lost"
		}
		t.Run(name, func(t *testing.T) { t.Parallel(); killNine(t, lose) })
	}
}

func killNine(t *testing.T, loseIndex bool) {
	base := t.TempDir()
	data, dir := filepath.Join(base, "data"), filepath.Join(base, "ws")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	writes := 0
	write := func(rel, content string) {
		t.Helper()
		if err := os.WriteFile(filepath.Join(dir, rel), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		writes++
	}
	for i := range killFiles {
		write(fmt.Sprintf("f%03d", i), "start")
	}

	cmd := exec.Command(os.Args[0], "-test.run=^TestWatcher_KillNine$")
	cmd.Env = append(os.Environ(), killChildEnv+"="+data+"|"+dir)
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe() // the child's lifeline: closed when this process exits
	if err != nil {
		t.Fatal(err)
	}
	defer stdin.Close()
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	ready := make(chan bool, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if sc.Text() == "ready" {
				ready <- true
				return
			}
		}
		ready <- false
	}()
	select {
	case ok := <-ready:
		if !ok {
			t.Fatal("the child exited before it was ready")
		}
	case <-time.After(eventstest.Timeout):
		t.Fatal("the child was not ready in time")
	}

	// A burst the child watches: every file rewritten ten times, a new
	// file every twentieth write, paced (a millisecond between writes, not
	// a wait for anything) so that the watcher keeps up and several index
	// saves happen before the kill.
	started := time.Now()
	for i := range killBefore {
		write(fmt.Sprintf("f%03d", i%killFiles), fmt.Sprintf("write %d", i))
		if i%20 == 0 {
			write(fmt.Sprintf("g%03d", i/20), fmt.Sprintf("new %d", i))
		}
		time.Sleep(time.Millisecond)
	}
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait()
	t.Logf("child killed %v after the burst started", time.Since(started).Round(time.Millisecond))
	// While no watcher runs: half of the files change again, one goes.
	for i := killBefore; i < killBefore+killAfter; i++ {
		write(fmt.Sprintf("f%03d", i%(killFiles/2)), fmt.Sprintf("write %d", i))
	}
	if err := os.Remove(filepath.Join(dir, "g001")); err != nil {
		t.Fatal(err)
	}
	if loseIndex {
		if err := os.Remove(filepath.Join(data, "index", "test.json")); err != nil {
			t.Fatal(err)
		}
	}

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	_, log, done := startKillWatcher(t, ctx, data, dir)
	write("marker", "end")
	evs := waitLog(t, log, "the marker", func(evs []events.Event) bool {
		return len(evs) > 0 && evs[len(evs)-1].Path == "marker"
	})
	cancel()
	<-done

	disk := map[string]string{}
	err = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		h := sha256.Sum256(b)
		disk[filepath.Base(p)] = hex.EncodeToString(h[:])
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	byPath := map[string][]events.Event{}
	for _, ev := range evs {
		if !ev.Type.IsFile() {
			continue
		}
		byPath[ev.Path] = append(byPath[ev.Path], ev)
		if ev.Type == events.FileMoved {
			byPath[ev.OldPath] = append(byPath[ev.OldPath], events.Event{Type: events.FileDeleted, Path: ev.OldPath, Seq: ev.Seq})
		}
	}
	paths := make([]string, 0, len(byPath)+len(disk))
	for p := range byPath {
		paths = append(paths, p)
	}
	for p := range disk {
		if _, ok := byPath[p]; !ok {
			paths = append(paths, p)
		}
	}
	sort.Strings(paths)
	dups, wrong := 0, 0
	for _, p := range paths {
		list := byPath[p]
		for i := 1; i < len(list); i++ {
			a, b := list[i-1], list[i]
			if a.Type != events.FileDeleted && b.Type != events.FileDeleted && a.SHA256 == b.SHA256 {
				dups++
				t.Errorf("%s: seq %d (%s) and seq %d (%s) report the same content", p, a.Seq, a.Type, b.Seq, b.Type)
			}
		}
		want, onDisk := disk[p]
		switch {
		case len(list) == 0 && (!strings.HasPrefix(p, "f") || want != sum("start")):
			wrong++
			t.Errorf("%s: no event, and not as it was at the first start", p)
		case len(list) == 0:
		case !onDisk && list[len(list)-1].Type != events.FileDeleted:
			wrong++
			t.Errorf("%s: gone, but the last event is %s (seq %d)", p, list[len(list)-1].Type, list[len(list)-1].Seq)
		case onDisk && list[len(list)-1].SHA256 != want:
			wrong++
			t.Errorf("%s: the last event (seq %d, %s) is not the content on disk", p, list[len(list)-1].Seq, list[len(list)-1].Type)
		}
	}
	t.Logf("%d writes, %d events in the log, %d paths, %d duplicate reports, %d paths whose last event is not their state", writes, len(evs), len(paths), dups, wrong)
}
