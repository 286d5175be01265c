package relay_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/nats-io/nats.go"

	"github.com/filecast/filecast/events"
	"github.com/filecast/filecast/events/eventstest"
	"github.com/filecast/filecast/events/natsd/natstest"
	"github.com/filecast/filecast/events/relay"
	"github.com/filecast/filecast/events/wire"
)

// twoHubs starts a one-node cluster, hub A that watches "docs" and serves
// the relay, and hub B that does not watch it.
func twoHubs(t *testing.T) (a, b *node) {
	t.Helper()
	c := natstest.Cluster(t, 1)
	a = startHub(t, c, "docs", true)
	b = startHub(t, c, "docs", false)
	waitServing(t, b.client, "docs")
	return a, b
}

func TestHub_WriteFileThroughRelay(t *testing.T) {
	a, b := twoHubs(t)
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()

	ev, err := b.hub.WriteFile(ctx, events.WriteRequest{Workspace: "docs", Path: "notes/a.md", Content: []byte("hello"), Actor: "api:ci"})
	if err != nil {
		t.Fatalf("write through B: %v", err)
	}
	if ev.Seq == 0 || ev.Type != events.FileCreated || ev.Actor != "api:ci" || ev.Path != "notes/a.md" || ev.Size != 5 {
		t.Fatalf("write through B returned %+v", ev)
	}
	if got, err := os.ReadFile(filepath.Join(a.dir, "notes", "a.md")); err != nil || string(got) != "hello" {
		t.Fatalf("A's folder holds %q, %v; want hello", got, err)
	}
	if _, err := os.Stat(filepath.Join(b.dir, "notes")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("B wrote into its own folder: %v", err)
	}

	// A change made on disk afterwards bounds the wait for a duplicate:
	// the watcher reports in order, so a second event for a.md would come
	// before the marker's.
	if err := os.WriteFile(filepath.Join(a.dir, "marker.txt"), []byte("m"), 0o644); err != nil {
		t.Fatal(err)
	}
	var marker events.Event
	for _, e := range changes(t, a.hub, "docs", ev.Seq, ev.Seq+1) {
		marker = e
	}
	for marker.Path != "marker.txt" {
		got := changes(t, a.hub, "docs", marker.Seq, marker.Seq+1)
		marker = got[len(got)-1]
	}
	for name, h := range map[string]*node{"A": a, "B": b} {
		got := changes(t, h.hub, "docs", ev.Seq-1, marker.Seq)
		var paths []string
		for _, e := range got {
			paths = append(paths, e.Actor+" "+string(e.Type)+" "+e.Path)
		}
		want := []string{"api:ci file.created notes/a.md", "fs file.created marker.txt"}
		if diff := cmp.Diff(want, paths); diff != "" {
			t.Errorf("hub %s's changes (-want +got):\n%s", name, diff)
		}
		if len(got) > 0 && got[0].ID != ev.ID {
			t.Errorf("hub %s's event %s, the write returned %s", name, got[0].ID, ev.ID)
		}
	}

	// Unchanged content: no event, as locally.
	same, err := b.hub.WriteFile(ctx, events.WriteRequest{Workspace: "docs", Path: "notes/a.md", Content: []byte("hello")})
	if err != nil || !cmp.Equal(same, events.Event{}) {
		t.Fatalf("unchanged write through B = %+v, %v; want the zero event", same, err)
	}

	del, err := b.hub.WriteFile(ctx, events.WriteRequest{Workspace: "docs", Path: "notes/a.md", Delete: true, Actor: "mcp:claude"})
	if err != nil || del.Type != events.FileDeleted || del.Actor != "mcp:claude" {
		t.Fatalf("delete through B = %+v, %v", del, err)
	}
	if _, err := os.Stat(filepath.Join(a.dir, "notes", "a.md")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("after the delete: %v", err)
	}

	// Listing through B is A's index.
	wantList, err := a.hub.Files(ctx, "docs", "")
	if err != nil {
		t.Fatal(err)
	}
	gotList, err := b.hub.Files(ctx, "docs", "")
	if err != nil {
		t.Fatalf("files through B: %v", err)
	}
	if diff := cmp.Diff(wantList, gotList); diff != "" || len(gotList.Files) != 1 {
		t.Errorf("B's listing (-A's +B's), %d files:\n%s", len(gotList.Files), diff)
	}

	// A read through B describes the file with the version A's index gives
	// it (B reads its own view of the folder; here a copy of it).
	if err := os.WriteFile(filepath.Join(b.dir, "marker.txt"), []byte("m"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, info, err := b.hub.ReadFile(ctx, "docs", "marker.txt", events.Range{}); err != nil || info.Version != marker.Seq {
		t.Errorf("read through B: version %d, %v; want %d, the seq of marker.txt's event", info.Version, err, marker.Seq)
	}

	// Without its relay, B is a hub alone again: an empty listing.
	b.hub.SetRelay("docs", nil)
	alone, err := b.hub.Files(ctx, "docs", "")
	if err != nil || len(alone.Files) != 0 {
		t.Errorf("B without relay listed %+v, %v", alone, err)
	}
}

func TestHub_WriteFileThroughRelayErrors(t *testing.T) {
	a, b := twoHubs(t)
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	if err := os.WriteFile(filepath.Join(a.dir, "locked.md"), []byte("v1"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(a.dir, "folder"), 0o755); err != nil {
		t.Fatal(err)
	}
	other, err := a.hub.Lock(ctx, events.LockRequest{Workspace: "docs", Path: "locked.md", Holder: "claude#3f2a", TTL: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	mine, err := a.hub.Lock(ctx, events.LockRequest{Workspace: "docs", Path: "mine.md", Holder: "cursor#77", TTL: time.Minute})
	if err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name string
		req  events.WriteRequest
		want error
		lock bool // a *events.LockError naming the holder
	}{
		{"locked", events.WriteRequest{Path: "locked.md", Content: []byte("v2")}, events.ErrLocked, true},
		{"stale fencing token", events.WriteRequest{Path: "mine.md", Content: []byte("x"), LockToken: mine.Token, FencingToken: mine.FencingToken + 1}, events.ErrStale, true},
		{"unknown lock token", events.WriteRequest{Path: "free.md", Content: []byte("x"), LockToken: "nope"}, events.ErrStale, true},
		{"lock token of someone else's lock", events.WriteRequest{Path: "mine.md", Content: []byte("x"), LockToken: "nope"}, events.ErrLocked, true},
		{"escapes", events.WriteRequest{Path: "../outside.md", Content: []byte("x")}, events.ErrBadPath, false},
		{"folder", events.WriteRequest{Path: "folder", Content: []byte("x")}, events.ErrBadPath, false},
		{"delete missing", events.WriteRequest{Path: "missing.md", Delete: true}, events.ErrNotFound, false},
		{"too large", events.WriteRequest{Path: "big.bin", Content: make([]byte, events.MaxReadSize+1)}, events.ErrTooLarge, false},
		{"git config", events.WriteRequest{Path: ".git/config", Content: []byte("[core]\n\tfsmonitor = touch pwned\n")}, events.ErrVCSInternal, false},
		{"nested hook", events.WriteRequest{Path: "vendor/x/.git/hooks/pre-commit", Content: []byte("#!/bin/sh\n")}, events.ErrVCSInternal, false},
		{"delete in .hg", events.WriteRequest{Path: ".hg/hgrc", Delete: true}, events.ErrVCSInternal, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.req.Workspace = "docs"
			_, errB := b.hub.WriteFile(ctx, tt.req)
			_, errA := a.hub.WriteFile(ctx, tt.req) // the same call made locally
			if errB == nil || errA == nil {
				t.Fatalf("through B: %v; on A: %v; want both to fail", errB, errA)
			}
			if !errors.Is(errB, tt.want) {
				t.Errorf("through B: %v; want errors.Is %v", errB, tt.want)
			}
			if errB.Error() != errA.Error() {
				t.Errorf("through B the error reads\n%s\non A\n%s", errB, errA)
			}
			sb, cb := wire.ErrorCode(errB)
			sa, ca := wire.ErrorCode(errA)
			if sb != sa || cb != ca {
				t.Errorf("HTTP answer through B %d %s, on A %d %s", sb, cb, sa, ca)
			}
			if tt.lock {
				leB, okB := errors.AsType[*events.LockError](errB)
				leA, _ := errors.AsType[*events.LockError](errA)
				if !okB {
					t.Fatalf("through B: %v is not a *events.LockError", errB)
				}
				if diff := cmp.Diff(*leA, *leB, cmpopts.EquateErrors()); diff != "" {
					t.Errorf("lock error (-on A +through B):\n%s", diff)
				}
			} else if ie, ok := errors.AsType[*events.Error](errA); ok {
				got, ok := errors.AsType[*events.Error](errB)
				if !ok || !cmp.Equal(*ie, *got, cmpopts.EquateErrors()) {
					t.Errorf("input error through B %+v, on A %+v", got, ie)
				}
			}
		})
	}
	for _, p := range []string{".git", "vendor/x/.git"} {
		if _, err := os.Stat(filepath.Join(a.dir, p)); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("a refused write made %s: %v", p, err)
		}
	}
	// A listing of a version-control folder is refused through B as on A.
	if _, err := b.hub.Files(ctx, "docs", ".git/"); !errors.Is(err, events.ErrVCSInternal) {
		t.Errorf("listing .git/ through B: %v; want ErrVCSInternal", err)
	}
	le, _ := errors.AsType[*events.LockError](func() error {
		_, err := b.hub.WriteFile(ctx, events.WriteRequest{Workspace: "docs", Path: "locked.md", Content: []byte("v2")})
		return err
	}())
	if le == nil || le.Holder != "claude#3f2a" || !le.ExpiresAt.Equal(other.ExpiresAt) {
		t.Errorf("lock error through B = %+v; want holder claude#3f2a until %v", le, other.ExpiresAt)
	}
	if got, _ := os.ReadFile(filepath.Join(a.dir, "locked.md")); string(got) != "v1" {
		t.Errorf("the locked file holds %q", got)
	}

	// The holder's own write goes through, with its lock on the event.
	ev, err := b.hub.WriteFile(ctx, events.WriteRequest{Workspace: "docs", Path: "mine.md", Content: []byte("x"), LockToken: mine.Token, FencingToken: mine.FencingToken, Actor: "mcp:cursor"})
	if err != nil {
		t.Fatalf("holder's write through B: %v", err)
	}
	if ev.Lock == nil || ev.Lock.Holder != "cursor#77" || ev.Lock.FencingToken != mine.FencingToken || ev.Conflict {
		t.Errorf("holder's write event %+v (lock %+v)", ev, ev.Lock)
	}
}

func TestHub_RelayChunks(t *testing.T) {
	a, b := twoHubs(t)
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	if mp := b.nc.MaxPayload(); mp > 1<<20 {
		t.Fatalf("max_payload %d: the test expects the 1 MiB default", mp)
	}
	content := bytes.Repeat([]byte("0123456789abcdef"), 3<<20/16) // 3 MiB: four messages
	content[len(content)-1] = '!'
	ev, err := b.hub.WriteFile(ctx, events.WriteRequest{Workspace: "docs", Path: "big.bin", Content: content, Actor: "api:ci"})
	if err != nil {
		t.Fatalf("3 MiB write through B: %v", err)
	}
	if ev.Size != int64(len(content)) {
		t.Errorf("event size %d, want %d", ev.Size, len(content))
	}
	if got, err := os.ReadFile(filepath.Join(a.dir, "big.bin")); err != nil || !bytes.Equal(got, content) {
		t.Fatalf("A's folder holds %d bytes (%v), want the %d written", len(got), err, len(content))
	}
}

// TestClient_FilesLarge relays a listing of 30,000 files, several
// messages long.
func TestClient_FilesLarge(t *testing.T) {
	c := natstest.Cluster(t, 1)
	nc := connect(t, c)
	want := events.Listing{Workspace: "big", Cursor: 99}
	mtime := time.Date(2026, 11, 27, 10, 0, 0, 123456789, time.UTC)
	for i := range 30000 {
		want.Files = append(want.Files, events.FileInfo{
			Path: fmt.Sprintf("src/pkg%03d/file%05d.go", i%1000, i), Size: int64(i),
			SHA256: fmt.Sprintf("%064x", i), ModTime: mtime, Version: uint64(i % 7),
		})
	}
	local := fakeLocal{files: func(_ context.Context, ws, prefix string) (events.Listing, error) {
		switch {
		case ws != "big":
			return events.Listing{}, fmt.Errorf("asked for %q", ws)
		case prefix == "":
			return events.Listing{Workspace: ws, Files: []events.FileInfo{}}, nil
		}
		return want, nil
	}}
	run(t, "relay", func(ctx context.Context) error { return relay.Serve(ctx, nc, "big", local, relay.Options{}) })
	client := relay.New(connect(t, c), relay.Options{})
	waitServing(t, client, "big")
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	got, err := client.Files(ctx, "big", "src/")
	if err != nil {
		t.Fatalf("files: %v", err)
	}
	// Field by field: a diff of 30,000 entries takes seconds under -race.
	if got.Workspace != want.Workspace || got.Cursor != want.Cursor || len(got.Files) != len(want.Files) {
		t.Fatalf("listing of %s at %d with %d files, want %s at %d with %d", got.Workspace, got.Cursor, len(got.Files), want.Workspace, want.Cursor, len(want.Files))
	}
	for i, f := range got.Files {
		w := want.Files[i]
		if f.Path != w.Path || f.Size != w.Size || f.SHA256 != w.SHA256 || !f.ModTime.Equal(w.ModTime) || f.Version != w.Version {
			t.Fatalf("file %d: %+v, want %+v", i, f, w)
		}
	}
}

func TestClient_NoLeader(t *testing.T) {
	c := natstest.Cluster(t, 1)
	client := relay.New(connect(t, c), relay.Options{})
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	start := time.Now()
	_, werr := client.WriteFile(ctx, events.WriteRequest{Workspace: "docs", Path: "a.md", Content: []byte("x")})
	_, ferr := client.Files(ctx, "docs", "")
	if took := time.Since(start); took > 2*time.Second {
		t.Errorf("no leader took %v to tell", took)
	}
	for _, err := range []error{werr, ferr} {
		if !errors.Is(err, relay.ErrNoLeader) || !errors.Is(err, nats.ErrNoResponders) || errors.Is(err, relay.ErrOutcomeUnknown) {
			t.Errorf("err = %v; want ErrNoLeader and nats.ErrNoResponders", err)
		}
		if status, code := wire.ErrorCode(err); status != 503 || code != wire.CodeUnavailable {
			t.Errorf("HTTP answer %d %s, want 503 unavailable", status, code)
		}
	}
}

// blockingServe serves workspace ws with a Local whose WriteFile waits
// for its context (and returns its error) and tells when it is called.
func blockingServe(t *testing.T, nc *nats.Conn, ws string) (called <-chan string, stop context.CancelFunc, done <-chan struct{}) {
	t.Helper()
	ch := make(chan string, 16)
	release := make(chan struct{})
	local := fakeLocal{
		files: func(context.Context, string, string) (events.Listing, error) {
			return events.Listing{Workspace: ws}, nil
		},
		write: func(ctx context.Context, w events.WriteRequest) (events.Event, error) {
			ch <- w.Path
			if w.Path == "hung.md" { // a hub that hangs: its answer is lost
				<-release
				return events.Event{}, nil
			}
			<-ctx.Done()
			return events.Event{}, fmt.Errorf("write: %w", ctx.Err())
		},
	}
	ctx, cancel := context.WithCancel(context.Background())
	fin := make(chan struct{})
	go func() {
		defer close(fin)
		if err := relay.Serve(ctx, nc, ws, local, relay.Options{}); err != nil {
			t.Errorf("serve: %v", err)
		}
	}()
	t.Cleanup(func() { close(release); cancel(); <-fin })
	return ch, cancel, fin
}

// waitCalled waits until the blocking Local has been asked to write path.
func waitCalled(t *testing.T, called <-chan string, path string) {
	t.Helper()
	deadline := time.After(timeout)
	for {
		select {
		case p := <-called:
			if p == path {
				return
			}
		case <-deadline:
			t.Fatalf("the write of %s did not reach the watching hub", path)
		}
	}
}

func TestClient_WriteFileOutcomeUnknown(t *testing.T) {
	c := natstest.Cluster(t, 1)
	nc := connect(t, c)
	called, _, _ := blockingServe(t, nc, "docs")
	waitServing(t, relay.New(nc, relay.Options{}), "docs")
	req := events.WriteRequest{Workspace: "docs", Path: "a.md", Content: []byte("x")}

	t.Run("timeout", func(t *testing.T) {
		client := relay.New(connect(t, c), relay.Options{Timeout: 300 * time.Millisecond})
		start := time.Now()
		req := req
		req.Path = "hung.md"
		_, err := client.WriteFile(context.Background(), req)
		if !errors.Is(err, relay.ErrOutcomeUnknown) || !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("err = %v; want ErrOutcomeUnknown and context.DeadlineExceeded", err)
		}
		if took := time.Since(start); took > 3*time.Second {
			t.Errorf("the timeout took %v", took)
		}
		if status, _ := wire.ErrorCode(err); status != 503 {
			t.Errorf("HTTP status %d, want 503", status)
		}
	})
	t.Run("cancel", func(t *testing.T) {
		client := relay.New(connect(t, c), relay.Options{})
		ctx, cancel := context.WithCancel(context.Background())
		errc := make(chan error, 1)
		go func() {
			req := req
			req.Path = "cancel.md"
			_, err := client.WriteFile(ctx, req)
			errc <- err
		}()
		waitCalled(t, called, "cancel.md")
		cancel()
		select {
		case err := <-errc:
			if !errors.Is(err, relay.ErrOutcomeUnknown) || !errors.Is(err, context.Canceled) {
				t.Errorf("err = %v; want ErrOutcomeUnknown and context.Canceled", err)
			}
		case <-time.After(timeout):
			t.Fatal("WriteFile did not return after its context was cancelled")
		}
	})
	t.Run("budget", func(t *testing.T) {
		// A hub that honours its context answers before the caller gives
		// up: the caller learns that nothing was written.
		client := relay.New(connect(t, c), relay.Options{Timeout: 500 * time.Millisecond})
		_, err := client.WriteFile(context.Background(), req)
		if !errors.Is(err, context.DeadlineExceeded) || errors.Is(err, relay.ErrOutcomeUnknown) {
			t.Errorf("err = %v; want the watching hub's context.DeadlineExceeded", err)
		}
	})
	t.Run("cancelled before", func(t *testing.T) {
		client := relay.New(connect(t, c), relay.Options{})
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		_, err := client.WriteFile(ctx, req)
		if !errors.Is(err, context.Canceled) || errors.Is(err, relay.ErrOutcomeUnknown) {
			t.Errorf("err = %v; want context.Canceled alone: nothing was sent", err)
		}
	})
}

// TestServe_Stop checks that a write in progress when the watching hub
// stops is answered ErrNoLeader (nothing was done), and that Serve then
// returns and stops answering.
func TestServe_Stop(t *testing.T) {
	c := natstest.Cluster(t, 1)
	nc := connect(t, c)
	called, stop, done := blockingServe(t, nc, "docs")
	client := relay.New(connect(t, c), relay.Options{})
	waitServing(t, client, "docs")
	errc := make(chan error, 1)
	go func() {
		_, err := client.WriteFile(context.Background(), events.WriteRequest{Workspace: "docs", Path: "a.md"})
		errc <- err
	}()
	waitCalled(t, called, "a.md")
	stop()
	select {
	case err := <-errc:
		if !errors.Is(err, relay.ErrNoLeader) || errors.Is(err, relay.ErrOutcomeUnknown) {
			t.Errorf("err = %v; want ErrNoLeader", err)
		}
	case <-time.After(timeout):
		t.Fatal("WriteFile did not return after Serve stopped")
	}
	select {
	case <-done:
	case <-time.After(timeout):
		t.Fatal("Serve did not return")
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	if _, err := client.Files(ctx, "docs", ""); !errors.Is(err, relay.ErrNoLeader) {
		t.Errorf("files after Serve returned: %v; want ErrNoLeader", err)
	}
}

// TestServe_NoLoop serves a workspace with a Local that would relay again
// (a hub that serves it without watching it): the request is refused
// with ErrNoLeader instead of reaching the same hub over and over.
func TestServe_NoLoop(t *testing.T) {
	c := natstest.Cluster(t, 1)
	nc := connect(t, c)
	self := relay.New(nc, relay.Options{})
	run(t, "relay", func(ctx context.Context) error { return relay.Serve(ctx, nc, "docs", self, relay.Options{}) })
	client := relay.New(connect(t, c), relay.Options{Timeout: 5 * time.Second})
	eventstest.Within(t, timeout, "an answer from Serve, not \"no responders\"", func() bool {
		_, err := client.WriteFile(context.Background(), events.WriteRequest{Workspace: "docs", Path: "a.md"})
		if !errors.Is(err, relay.ErrNoLeader) {
			t.Fatalf("err = %v; want ErrNoLeader", err)
		}
		return strings.Contains(err.Error(), "stopped watching")
	})
}

func TestServe_Config(t *testing.T) {
	c := natstest.Cluster(t, 1)
	nc := connect(t, c)
	local := fakeLocal{}
	for _, tt := range []struct {
		name  string
		nc    *nats.Conn
		ws    string
		local relay.Local
	}{
		{"no connection", nil, "docs", local},
		{"no local", nc, "docs", nil},
		{"bad name", nc, "a b", local},
		{"wildcard", nc, "*", local},
	} {
		if err := relay.Serve(context.Background(), tt.nc, tt.ws, tt.local, relay.Options{}); !errors.Is(err, relay.ErrConfig) {
			t.Errorf("%s: %v; want ErrConfig", tt.name, err)
		}
	}
}

func TestWriteSubject(t *testing.T) {
	names := []string{"docs", "Docs", "my.docs", "my_2edocs", "a-b", "_x", "v1.2-rc_3"}
	seen := map[string]string{}
	for _, ws := range names {
		if err := events.ValidWorkspaceName(ws); err != nil {
			t.Fatalf("%q: %v", ws, err)
		}
		for _, s := range []string{relay.WriteSubject(ws), relay.FilesSubject(ws)} {
			toks := strings.Split(s, ".")
			if len(toks) != 4 || toks[0] != "filecast" || toks[1] != "relay" || strings.ContainsAny(s, "*> \t") {
				t.Errorf("%q: subject %q is not four plain tokens", ws, s)
			}
			if other, dup := seen[s]; dup {
				t.Errorf("%q and %q share the subject %q", ws, other, s)
			}
			seen[s] = ws
		}
	}
	if got := relay.WriteSubject("my.docs"); got != "filecast.relay.my_2edocs.write" {
		t.Errorf("WriteSubject(my.docs) = %q", got)
	}
}

func BenchmarkClient_WriteFile(b *testing.B) {
	c := natstest.Cluster(b, 1)
	ctx, cancel := context.WithCancel(context.Background())
	nc := connect(b, c)
	local := fakeLocal{write: func(_ context.Context, w events.WriteRequest) (events.Event, error) {
		return events.Event{ID: "01J", Seq: 1, Type: events.FileUpdated, Workspace: w.Workspace, Path: w.Path, Size: int64(len(w.Content)), Actor: w.Actor}, nil
	}}
	done := make(chan struct{})
	go func() { defer close(done); _ = relay.Serve(ctx, nc, "docs", local, relay.Options{}) }()
	defer func() { cancel(); <-done }()
	client := relay.New(connect(b, c), relay.Options{})
	req := events.WriteRequest{Workspace: "docs", Path: "notes/a.md", Content: bytes.Repeat([]byte("x"), 4096), Actor: "api:bench"}
	eventstest.Within(b, timeout, "the relay to be served", func() bool {
		_, err := client.WriteFile(ctx, req)
		return err == nil
	})
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if _, err := client.WriteFile(ctx, req); err != nil {
			b.Fatal(err)
		}
	}
}
