//go:build unix

package server_test

import (
	"context"
	"os"
	"syscall"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/client/transport"
	"github.com/mark3labs/mcp-go/mcp"

	"github.com/filecast/filecast/events"
	"github.com/filecast/filecast/server"
)

// TestServeStdio_BlockingPipe serves a host's stdin as it comes: a pipe in
// blocking mode. It is read through the poller (non-blocking) while
// serving, the session works, ServeStdio returns when ctx ends even though
// the pipe is left open, and the pipe is in blocking mode again.
func TestServeStdio_BlockingPipe(t *testing.T) {
	h := start(t, server.Options{}, "docs")
	var p [2]int
	if err := syscall.Pipe(p[:]); err != nil {
		t.Fatal(err)
	}
	in := os.NewFile(uintptr(p[0]), "stdin") // blocking, as a child process gets it
	inW := os.NewFile(uintptr(p[1]), "host")
	t.Cleanup(func() { in.Close(); inW.Close() })
	outR, outW, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { outR.Close(); outW.Close() })

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- h.srv.ServeStdio(ctx, in, outW) }()

	c := client.NewClient(transport.NewIO(outR, inW, nil), client.WithProtocolVersion(mcp.LATEST_LEGACY_PROTOCOL_VERSION))
	t.Cleanup(func() { _ = c.Close() })
	if err := c.Start(ctx); err != nil {
		t.Fatal(err)
	}
	initialize(t, c, "pipe-agent")
	h.src.Append("docs", events.FileCreated, "a.md")
	res := listChanges(t, c, map[string]any{"wait_ms": 5000})
	if len(res.Events) != 1 || res.Events[0].Path != "a.md" {
		t.Fatalf("list_changes = %+v, want a.md", res.Events)
	}

	if !nonblocking(t, p[0]) {
		t.Error("stdin is read with blocking system calls while serving")
	}

	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("ServeStdio = %v, want nil after ctx ended", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("ServeStdio did not return after ctx ended while stdin stayed open")
	}
	if nonblocking(t, p[0]) {
		t.Error("stdin was left in non-blocking mode")
	}
}

func nonblocking(t *testing.T, fd int) bool {
	t.Helper()
	flags, _, errno := syscall.Syscall(syscall.SYS_FCNTL, uintptr(fd), syscall.F_GETFL, 0)
	if errno != 0 {
		t.Fatal(errno)
	}
	return flags&syscall.O_NONBLOCK != 0
}
