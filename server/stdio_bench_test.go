//go:build unix

package server

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log"
	"log/slog"
	"os"
	"testing"

	"github.com/mark3labs/mcp-go/mcp"
	mcpserver "github.com/mark3labs/mcp-go/server"

	"github.com/filecast/filecast/events/eventstest"
)

// BenchmarkStdio_ToolCall is the floor of the MCP session: one tools/call
// round trip over a pair of pipes, to a tool that answers at once with a
// result as big as a list_changes of one event, served by mcp-go's
// StdioServer and by this package's transport, beside "echo", which
// writes each line back (the pipes and the runtime alone). "paced" sends one call a
// millisecond (1,000/s, the rate of filecast bench's mixed scenario:
// the runtime idles between calls, as in use); "cpu-µs/call" is the
// whole process's CPU per call, client side included.
func BenchmarkStdio_ToolCall(b *testing.B) {
	transports := []struct {
		name  string
		serve func(ctx context.Context, s *mcpserver.MCPServer, in io.Reader, out io.Writer) error
	}{
		// No MCP at all: each line is written back as the answer, the
		// floor of a round trip through the pipes and the runtime.
		{"echo", func(ctx context.Context, _ *mcpserver.MCPServer, in io.Reader, out io.Writer) error {
			r := bufio.NewReader(in)
			for {
				line, err := r.ReadBytes('\n')
				if err != nil {
					return nil
				}
				if _, err := out.Write(line); err != nil {
					return nil
				}
			}
		}},
		{"mcp-go", func(ctx context.Context, s *mcpserver.MCPServer, in io.Reader, out io.Writer) error {
			stdio := mcpserver.NewStdioServer(s)
			stdio.SetErrorLogger(log.New(io.Discard, "", 0))
			return stdio.Listen(ctx, in, out)
		}},
		{"filecast", func(ctx context.Context, s *mcpserver.MCPServer, in io.Reader, out io.Writer) error {
			l := slog.New(slog.DiscardHandler)
			return serveStdio(ctx, s, newStdioWire(in, out, l), l)
		}},
	}
	for _, tr := range transports {
		for _, paced := range []bool{false, true} {
			b.Run(fmt.Sprintf("%s/paced=%v", tr.name, paced), func(b *testing.B) {
				benchToolCall(b, tr.serve, paced)
			})
		}
	}
}

func benchToolCall(b *testing.B, serve func(context.Context, *mcpserver.MCPServer, io.Reader, io.Writer) error, paced bool) {
	result := `{"events":[{"seq":1042,"type":"file.updated","path":"src/main.go","size":1834,"actor":"fs","timestamp":"2026-11-27T10:00:00.123Z"}],"cursor":"proj:1042"}`
	s := mcpserver.NewMCPServer("bench", "1", mcpserver.WithToolCapabilities(false))
	s.AddTool(mcp.NewTool("list_changes"), func(context.Context, mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		return mcp.NewToolResultStructured(json.RawMessage(result), result), nil
	})
	inR, inW, err := os.Pipe()
	if err != nil {
		b.Fatal(err)
	}
	outR, outW, err := os.Pipe()
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	in, undo := pollable(inR)
	done := make(chan error, 1)
	go func() { done <- serve(ctx, s, in, outW) }()
	defer func() {
		cancel()
		undo()
		_ = inW.Close()
		<-done
		_ = inR.Close()
		_ = outW.Close()
		_ = outR.Close()
	}()
	answers := bufio.NewReader(outR)
	call := func(line string) {
		if _, err := io.WriteString(inW, line+"\n"); err != nil {
			b.Fatal(err)
		}
		if _, err := answers.ReadBytes('\n'); err != nil {
			b.Fatal(err)
		}
	}
	call(`{"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"bench","version":"1"}}}`)
	if _, err := io.WriteString(inW, `{"jsonrpc":"2.0","method":"notifications/initialized"}`+"\n"); err != nil {
		b.Fatal(err)
	}
	eventstest.PacedCPU(b, paced, "cpu-µs/call", func(i int) error {
		call(fmt.Sprintf(`{"jsonrpc":"2.0","id":%d,"method":"tools/call","params":{"name":"list_changes","arguments":{"wait_ms":30000}}}`, i))
		return nil
	})
}
