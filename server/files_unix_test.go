//go:build unix

package server_test

import (
	"syscall"
	"testing"

	"github.com/mark3labs/mcp-go/client"

	"github.com/filecast/filecast/events/hub/hubtest"
	"github.com/filecast/filecast/server"
)

// TestServer_ReadFileFifo checks that read_file of a named pipe answers at
// once that it is not a regular file, over stdio and streamable HTTP,
// rather than blocking on it.
func TestServer_ReadFileFifo(t *testing.T) {
	st := hubtest.Start(t, hubtest.Options{})
	srv := serve(t, st.Hub, server.Options{})
	must(t, syscall.Mkfifo(st.Path("docs", "pipe"), 0o644))
	transports(t, srv, func(t *testing.T, c *client.Client) {
		wantToolError(t, call(t, c, "read_file", map[string]any{"path": "pipe"}), "named pipe", "not a regular file")
		wantToolError(t, call(t, c, "read_file", map[string]any{"path": "pipe", "offset": 0, "length": 10}), "named pipe")
	})
}
