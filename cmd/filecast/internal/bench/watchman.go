package bench

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"time"
)

// watchmanSettle is the settle period, in milliseconds, the watchman the
// benchmark compares with runs with (watchman's default is 20).
const watchmanSettle = 1

// watchman is a private watchman server (its own socket, state and log)
// watching one folder, and a subscription to every file in it: the other
// file watcher the mixed and ramp scenarios measure beside filecast.
type watchman struct {
	p    *proc
	conn net.Conn
	br   *bufio.Reader
	dir  string // the server's socket, state and log
}

// errNoWatchman reports that the watchman command is not installed.
var errNoWatchman = errors.New("the watchman command is not installed")

// startWatchman writes root/.watchmanconfig (settle watchmanSettle ms),
// starts a watchman server of its own and subscribes to every file under
// root. It returns errNoWatchman when watchman is not installed.
func startWatchman(ctx context.Context, root string, stderr io.Writer) (_ *watchman, err error) {
	bin, err := exec.LookPath("watchman")
	if err != nil {
		return nil, errNoWatchman
	}
	cfg := fmt.Sprintf(`{"settle": %d}`, watchmanSettle)
	if err := os.WriteFile(filepath.Join(root, ".watchmanconfig"), []byte(cfg), 0o644); err != nil {
		return nil, fmt.Errorf("configure watchman: %w", err)
	}
	dir, err := os.MkdirTemp("", "fcb-wm-") // short: a socket path is at most 108 bytes
	if err != nil {
		return nil, fmt.Errorf("start watchman: %w", err)
	}
	w := &watchman{dir: dir}
	defer func() {
		if err != nil {
			w.close()
		}
	}()
	sock := filepath.Join(dir, "sock")
	w.p, err = spawn("watchman", bin, []string{"--foreground", "--no-save-state",
		"--sockname=" + sock, "--logfile=" + filepath.Join(dir, "log"),
		"--statefile=" + filepath.Join(dir, "state"), "--pidfile=" + filepath.Join(dir, "pid")}, false, stderr)
	if err != nil {
		return nil, err
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		var d net.Dialer
		w.conn, err = d.DialContext(ctx, "unix", sock)
		if err == nil {
			break
		}
		if w.p.exited() || time.Now().After(deadline) || ctx.Err() != nil {
			return nil, fmt.Errorf("connect to watchman: %w", err)
		}
		time.Sleep(10 * time.Millisecond)
	}
	w.br = bufio.NewReaderSize(w.conn, 1<<16)
	_ = w.conn.SetDeadline(time.Now().Add(30 * time.Second))
	if _, err := w.call([]any{"watch-project", root}); err != nil {
		return nil, err
	}
	sub := map[string]any{"expression": []any{"type", "f"}, "fields": []string{"name"}, "empty_on_fresh_instance": true}
	if _, err := w.call([]any{"subscribe", root, "bench", sub}); err != nil {
		return nil, err
	}
	_ = w.conn.SetDeadline(time.Time{})
	return w, nil
}

// watchmanMsg is the part of a watchman message the benchmark reads.
type watchmanMsg struct {
	Error        string          `json:"error"`
	Unilateral   bool            `json:"unilateral"`
	Subscription string          `json:"subscription"`
	Files        json.RawMessage `json:"files"`
}

// call sends a command and returns its answer.
func (w *watchman) call(cmd []any) (watchmanMsg, error) {
	b, err := json.Marshal(cmd)
	if err != nil {
		return watchmanMsg{}, err
	}
	if _, err := w.conn.Write(append(b, '\n')); err != nil {
		return watchmanMsg{}, fmt.Errorf("watchman %v: %w", cmd[0], err)
	}
	m, err := w.read()
	if err != nil {
		return m, fmt.Errorf("watchman %v: %w", cmd[0], err)
	}
	if m.Error != "" {
		return m, fmt.Errorf("watchman %v: %s", cmd[0], m.Error)
	}
	return m, nil
}

func (w *watchman) read() (watchmanMsg, error) {
	line, err := w.br.ReadBytes('\n')
	if err != nil {
		return watchmanMsg{}, err
	}
	var m watchmanMsg
	if err := json.Unmarshal(line, &m); err != nil {
		return m, fmt.Errorf("decode watchman message: %w", err)
	}
	return m, nil
}

// run reads the subscription's messages until the connection closes,
// calling fn with each file name reported and when its message was read.
func (w *watchman) run(fn func(name string, at time.Time)) {
	for {
		line, err := w.br.ReadBytes('\n')
		at := time.Now()
		if err != nil {
			return
		}
		var m watchmanMsg
		if json.Unmarshal(line, &m) != nil || !m.Unilateral {
			continue
		}
		var names []string
		if json.Unmarshal(m.Files, &names) != nil {
			// With one field, files is a list of names; else of objects.
			var objs []struct {
				Name string `json:"name"`
			}
			_ = json.Unmarshal(m.Files, &objs)
			for _, o := range objs {
				names = append(names, o.Name)
			}
		}
		for _, n := range names {
			fn(n, at)
		}
	}
}

// cpu returns the CPU time the watchman server has used.
func (w *watchman) cpu() time.Duration { return w.p.cpu() }

// close ends the subscription and the server and removes its folder.
func (w *watchman) close() {
	if w.conn != nil {
		w.conn.Close()
	}
	if w.p != nil {
		w.p.stop()
	}
	os.RemoveAll(w.dir)
}
