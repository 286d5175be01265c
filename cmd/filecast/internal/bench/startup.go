package bench

import (
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/fsnotify/fsnotify"
	"github.com/sourcegraph/conc"
)

// smallFiles is the size of the small workspace of the startup scenario.
const smallFiles = 10

// smallSpawns is how many times a run starts filecast on the small workspace.
const smallSpawns = 5

// cachedTree returns a workspace of n small files in nested folders (100
// files a folder, 100 folders a level), made once under dir (default the
// temp folder) and reused by later runs: the marker file "complete" beside
// the workspace says it was made in full.
func cachedTree(dir string, n, size int) (string, error) {
	if dir == "" {
		dir = os.TempDir()
	}
	top := filepath.Join(dir, fmt.Sprintf("filecast-bench-tree-%d", n))
	if size > 0 {
		top += fmt.Sprintf("-%dB", size)
	}
	ws, marker := filepath.Join(top, "ws"), filepath.Join(top, "complete")
	if _, err := os.Stat(marker); err == nil {
		return ws, nil
	}
	if err := os.RemoveAll(top); err != nil {
		return "", fmt.Errorf("make workspace: %w", err)
	}
	if err := makeTree(ws, n, size); err != nil {
		return "", err
	}
	if err := os.WriteFile(marker, nil, 0o644); err != nil {
		return "", fmt.Errorf("make workspace: %w", err)
	}
	return ws, nil
}

// treePath is the path of file i of a nested tree.
func treePath(i int) string {
	return fmt.Sprintf("d%03d/e%02d/f%06d.txt", i/10000, (i/100)%100, i)
}

func makeTree(ws string, n, size int) error {
	for i := range n {
		p := filepath.Join(ws, filepath.FromSlash(treePath(i)))
		if i%100 == 0 {
			if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
				return fmt.Errorf("make workspace: %w", err)
			}
		}
		data := fmt.Appendf(nil, "file %d\n", i)
		if size > 0 {
			data = sourceText(data, i, size)
		}
		if err := os.WriteFile(p, data, 0o644); err != nil {
			return fmt.Errorf("make workspace: %w", err)
		}
	}
	return nil
}

// sourceText appends to b text of about size bytes that reads and
// compresses like source code: lines of tokens, indented, from a
// generator seeded with i, so that every file differs.
func sourceText(b []byte, i, size int) []byte {
	words := []string{"func", "return", "err", "if", "nil", "{", "}", "ctx", "string", "int", ":=", "for", "range",
		"fmt.Errorf", "value", "name", "len", "append", "case", "switch", "=", "(", ")", "//", "the", "file", "of"}
	r := rand.New(rand.NewPCG(uint64(i), 7))
	for len(b) < size {
		b = append(b, strings.Repeat("\t", r.IntN(3))...)
		for n := 2 + r.IntN(8); n > 0; n-- {
			b = append(b, words[r.IntN(len(words))]...)
			b = append(b, ' ')
		}
		b = append(b, '\n')
	}
	return b
}

// startMeasure is what one start of "filecast mcp --root" took.
type startMeasure struct {
	init, ready time.Duration // spawn → initialize answered; spawn → /healthz 200 on the data folder's socket
	progress    int           // indexing progress lines on stderr
	cpu         time.Duration // CPU until ready
	rss         int64         // peak RSS when ready
	kept        time.Duration // spawn → the index names the content store as filled (0 without one)
	keptCPU     time.Duration // CPU until then
}

// startOnce spawns "filecast mcp --root bench=ws --data data" over stdio,
// sends initialize at once, and polls the hub the process serves on the
// data folder's socket until it reports the initial index complete.
func startOnce(ctx context.Context, c Config, ws, data string) (startMeasure, error) {
	var m startMeasure
	var mu sync.Mutex
	stderr := &lineWriter{next: c.Log, fn: func(line string, _ time.Time) {
		if strings.Contains(line, "indexing") {
			mu.Lock()
			m.progress++
			mu.Unlock()
		}
	}}
	p, cl, stop, err := startStdioMCP(c.Binary, append([]string{"mcp", "--root", wsName + "=" + ws, "--data", data}, c.Flags...), stderr, nil)
	if err != nil {
		return m, err
	}
	defer stop()
	ictx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	type answer struct {
		at  time.Time
		err error
	}
	inited := make(chan answer, 1)
	// The handshake runs beside the health polling, so that neither
	// waits for the other; every path below receives its answer.
	var wg conc.WaitGroup
	defer wg.Wait()
	wg.Go(func() {
		at, err := cl.initialize(ictx)
		inited <- answer{at, err}
	})
	hc := unixClient(filepath.Join(data, "hub.sock"))
	defer hc.CloseIdleConnections()
	ready, err := waitHealthy(ictx, hc, "http://filecast/healthz", p, 5*time.Millisecond, 60*time.Second)
	if err != nil {
		<-inited
		return m, fmt.Errorf("wait for the index: %w", err)
	}
	m.cpu, m.rss = p.cpu(), p.peakRSS()
	a := <-inited
	if a.err != nil {
		return m, a.err
	}
	m.init, m.ready = a.at.Sub(p.started), ready.Sub(p.started)
	if keepsContents(c.Flags) {
		at, err := waitKept(ictx, filepath.Join(data, "index", wsName+".json"))
		if err != nil {
			return m, fmt.Errorf("wait for the contents to be kept: %w", err)
		}
		m.kept, m.keptCPU = at.Sub(p.started), p.cpu()
	}
	mu.Lock()
	defer mu.Unlock()
	return m, nil
}

// keepsContents reports whether flags leave filecast's content store on.
func keepsContents(flags []string) bool {
	for i, f := range flags {
		if f == "--content-cap=0" || f == "--content-cap" && i+1 < len(flags) && flags[i+1] == "0" {
			return false
		}
	}
	return true
}

// waitKept polls the index file until it names a content store as kept
// (the background pass that keeps every file's content is over), and
// returns when it saw it.
func waitKept(ctx context.Context, index string) (time.Time, error) {
	t := time.NewTicker(10 * time.Millisecond)
	defer t.Stop()
	for {
		if b, err := os.ReadFile(index); err == nil && strings.Contains(string(b[:min(len(b), 512)]), `"kept":`) {
			return time.Now(), nil
		}
		select {
		case <-ctx.Done():
			return time.Time{}, ctx.Err()
		case <-t.C:
		}
	}
}

// runStartup measures how fast "filecast mcp --root" starts on a large
// workspace (first start on a fresh data folder, then a restart on it) and
// on a small one, beside two floors measured in this process: walking,
// watching and hashing the large workspace, and spawning the binary.
func runStartup(ctx context.Context, c Config) (Result, error) {
	t0 := time.Now()
	tree, err := c.Tree, error(nil)
	if tree != "" {
		c.Files, err = countFiles(tree)
	} else {
		tree, err = cachedTree(c.Dir, c.Files, c.FileSize)
	}
	if err != nil {
		return Result{}, err
	}
	made := time.Since(t0)
	base, root, _, err := makeBase(c)
	if err != nil {
		return Result{}, err
	}
	defer os.RemoveAll(base)
	r := Result{Summary: fmt.Sprintf("filecast mcp --root over stdio on %d files (nested folders) and on %d files", c.Files, smallFiles)}
	if made > time.Second && c.Tree == "" {
		r.note("made the %d-file workspace in %s (cached for later runs)", c.Files, made.Round(time.Millisecond))
	}

	walk, dirs, err := walkFloor(tree)
	if err != nil {
		return Result{}, err
	}
	r.fig(fmt.Sprintf("walk + watch %d folders + read and hash every file, in this process (floor)", dirs), millis(walk), "ms")

	for i, label := range []string{"first start, fresh data folder", "restart on the same data folder"} {
		m, err := startOnce(ctx, c, tree, filepath.Join(base, "data-big"))
		if err != nil {
			return Result{}, fmt.Errorf("%s: %w", label, err)
		}
		r.fig(fmt.Sprintf("spawn → initialize answered (%d files, %s)", c.Files, label), millis(m.init), "ms")
		r.fig(fmt.Sprintf("spawn → index complete (%d files, %s)", c.Files, label), millis(m.ready), "ms")
		if i == 0 {
			r.fig("indexing progress lines on stderr", float64(m.progress), "")
			if m.ready > 0 && m.cpu > 0 {
				r.fig("filecast CPU until the index is complete", millis(m.cpu), "ms")
			}
			if m.kept > 0 {
				r.fig("spawn → every file's content kept for diffs, in the background (first start)", millis(m.kept), "ms")
				r.fig("filecast CPU until every file's content is kept", millis(m.keptCPU), "ms")
				size, err := streamSize(filepath.Join(base, "data-big"), contentStream)
				if err != nil {
					return Result{}, err
				}
				r.fig("content store on disk", float64(size)/(1<<20), "MiB")
				r.fig("content store on disk per 10,000 files", float64(size)/(1<<20)*10000/float64(c.Files), "MiB")
			}
		}
		if m.rss > 0 {
			r.fig(fmt.Sprintf("filecast peak RSS when indexed (%s)", label), mib(m.rss), "MiB")
		}
	}

	small := filepath.Join(root, "small")
	if err := os.MkdirAll(small, 0o755); err != nil {
		return Result{}, err
	}
	if _, err := flatFiles(small, smallFiles); err != nil {
		return Result{}, err
	}
	var spawnFloor, inits, readys []time.Duration
	for i := range smallSpawns {
		t := time.Now()
		if err := exec.CommandContext(ctx, c.Binary, "version").Run(); err != nil {
			return Result{}, fmt.Errorf("run filecast version: %w", err)
		}
		spawnFloor = append(spawnFloor, time.Since(t))
		m, err := startOnce(ctx, c, small, filepath.Join(base, fmt.Sprintf("data-small-%d", i)))
		if err != nil {
			return Result{}, fmt.Errorf("small workspace: %w", err)
		}
		inits, readys = append(inits, m.init), append(readys, m.ready)
	}
	r.row("spawn → exit of filecast version (floor)", spawnFloor)
	r.row(fmt.Sprintf("spawn → initialize answered (%d files)", smallFiles), inits)
	r.row(fmt.Sprintf("spawn → index complete (%d files)", smallFiles), readys)
	r.note("index complete = the hub on the data folder's socket answers GET /healthz with 200 (503 \"starting\" before); " +
		"initialize is sent the moment the process is spawned")
	return r, nil
}

// countFiles counts the regular files under dir.
func countFiles(dir string) (int, error) {
	n := 0
	err := filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			n++
		}
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("count the files of %s: %w", dir, err)
	}
	return n, nil
}

// contentStream is the name of the JetStream stream of filecast's content
// store (events/content.StreamName).
const contentStream = "FILECAST_FILE_CONTENT"

// streamSize returns the bytes of the files of JetStream stream name
// under data, the data folder of a stopped filecast process.
func streamSize(data, name string) (int64, error) {
	var size int64
	found := false
	err := filepath.WalkDir(data, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() || d.Name() != name || filepath.Base(filepath.Dir(p)) != "streams" {
			return nil
		}
		found = true
		return filepath.WalkDir(p, func(_ string, f fs.DirEntry, err error) error {
			if err != nil || f.IsDir() {
				return err
			}
			info, err := f.Info()
			if err != nil {
				return err
			}
			size += info.Size()
			return nil
		})
	})
	if err != nil {
		return 0, fmt.Errorf("measure the stream %s: %w", name, err)
	}
	if !found {
		return 0, fmt.Errorf("measure the stream %s: not in %s", name, data)
	}
	return size, nil
}

// walkFloor walks ws, adds an fsnotify watch on every folder and reads
// and hashes every file: what any watcher must do to index it.
func walkFloor(ws string) (time.Duration, int, error) {
	w, err := fsnotify.NewWatcher()
	if err != nil {
		return 0, 0, fmt.Errorf("start bare fsnotify: %w", err)
	}
	defer w.Close()
	start := time.Now()
	dirs := 0
	h := sha256.New()
	buf := make([]byte, 64<<10)
	err = filepath.WalkDir(ws, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			dirs++
			return w.Add(p)
		}
		f, err := os.Open(p)
		if err != nil {
			return err
		}
		h.Reset()
		for {
			n, err := f.Read(buf)
			h.Write(buf[:n])
			if err == io.EOF {
				break
			}
			if err != nil {
				f.Close()
				return err
			}
		}
		return f.Close()
	})
	if err != nil {
		return 0, 0, fmt.Errorf("walk %s: %w", ws, err)
	}
	return time.Since(start), dirs, nil
}
