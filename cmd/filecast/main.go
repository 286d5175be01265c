// Command filecast gives AI agents real-time file events: a hub that watches
// workspace folders and keeps a durable event log, and an MCP server that
// agents' hosts launch. Run "filecast --help" for the commands.
//
// This package only wires: each subcommand is a config (its flags, checked
// by Validate) and a Run that assembles the packages under events, server
// and tools.
package main

import (
	"context"
	"embed"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"
	"time"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], &env{stdin: os.Stdin, stdout: os.Stdout, stderr: os.Stderr, getenv: os.Getenv})
	stop()
	if err != nil {
		if errors.Is(err, errUsage) {
			os.Exit(2)
		}
		fmt.Fprintln(os.Stderr, "filecast:", err)
		os.Exit(1)
	}
}

// errUsage reports a command line that could not be parsed; the message has
// already been printed with the usage.
var errUsage = errors.New("usage")

// command is one subcommand: its config registers its flags, Validate
// checks them (and resolves what they leave to defaults), Run runs.
type command interface {
	flags(fs *flag.FlagSet)
	Validate(e *env) error
	Run(ctx context.Context, e *env) error
}

// env is what a command may touch of the process.
type env struct {
	stdin          io.Reader
	stdout, stderr io.Writer
	getenv         func(string) string
}

func run(ctx context.Context, args []string, e *env) error {
	if len(args) == 0 {
		fmt.Fprint(e.stderr, help("filecast"))
		return errUsage
	}
	var cmd command
	switch args[0] {
	case "mcp":
		cmd = &mcpConfig{}
	case "hub":
		cmd = &hubConfig{}
	case "bench":
		cmd = &benchConfig{}
	case "tail":
		cmd = &tailConfig{}
	case "version", "--version", "-version":
		fmt.Fprintln(e.stdout, "filecast", version())
		return nil
	case "help", "-h", "--help", "-help":
		fmt.Fprint(e.stdout, help("filecast"))
		return nil
	default:
		fmt.Fprintf(e.stderr, "filecast: unknown command %q\n\n%s", args[0], help("filecast"))
		return errUsage
	}
	fs := flag.NewFlagSet("filecast "+args[0], flag.ContinueOnError)
	fs.SetOutput(e.stderr)
	cmd.flags(fs)
	if err := fs.Parse(args[1:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return errUsage
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(e.stderr, "filecast %s: unexpected argument %q\n", args[0], fs.Arg(0))
		return errUsage
	}
	if err := cmd.Validate(e); err != nil {
		return err
	}
	return cmd.Run(ctx, e)
}

// version is the module version of the binary, or "devel".
func version() string {
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		return bi.Main.Version
	}
	return "devel"
}

// processStart is when this process started, as near as Go lets a
// program know: before main, after the packages it imports are set up.
var processStart = time.Now()

// clockTick bounds how far behind the real time a file's ctime may be:
// the kernel stamps files from a clock that advances once per scheduler
// tick (1 to 10 ms), unless the file system has fine-grained timestamps.
// A first start reports the files changed at or after processStart less
// clockTick (watch.Options.Since): the changes made while the first index
// is built, after an agent's first call among them. Files written in the
// last few milliseconds before the process started are reported too.
const clockTick = 10 * time.Millisecond

// helpTexts are the texts of --help, one file per command in help/.
//
//go:embed help/*.txt
var helpTexts embed.FS

// help returns the text of help/name.txt.
func help(name string) string {
	b, err := helpTexts.ReadFile("help/" + name + ".txt")
	if err != nil {
		panic(err) // embedded: cannot fail for the names used here
	}
	return string(b)
}
