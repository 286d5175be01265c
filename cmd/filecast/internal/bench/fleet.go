package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/sourcegraph/conc"
)

// wsName is the workspace name every scenario serves.
const wsName = "bench"

// uriPrefix starts the resource URI of every file of the workspace
// (resources.URI: "filecast://<workspace>/<path>").
const uriPrefix = "filecast://" + wsName + "/"

// makeBase makes a fresh folder under c.Dir holding ws/ (the workspace)
// and data/ (filecast's state). The caller removes it.
func makeBase(c Config) (base, root, data string, err error) {
	base, err = os.MkdirTemp(c.Dir, "fcb-")
	if err != nil {
		return "", "", "", fmt.Errorf("make workspace: %w", err)
	}
	root, data = filepath.Join(base, "ws"), filepath.Join(base, "data")
	if err := os.MkdirAll(root, 0o755); err != nil {
		os.RemoveAll(base)
		return "", "", "", fmt.Errorf("make workspace: %w", err)
	}
	return base, root, data, nil
}

// flatFiles creates n files f00000.txt… in root with the content "init".
func flatFiles(root string, n int) ([]string, error) {
	names := make([]string, n)
	for i := range names {
		names[i] = fmt.Sprintf("f%05d.txt", i)
		if err := os.WriteFile(filepath.Join(root, names[i]), []byte("init"), 0o644); err != nil {
			return nil, fmt.Errorf("make workspace: %w", err)
		}
	}
	return names, nil
}

// session is one MCP session the benchmark drives: a consumer long-polls
// list_changes into changes, and its resource notifications go to notes.
type session struct {
	c       *rpcClient
	changes *heard
	notes   *heard
	nerr    int // list_changes calls that failed
	// Owned by the consumer goroutine.
	cursor    string
	useCursor bool
	overflows int
}

// fleet is the filecast processes of a run and the sessions on them.
type fleet struct {
	procs    procs
	sessions []*session
	hc       *http.Client
}

// close ends every session and process.
func (f *fleet) close() {
	for _, s := range f.sessions {
		if s.c.url != "" {
			s.c.close()
		}
	}
	f.procs.stop()
	for _, s := range f.sessions {
		if s.c.url == "" {
			s.c.close()
		}
	}
	if f.hc != nil {
		f.hc.CloseIdleConnections()
	}
}

func (f *fleet) newSession(l *ledger) *session {
	s := &session{changes: l.newHeard(), notes: l.newHeard()}
	f.sessions = append(f.sessions, s)
	return s
}

// onNote records notifications/resources/updated into s.notes.
func (s *session) onNote(l *ledger) func(string, json.RawMessage, time.Time) {
	return func(method string, params json.RawMessage, at time.Time) {
		if method != "notifications/resources/updated" {
			return
		}
		var p struct {
			URI string `json:"uri"`
		}
		if json.Unmarshal(params, &p) != nil {
			return
		}
		l.cover(s.notes, strings.TrimPrefix(p.URI, uriPrefix), at)
	}
}

// startFleet starts filecast as the scenario needs and connects
// c.Sessions sessions:
//   - embedded, stdio: one "filecast mcp --root" per session on one data
//     folder (the first owns the hub, the others share it);
//   - embedded, HTTP: one "filecast mcp --http --root", c.Sessions
//     streamable-HTTP sessions;
//   - remote: "filecast hub" and one "filecast mcp --hub" per session, over stdio.
func startFleet(ctx context.Context, c Config, l *ledger, data string, remote bool) (_ *fleet, err error) {
	f := &fleet{}
	defer func() {
		if err != nil {
			f.close()
		}
	}()
	root := "bench=" + l.root
	stdioSession := func(args []string) error {
		p, err := spawn("filecast mcp", c.Binary, args, true, c.Log)
		if err != nil {
			return err
		}
		f.procs = append(f.procs, p)
		s := f.newSession(l)
		s.c = newStdioClient(p, s.onNote(l))
		ictx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		if _, err := s.c.initialize(ictx); err != nil {
			return fmt.Errorf("session %d: %w", len(f.sessions), err)
		}
		return nil
	}
	switch {
	case remote:
		addr, err := freeAddr()
		if err != nil {
			return nil, err
		}
		hub, err := spawn("filecast hub", c.Binary, append([]string{"hub", "--root", root, "--data", data, "--listen", addr, "--log-level", "warn"}, c.Flags...), false, c.Log)
		if err != nil {
			return nil, err
		}
		f.procs = append(f.procs, hub)
		hc := &http.Client{Timeout: 5 * time.Second}
		_, err = waitHealthy(ctx, hc, "http://"+addr+"/healthz", hub, 10*time.Millisecond, 30*time.Second)
		hc.CloseIdleConnections()
		if err != nil {
			return nil, err
		}
		for range c.Sessions {
			if err := stdioSession([]string{"mcp", "--hub", "http://" + addr, "--log-level", "warn"}); err != nil {
				return nil, err
			}
		}
	case c.Stdio:
		for range c.Sessions {
			if err := stdioSession(append([]string{"mcp", "--root", root, "--data", data, "--log-level", "warn"}, c.Flags...)); err != nil {
				return nil, err
			}
		}
	default:
		addr, err := freeAddr()
		if err != nil {
			return nil, err
		}
		p, err := spawn("filecast mcp", c.Binary, append([]string{"mcp", "--http", addr, "--root", root, "--data", data, "--log-level", "warn"}, c.Flags...), false, c.Log)
		if err != nil {
			return nil, err
		}
		f.procs = append(f.procs, p)
		f.hc = &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 2*c.Sessions + 4}}
		deadline := time.Now().Add(30 * time.Second)
		for i := range c.Sessions {
			s := f.newSession(l)
			for {
				s.c = newHTTPClient("http://"+addr+"/mcp", f.hc, s.onNote(l))
				_, err := s.c.initialize(ctx)
				if err == nil {
					break
				}
				s.c.close()
				if p.exited() || time.Now().After(deadline) || ctx.Err() != nil {
					return nil, fmt.Errorf("connect session %d: %w", i, err)
				}
				time.Sleep(20 * time.Millisecond)
			}
		}
	}
	return f, f.subscribe(ctx, l)
}

// subscribe makes every session subscribe to the file events of the
// workspace (the subscribe tool) and to each written file's resource
// (resources/subscribe). The URIs follow the resource template; the first
// page of resources/list must hold the first of them.
func (f *fleet) subscribe(ctx context.Context, l *ledger) error {
	var list struct {
		Resources []struct {
			URI string `json:"uri"`
		} `json:"resources"`
	}
	if _, err := f.sessions[0].c.call(ctx, "resources/list", map[string]any{}, &list); err != nil {
		return err
	}
	want := uriPrefix + l.names[0]
	found := false
	for _, r := range list.Resources {
		found = found || r.URI == want
	}
	if !found {
		return fmt.Errorf("resources/list does not list %s (%d resources on its first page)", want, len(list.Resources))
	}
	var wg conc.WaitGroup
	var mu sync.Mutex
	var first error
	for _, s := range f.sessions {
		wg.Go(func() {
			err := s.subscribe(ctx, l)
			mu.Lock()
			if first == nil {
				first = err
			}
			mu.Unlock()
		})
	}
	wg.Wait()
	return first
}

func (s *session) subscribe(ctx context.Context, l *ledger) error {
	if _, err := s.c.callTool(ctx, "subscribe", map[string]any{"paths": []string{"**"}, "events": []string{"created", "updated"}}, nil); err != nil {
		return err
	}
	for _, n := range l.names {
		if _, err := s.c.call(ctx, "resources/subscribe", map[string]any{"uri": uriPrefix + n}, nil); err != nil {
			return err
		}
	}
	return nil
}

// changesPage is the part of a list_changes result the benchmark reads.
type changesPage struct {
	Events []struct {
		Type      string    `json:"type"`
		Path      string    `json:"path"`
		OldPath   string    `json:"old_path"`
		SHA256    string    `json:"sha256"`
		Timestamp time.Time `json:"timestamp"`
	} `json:"events"`
	Cursor     string `json:"cursor"`
	HasMore    bool   `json:"has_more"`
	Overflowed bool   `json:"overflowed"`
}

// consume long-polls list_changes (limit 1000) until ctx is done, feeding
// the events to fn. After an overflow it reads the log by cursor from the
// last cursor it was given, as an agent must.
func (s *session) consume(ctx context.Context, fn func(p *changesPage, at time.Time)) {
	for ctx.Err() == nil {
		// Full events: the benchmark needs each event's sha256 and its
		// timestamp to the microsecond.
		args := map[string]any{"wait_ms": 500, "limit": 1000, "detail": "full"}
		if s.useCursor {
			args["cursor"] = s.cursor
		}
		var p changesPage
		at, err := s.c.callTool(ctx, "list_changes", args, &p)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			s.nerr++
			time.Sleep(10 * time.Millisecond)
			continue
		}
		fn(&p, at)
		s.cursor = p.Cursor
		if p.Overflowed {
			s.overflows++
			s.useCursor = true
		}
	}
}
