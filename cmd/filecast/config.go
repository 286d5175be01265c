package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"runtime/pprof"
	"strconv"
	"strings"
	"time"

	"github.com/filecast/filecast/events"
	"github.com/filecast/filecast/events/api"
	"github.com/filecast/filecast/events/content"
	"github.com/filecast/filecast/events/feed"
	"github.com/filecast/filecast/events/journal"
	"github.com/filecast/filecast/events/leader"
	"github.com/filecast/filecast/events/natsd"
	"github.com/filecast/filecast/events/node"
	"github.com/filecast/filecast/events/watch"
	"github.com/filecast/filecast/events/webhook"
	"github.com/filecast/filecast/events/workspace"
)

// defaultListen is the hub's address unless --listen says otherwise.
const defaultListen = "127.0.0.1:8080"

// listFlag is a flag that may be repeated.
type listFlag []string

func (l *listFlag) String() string     { return strings.Join(*l, ",") }
func (l *listFlag) Set(v string) error { *l = append(*l, v); return nil }

// parseOrigins checks the --allow-origin values.
func parseOrigins(l listFlag) ([]string, error) {
	out := make([]string, 0, len(l))
	for _, v := range l {
		o, err := api.ParseOrigin(v)
		if err != nil {
			return nil, fmt.Errorf("--allow-origin: %w", err)
		}
		out = append(out, o)
	}
	return out, nil
}

// processConfig is the flags of a long-running command's process: its
// logs and profile.
type processConfig struct {
	level      string
	format     string
	cpuProfile string

	log *slog.Logger // set by Validate
}

func (c *processConfig) flags(fs *flag.FlagSet) {
	fs.StringVar(&c.level, "log-level", "info", "log level: debug, info, warn or error")
	fs.StringVar(&c.format, "log-format", "text", "log format on stderr: text or json")
	fs.StringVar(&c.cpuProfile, "cpuprofile", "", "write a CPU profile (pprof format) to this file until the process exits")
}

// Validate makes the logger, writing to w.
func (c *processConfig) Validate(w io.Writer) error {
	var lvl slog.Level
	if err := lvl.UnmarshalText([]byte(c.level)); err != nil {
		return fmt.Errorf("--log-level %q: want debug, info, warn or error", c.level)
	}
	opts := &slog.HandlerOptions{Level: lvl}
	switch c.format {
	case "text":
		c.log = slog.New(slog.NewTextHandler(w, opts))
	case "json":
		c.log = slog.New(slog.NewJSONHandler(w, opts))
	default:
		return fmt.Errorf("--log-format %q: want text or json", c.format)
	}
	return nil
}

// start raises the open file limit (see node.FileLimit), which it returns, and
// starts the CPU profile --cpuprofile asks for; stop ends the profile.
func (c *processConfig) start() (limit uint64, stop func(), err error) {
	limit = node.FileLimit(c.log)
	if c.cpuProfile == "" {
		return limit, func() {}, nil
	}
	f, err := os.Create(c.cpuProfile)
	if err != nil {
		return 0, nil, fmt.Errorf("--cpuprofile: %w", err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return 0, nil, fmt.Errorf("--cpuprofile: %w", err)
	}
	return limit, func() { pprof.StopCPUProfile(); f.Close() }, nil
}

// stackConfig is the flags of an embedded hub: the workspaces, where state
// lives and how the log keeps events.
type stackConfig struct {
	roots     listFlag
	ignores   listFlag
	data      string
	nats      natsd.Options // --nats and the connection flags; StoreDir set by Validate
	hubID     string        // this hub's name in workspace watch elections (--hub-id)
	leaderTTL time.Duration // how long a dead hub keeps the watch of a workspace (--leader-ttl)
	maxAge    time.Duration
	maxEvents int64
	settle    time.Duration
	heartbeat time.Duration

	watchText    string        // --watch
	watch        watch.Kind    // set by Validate
	pollInterval time.Duration // --poll-interval

	webhookScheduleText  string
	webhookSchedule      []time.Duration
	webhookDisableAfter  time.Duration
	allowPrivateWebhooks bool

	minFree sizeFlag // --min-free: space the embedded log keeps free on its disk

	contentCap     sizeFlag // --content-cap: the content store's size; 0 keeps no contents
	contentMaxFile sizeFlag // --content-max-file: the largest content kept

	workspaces []workspace.Workspace // set by Validate
	ignorer    *workspace.Ignorer

	streams *api.StreamLimits // the caps of the HTTP API's event streams; nil: none
}

func (c *stackConfig) flags(fs *flag.FlagSet) {
	fs.Var(&c.roots, "root", "a workspace folder to watch, as DIR or NAME=DIR (repeatable)")
	fs.Var(&c.ignores, "ignore", "a glob of paths to ignore besides the defaults (repeatable)")
	fs.StringVar(&c.data, "data", "", "state folder (log, index); default $XDG_STATE_HOME/filecast or ~/.local/state/filecast")
	fs.StringVar(&c.nats.URL, "nats", "", "use this NATS JetStream server or cluster (comma-separated URLs; nats://user:pass@host works) instead of the embedded one")
	fs.StringVar(&c.nats.CredsFile, "nats-creds", "", "with --nats: a NATS credentials file (user JWT and nkey seed)")
	fs.StringVar(&c.nats.TLSCA, "nats-tls-ca", "", "with --nats: PEM file of the CAs that sign the NATS servers' certificates")
	fs.StringVar(&c.nats.TLSCert, "nats-tls-cert", "", "with --nats: PEM client certificate for servers that verify clients (with --nats-tls-key)")
	fs.StringVar(&c.nats.TLSKey, "nats-tls-key", "", "with --nats: PEM key of --nats-tls-cert")
	fs.IntVar(&c.nats.Replicas, "replicas", 1, "with --nats: copies of the event log, locks and webhook queues (1, 3 or 5)")
	fs.StringVar(&c.hubID, "hub-id", "", "with --nats: this hub's name among the hubs of the cluster; default HOST:PID")
	fs.DurationVar(&c.leaderTTL, "leader-ttl", leader.DefaultTTL, "with --nats: how long a workspace stays unwatched after the hub watching it dies, before another takes over")
	fs.DurationVar(&c.maxAge, "retention-age", journal.DefaultMaxAge, "keep events in the log this long")
	fs.Int64Var(&c.maxEvents, "retention-events", journal.DefaultMaxEvents, "keep at most this many events per workspace")
	fs.DurationVar(&c.settle, "settle", watch.DefaultSettle, "how long a new or removed file must be quiet before file.created or file.deleted is reported (a file removed and created again within it is one file.updated)")
	fs.StringVar(&c.watchText, "watch", string(watch.Auto), "how to learn of changes: auto (notifications, polling on network and FUSE file systems and past the watch limit), notify or poll")
	fs.DurationVar(&c.pollInterval, "poll-interval", watch.DefaultPollInterval, "how often a polled workspace is walked, at most (a big tree is walked less often: polling takes at most a tenth of a core)")
	fs.DurationVar(&c.heartbeat, "heartbeat", feed.DefaultHeartbeat, "interval of SSE heartbeat comments on the hub's event streams")
	fs.StringVar(&c.webhookScheduleText, "webhook-schedule", webhook.DefaultScheduleText, "delays between webhook delivery tries (comma-separated); its length caps the retries")
	fs.DurationVar(&c.webhookDisableAfter, "webhook-disable-after", webhook.DefaultDisableAfter, "disable a webhook whose every delivery has failed for this long")
	fs.BoolVar(&c.allowPrivateWebhooks, "allow-private-webhooks", false, "allow webhook URLs on loopback, private and link-local addresses")
	c.minFree = natsd.DefaultMinFree
	c.contentCap = content.DefaultMaxBytes
	fs.Var(&c.contentCap, "content-cap", "room of the content store, which keeps earlier contents of text files on JetStream (beside the log, replicated like it) so that changes can be shown as diffs; the oldest are dropped first past it, the others after --retention-age once no file has them (e.g. 256MiB; 0 keeps no contents: no diffs)")
	c.contentMaxFile = content.DefaultMaxFileSize
	fs.Var(&c.contentMaxFile, "content-max-file", "the largest file whose contents are kept for diffs (at most 16MiB); larger ones get diff_unavailable: too_large")
	fs.Var(&c.minFree, "min-free", "space to keep free on the disk of --data (e.g. 64MiB, 1GB; 0 turns the check off): below it writes are refused (507) and changes on disk held until space is freed; the embedded log only")
}

// Validate checks the flags and resolves the workspaces and data folder.
func (c *stackConfig) Validate(e *env) error {
	var wss []workspace.Workspace
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
		wss = append(wss, ws)
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
	if c.workspaces, err = c.outside(wss); err != nil {
		return err
	}
	if c.maxAge <= 0 || c.maxEvents <= 0 {
		return errors.New("--retention-age and --retention-events must be positive")
	}
	if c.heartbeat < time.Second {
		return errors.New("--heartbeat must be at least 1s")
	}
	if c.webhookSchedule, err = webhook.ParseSchedule(c.webhookScheduleText); err != nil {
		return fmt.Errorf("--webhook-schedule: %w", err)
	}
	if c.webhookDisableAfter <= 0 {
		return errors.New("--webhook-disable-after must be positive")
	}
	if c.contentMaxFile <= 0 || c.contentMaxFile > events.MaxReadSize {
		return fmt.Errorf("--content-max-file must be between 1 byte and %dMiB", events.MaxReadSize>>20)
	}
	if c.settle < 0 || c.settle > 10*time.Second {
		return errors.New("--settle must be between 0 and 10s")
	}
	if c.watch, err = watch.ParseKind(c.watchText); err != nil {
		return fmt.Errorf("--watch %s: want auto, notify or poll", c.watchText)
	}
	if c.pollInterval < minPollInterval || c.pollInterval > maxPollInterval {
		return fmt.Errorf("--poll-interval must be between %s and %s", minPollInterval, maxPollInterval)
	}
	c.nats.StoreDir = filepath.Join(c.data, "jetstream")
	c.nats.MinFree = int64(c.minFree)
	if c.minFree == 0 {
		c.nats.MinFree = -1 // off
	}
	if err := c.nats.Validate(); err != nil {
		return err
	}
	if c.leaderTTL < time.Second || c.leaderTTL > time.Minute {
		return errors.New("--leader-ttl must be between 1s and 1m")
	}
	if c.hubID == "" {
		host, _ := os.Hostname()
		c.hubID = fmt.Sprintf("%s:%d", host, os.Getpid())
	}
	return nil
}

// The bounds of --poll-interval.
const (
	minPollInterval = 100 * time.Millisecond
	maxPollInterval = time.Minute
)

// outside returns wss if the data folder lies outside every one of them.
func (c *stackConfig) outside(wss []workspace.Workspace) ([]workspace.Workspace, error) {
	for _, ws := range wss {
		if rel, err := filepath.Rel(ws.Dir, c.data); err == nil && rel != ".." && !strings.HasPrefix(rel, ".."+string(filepath.Separator)) {
			return nil, fmt.Errorf("--data %s is inside workspace %s; state must live outside every workspace", c.data, ws.Name)
		}
	}
	return wss, nil
}

// node is the embedded hub these flags describe.
func (c *stackConfig) node(log *slog.Logger, progress io.Writer) node.Config {
	return node.Config{
		Workspaces:           c.workspaces,
		Ignore:               c.ignorer,
		Data:                 c.data,
		NATS:                 c.nats,
		HubID:                c.hubID,
		LeaderTTL:            c.leaderTTL,
		MaxAge:               c.maxAge,
		MaxEvents:            c.maxEvents,
		ContentCap:           int64(c.contentCap),
		ContentMaxFile:       int64(c.contentMaxFile),
		Settle:               c.settle,
		Watch:                c.watch,
		PollInterval:         c.pollInterval,
		Since:                processStart.Add(-clockTick),
		Heartbeat:            c.heartbeat,
		WebhookSchedule:      c.webhookSchedule,
		WebhookDisableAfter:  c.webhookDisableAfter,
		AllowPrivateWebhooks: c.allowPrivateWebhooks,
		Streams:              c.streams,
		Version:              version(),
		MCPSessions:          localMCPSessions,
		Logger:               log,
		Progress:             progress,
	}
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

// sizeFlag is a byte count given as 1048576, 512KiB, 64MiB, 1GB, …
type sizeFlag int64

func (f *sizeFlag) String() string { return strconv.FormatInt(int64(*f), 10) }

func (f *sizeFlag) Set(v string) error {
	n, err := parseSize(v)
	if err != nil {
		return err
	}
	*f = sizeFlag(n)
	return nil
}

// parseSize reads a byte count: digits, then optionally B, KB, MB, GB, TB
// (powers of 1000) or KiB, MiB, GiB, TiB (powers of 1024), in any case.
func parseSize(v string) (int64, error) {
	s := strings.TrimSpace(v)
	i := strings.IndexFunc(s, func(r rune) bool { return (r < '0' || r > '9') && r != '.' })
	num, unit := s, ""
	if i >= 0 {
		num, unit = s[:i], strings.ToLower(strings.TrimSpace(s[i:]))
	}
	mult := map[string]float64{"": 1, "b": 1, "kb": 1e3, "mb": 1e6, "gb": 1e9, "tb": 1e12,
		"kib": 1 << 10, "mib": 1 << 20, "gib": 1 << 30, "tib": 1 << 40}[unit]
	x, err := strconv.ParseFloat(num, 64)
	if err != nil || mult == 0 || x < 0 || x*mult > 1<<62 {
		return 0, fmt.Errorf("%q is not a size: give bytes, or a number with KB, MB, GB, KiB, MiB or GiB", v)
	}
	return int64(x * mult), nil
}
