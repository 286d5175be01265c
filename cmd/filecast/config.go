package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"strings"
	"time"

	"github.com/filecast/filecast/events/api"
	"github.com/filecast/filecast/events/webhook"
	"github.com/filecast/filecast/events/workspace"
)

// listFlag is a flag that may be repeated.
type listFlag []string

func (l *listFlag) String() string     { return strings.Join(*l, ",") }
func (l *listFlag) Set(v string) error { *l = append(*l, v); return nil }

// logConfig is the logging flags every command has.
type logConfig struct {
	level  string
	format string
}

func (c *logConfig) flags(fs *flag.FlagSet) {
	fs.StringVar(&c.level, "log-level", "info", "log level: debug, info, warn or error")
	fs.StringVar(&c.format, "log-format", "text", "log format on stderr: text or json")
}

func (c *logConfig) logger(w io.Writer) (*slog.Logger, error) {
	var lvl slog.Level
	if err := lvl.UnmarshalText([]byte(c.level)); err != nil {
		return nil, fmt.Errorf("--log-level %q: want debug, info, warn or error", c.level)
	}
	opts := &slog.HandlerOptions{Level: lvl}
	switch c.format {
	case "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	}
	return nil, fmt.Errorf("--log-format %q: want text or json", c.format)
}

// stackConfig is the flags of an embedded hub: the workspaces, where state
// lives and how the log keeps events.
type stackConfig struct {
	roots     listFlag
	ignores   listFlag
	data      string
	natsURL   string
	maxAge    time.Duration
	maxEvents int64
	settle    time.Duration

	webhookScheduleText  string
	webhookSchedule      []time.Duration
	webhookDisableAfter  time.Duration
	allowPrivateWebhooks bool

	workspaces []workspace.Workspace // set by validate
	ignorer    *workspace.Ignorer
}

func (c *stackConfig) flags(fs *flag.FlagSet) {
	fs.Var(&c.roots, "root", "a workspace folder to watch, as DIR or NAME=DIR (repeatable)")
	fs.Var(&c.ignores, "ignore", "a glob of paths to ignore besides the defaults (repeatable)")
	fs.StringVar(&c.data, "data", "", "state folder (log, index); default $XDG_STATE_HOME/filecast or ~/.local/state/filecast")
	fs.StringVar(&c.natsURL, "nats", "", "use this NATS JetStream server or cluster instead of the embedded one")
	fs.DurationVar(&c.maxAge, "retention-age", 7*24*time.Hour, "keep events in the log this long")
	fs.Int64Var(&c.maxEvents, "retention-events", 1_000_000, "keep at most this many events per workspace")
	fs.DurationVar(&c.settle, "settle", 5*time.Millisecond, "how long a new file must be quiet before file.created is reported")
	fs.StringVar(&c.webhookScheduleText, "webhook-schedule", webhook.DefaultScheduleText, "delays between webhook delivery tries (comma-separated); its length caps the retries")
	fs.DurationVar(&c.webhookDisableAfter, "webhook-disable-after", 5*24*time.Hour, "disable a webhook whose every delivery has failed for this long")
	fs.BoolVar(&c.allowPrivateWebhooks, "allow-private-webhooks", false, "allow webhook URLs on loopback, private and link-local addresses")
}

// validate checks the flags and resolves the workspaces and data folder.
func (c *stackConfig) validate(e *env) error {
	seen := map[string]string{}
	for _, r := range c.roots {
		ws, err := workspace.Parse(r)
		if err != nil {
			return fmt.Errorf("--root %s: %w", r, err)
		}
		if prev, dup := seen[ws.Name]; dup {
			return fmt.Errorf("--root: two workspaces named %q (%s and %s); name them with NAME=DIR", ws.Name, prev, ws.Dir)
		}
		seen[ws.Name] = ws.Dir
		c.workspaces = append(c.workspaces, ws)
	}
	ig, err := workspace.NewIgnorer(c.ignores)
	if err != nil {
		return fmt.Errorf("--ignore: %w", err)
	}
	c.ignorer = ig
	if c.data == "" {
		c.data = defaultDataDir(e.getenv)
		if c.data == "" {
			return errors.New("cannot find a state folder: set --data, XDG_STATE_HOME or HOME")
		}
	}
	abs, err := filepath.Abs(c.data)
	if err != nil {
		return fmt.Errorf("--data: %w", err)
	}
	c.data = abs
	for _, ws := range c.workspaces {
		if rel, err := filepath.Rel(ws.Dir, abs); err == nil && rel != ".." && !strings.HasPrefix(rel, ".."+string(filepath.Separator)) {
			return fmt.Errorf("--data %s is inside workspace %s; state must live outside every workspace", abs, ws.Name)
		}
	}
	if c.maxAge <= 0 || c.maxEvents <= 0 {
		return errors.New("--retention-age and --retention-events must be positive")
	}
	sched, err := webhook.ParseSchedule(c.webhookScheduleText)
	if err != nil {
		return fmt.Errorf("--webhook-schedule: %w", err)
	}
	c.webhookSchedule = sched
	if c.webhookDisableAfter <= 0 {
		return errors.New("--webhook-disable-after must be positive")
	}
	if c.settle < 0 || c.settle > 10*time.Second {
		return errors.New("--settle must be between 0 and 10s")
	}
	return nil
}

// defaultDataDir is $XDG_STATE_HOME/filecast, else ~/.local/state/filecast.
func defaultDataDir(getenv func(string) string) string {
	if x := getenv("XDG_STATE_HOME"); x != "" && filepath.IsAbs(x) {
		return filepath.Join(x, "filecast")
	}
	if h := getenv("HOME"); h != "" {
		return filepath.Join(h, ".local", "state", "filecast")
	}
	return ""
}

// tokenFlags parses --token values: "SECRET" or "NAME=SECRET".
func parseTokens(values []string) ([]api.Token, error) {
	var out []api.Token
	for i, v := range values {
		name, secret, ok := strings.Cut(v, "=")
		if !ok {
			name, secret = fmt.Sprintf("token%d", i+1), v
		}
		if len(secret) < 16 {
			return nil, fmt.Errorf("--token %s: use a secret of at least 16 characters", name)
		}
		out = append(out, api.Token{Name: name, Secret: secret})
	}
	return out, nil
}
