// Command filecast gives AI agents real-time file events: a hub that watches
// workspace folders and keeps a durable event log, and an MCP server that
// agents' hosts launch. Run "filecast --help" for the commands.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	stop()
	if err != nil {
		if errors.Is(err, errUsage) {
			os.Exit(2)
		}
		fmt.Fprintln(os.Stderr, "filecast:", err)
		os.Exit(1)
	}
}
