package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
)

// errUsage reports a command line that could not be parsed; the message has
// already been printed with the usage.
var errUsage = errors.New("usage")

const usage = `filecast — real-time file events for AI agents

Usage:
  filecast mcp   [--root [NAME=]DIR]… [--hub URL] [--token T] [--http ADDR] [--data DIR]
  filecast hub   --root [NAME=]DIR… [--listen ADDR] [--data DIR] [--nats URL] [--token T]
  filecast tail  [--hub URL] [--path GLOB]… [--type TYPE]… [--since CURSOR] [--json]
  filecast bench [--sessions N] [--rate R] [--duration D] [--stdio]
  filecast version

Examples:
  filecast mcp --root ~/project                 # MCP over stdio, hub embedded in-process
  filecast mcp --http 127.0.0.1:8090 --root .   # MCP streamable HTTP at /mcp
  filecast hub --root docs=~/docs --listen 127.0.0.1:8080
  filecast mcp --hub http://127.0.0.1:8080      # events from a running hub

Run "filecast <command> --help" for the flags of a command.
`

// command is one subcommand: it registers its flags, then runs.
type command interface {
	flags(fs *flag.FlagSet)
	run(ctx context.Context, env *env) error
}

// env is what a command may touch of the process.
type env struct {
	stdin          io.Reader
	stdout, stderr io.Writer
	getenv         func(string) string
}

func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	e := &env{stdin: stdin, stdout: stdout, stderr: stderr, getenv: osGetenv}
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return errUsage
	}
	var cmd command
	switch args[0] {
	case "mcp":
		cmd = &mcpCmd{}
	case "hub":
		cmd = &hubCmd{}
	case "bench":
		cmd = &benchCmd{}
	case "tail":
		cmd = &tailCmd{}
	case "version", "--version", "-version":
		fmt.Fprintln(stdout, "filecast", version())
		return nil
	case "help", "-h", "--help", "-help":
		fmt.Fprint(stdout, usage)
		return nil
	default:
		fmt.Fprintf(stderr, "filecast: unknown command %q\n\n%s", args[0], usage)
		return errUsage
	}
	fs := flag.NewFlagSet("filecast "+args[0], flag.ContinueOnError)
	fs.SetOutput(stderr)
	cmd.flags(fs)
	if err := fs.Parse(args[1:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return errUsage
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "filecast %s: unexpected argument %q\n", args[0], fs.Arg(0))
		return errUsage
	}
	return cmd.run(ctx, e)
}
