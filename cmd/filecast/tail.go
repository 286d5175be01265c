package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"sync"

	"github.com/filecast/filecast/events"
	"github.com/filecast/filecast/events/node"
	"github.com/filecast/filecast/events/remote"
)

// tailConfig is "filecast tail": print a hub's events as they happen.
type tailConfig struct {
	hubURL string
	token  string
	paths  listFlag
	types  listFlag
	wss    listFlag
	since  string
	asJSON bool
	color  string

	filter events.Filter // set by Validate
	cursor events.Cursor
}

func (c *tailConfig) flags(fs *flag.FlagSet) {
	fs.StringVar(&c.hubURL, "hub", "http://"+defaultListen, "the hub to follow")
	fs.StringVar(&c.token, "token", "", "bearer token for the hub")
	fs.Var(&c.paths, "path", "only paths matching this glob (repeatable)")
	fs.Var(&c.types, "type", "only this event type: created, updated, deleted, moved, locked, unlocked or a full type like file.created (repeatable; default all)")
	fs.Var(&c.wss, "workspace", "only this workspace (repeatable; default all)")
	fs.StringVar(&c.since, "since", "", "replay from this cursor (as returned by list_changes, e.g. docs:42, or 0 for the whole log) before following live")
	fs.BoolVar(&c.asJSON, "json", false, "print JSON Lines (one event per line) instead of text")
	fs.StringVar(&c.color, "color", "auto", "colour the text output: auto, always or never")
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), help("tail"), "Flags:\n")
		fs.PrintDefaults()
	}
}

// Validate checks the flags.
func (c *tailConfig) Validate(*env) (err error) {
	types := []string(c.types)
	if len(types) == 0 {
		types = []string{"created", "updated", "deleted", "moved", "locked", "unlocked"}
	}
	if c.filter, err = events.NewFilter("", c.paths, types); err != nil {
		return err
	}
	if c.cursor, err = events.ParseCursor(c.since); err != nil {
		return fmt.Errorf("--since: %w", err)
	}
	switch c.color {
	case "auto", "always", "never":
		return nil
	}
	return fmt.Errorf("--color %q: want auto, always or never", c.color)
}

// Run follows the hub until ctx is done.
func (c *tailConfig) Run(ctx context.Context, e *env) error {
	rc, err := remote.New(c.hubURL, remote.Options{Token: c.token})
	if err != nil {
		return err
	}
	infos, err := rc.Workspaces(ctx)
	if err != nil {
		return fmt.Errorf("reach hub %s: %w", c.hubURL, err)
	}
	var names []string
	var loops []func(context.Context) error
	p := &printer{w: e.stdout, json: c.asJSON, color: c.color == "always" || (c.color == "auto" && isTerminal(e.stdout))}
	for _, w := range infos {
		if len(c.wss) > 0 && !slices.Contains(c.wss, w.Name) {
			continue
		}
		names = append(names, w.Name)
		after := w.Head
		if c.since != "" {
			after = c.cursor.For(w.Name)
		}
		loops = append(loops, node.Named("follow "+w.Name, func(ctx context.Context) error {
			return events.Follow(ctx, rc, w.Name, after, func(ev events.Event) error {
				if c.filter.Match(ev) {
					return p.print(ev)
				}
				return nil
			}, events.FollowOptions{Final: remote.Permanent})
		}))
	}
	if len(names) == 0 {
		return fmt.Errorf("no workspace to follow (the hub serves %d)", len(infos))
	}
	fmt.Fprintf(e.stderr, "filecast tail: following %s (%s)\n", c.hubURL, strings.Join(names, ", "))
	return node.RunAll(ctx, loops...)
}

// printer writes events one line each; it is shared by the followers of
// several workspaces.
type printer struct {
	mu    sync.Mutex
	w     io.Writer
	json  bool
	color bool
}

func (p *printer) print(ev events.Event) error {
	var line []byte
	if p.json {
		b, err := json.Marshal(ev)
		if err != nil {
			return err
		}
		line = append(b, '\n')
	} else {
		line = []byte(formatEvent(ev, p.color) + "\n")
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	_, err := p.w.Write(line)
	return err
}

// formatEvent renders an event as one readable line.
func formatEvent(ev events.Event, color bool) string {
	var b strings.Builder
	b.WriteString(ev.Time.Local().Format("15:04:05.000"))
	b.WriteByte(' ')
	typ := fmt.Sprintf("%-13s", ev.Type)
	if color {
		typ = colorOf(ev.Type) + typ + "\x1b[0m"
	}
	b.WriteString(typ)
	b.WriteString(" " + ev.Workspace + ":" + quotePath(ev.Path))
	if ev.OldPath != "" {
		b.WriteString(" (from " + quotePath(ev.OldPath) + ")")
	}
	if ev.HasContent() {
		b.WriteString("  " + humanSize(ev.Size))
	}
	if ev.Actor != "" {
		b.WriteString("  " + ev.Actor)
	}
	if ev.Lock != nil {
		fmt.Fprintf(&b, "  lock %s #%d", ev.Lock.Holder, ev.Lock.FencingToken)
	}
	if ev.Conflict {
		b.WriteString("  CONFLICT")
	}
	return b.String()
}

// quotePath keeps a path on one line: control characters are escaped.
func quotePath(p string) string {
	if strings.IndexFunc(p, func(r rune) bool { return r < 0x20 || r == 0x7f }) >= 0 {
		return fmt.Sprintf("%q", p)
	}
	return p
}

func colorOf(t events.Type) string {
	switch t {
	case events.FileCreated:
		return "\x1b[32m"
	case events.FileDeleted:
		return "\x1b[31m"
	case events.FileMoved:
		return "\x1b[36m"
	case events.FileUpdated:
		return "\x1b[33m"
	}
	return "\x1b[35m"
}

func humanSize(n int64) string {
	switch {
	case n < 1024:
		return fmt.Sprintf("%d B", n)
	case n < 1024*1024:
		return fmt.Sprintf("%.1f KiB", float64(n)/1024)
	}
	return fmt.Sprintf("%.1f MiB", float64(n)/(1024*1024))
}

// isTerminal reports whether w is a character device (a terminal).
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}
