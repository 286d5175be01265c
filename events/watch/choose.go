package watch

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"strings"
	"time"
)

// Kind is how a Watcher learns of changes in its workspace.
type Kind string

const (
	// Auto (the default) notifies, but polls a workspace, or a folder
	// under it, on a file system whose notifications miss other writers
	// (NFS, SMB, 9p, FUSE, …: see remoteFS), and polls the workspace when
	// watching it would take more than the Budget left.
	Auto Kind = "auto"
	// Notify watches every folder with the kernel's notifications
	// (inotify, kqueue, ReadDirectoryChangesW), whatever the file system,
	// and polls only when the Budget left is too small.
	Notify Kind = "notify"
	// Poll walks the tree every Options.PollInterval and compares each
	// file's size, mtime and inode with the index (see poll.go).
	Poll Kind = "poll"
)

// DefaultPollInterval is how often Poll walks the tree when
// Options.PollInterval is zero.
const DefaultPollInterval = time.Second

// ParseKind reads "auto", "notify" or "poll"; "" is Auto.
func ParseKind(s string) (Kind, error) {
	switch k := Kind(strings.ToLower(strings.TrimSpace(s))); k {
	case "":
		return Auto, nil
	case Auto, Notify, Poll:
		return k, nil
	}
	return "", fmt.Errorf("watch: %q is no way to watch: want auto, notify or poll", s)
}

// Watching is how a Watcher watches its workspace, as Run chose it.
type Watching struct {
	// Kind is Notify or Poll: how the workspace folder is watched.
	Kind Kind
	// Polled lists the folders (relative to the workspace) that are
	// polled although Kind is Notify: mount points of file systems whose
	// notifications miss other writers.
	Polled []string
	// Interval is how often what is polled is walked, at most.
	Interval time.Duration
	// Reason says why the Watcher polls, when it does.
	Reason string
}

// Label is "notify", "poll", or "notify+poll" for a Watcher that polls
// some folders and notifies the rest.
func (x Watching) Label() string {
	if x.Kind == Notify && len(x.Polled) > 0 {
		return "notify+poll"
	}
	return string(x.Kind)
}

// Watching returns how the Watcher watches its workspace; ok is false
// until Run has chosen. It is safe for concurrent use.
func (w *Watcher) Watching() (x Watching, ok bool) {
	p := w.watching.Load()
	if p == nil {
		return Watching{}, false
	}
	return *p, true
}

// source is what Run watches the workspace with: the kernel's
// notifications for the folders that are not polled (a kernel that adds
// no watch when everything is), the poller of the others, and what to do
// when Run returns.
type source struct {
	kern  notifier
	poll  *poller // nil when nothing is polled
	close func()
}

// openSource chooses how to watch the workspace (see choose), says so in
// one log line, and opens what it takes.
func (w *Watcher) openSource(ctx context.Context) (source, error) {
	x, trust, taken, warn := w.choose(ctx)
	open := openKernel
	if w.openKernel != nil {
		open = w.openKernel
	}
	var kern notifier
	if x.Kind == Notify {
		var err error
		if kern, err = open(); err != nil {
			w.budget.give(taken)
			return source{}, err
		}
	} else {
		kern = notifier{kernel: nopKernel{}}
	}
	var p *poller
	roots := x.Polled
	if x.Kind == Poll {
		roots = []string{""}
	}
	if len(roots) > 0 {
		abs := make([]string, len(roots))
		for i, r := range roots {
			abs[i] = w.ws.Abs(r)
		}
		if x.Kind == Notify {
			kern.kernel = splitKernel{kernel: kern.kernel, polled: abs}
		}
		p = newPoller(roots, x.Interval, trust, w.counters)
	}
	w.watching.Store(&x)
	attrs := []any{"watcher", x.Label()}
	switch {
	case x.Kind == Poll:
		attrs = append(attrs, "interval", x.Interval, "reason", x.Reason)
	case len(x.Polled) > 0:
		attrs = append(attrs, "polled", strings.Join(x.Polled, ", "), "interval", x.Interval, "reason", x.Reason)
	}
	switch {
	case warn:
		w.log.Warn("watching by polling: "+x.Reason, attrs[:4]...)
	case x.Kind == Poll:
		w.log.Info("watching by polling", attrs...)
	case len(x.Polled) > 0:
		w.log.Info("watching with notifications, and by polling the folders on file systems whose notifications miss other writers", attrs...)
	default:
		w.log.Info("watching with notifications", attrs...)
	}
	k := kern.kernel
	return source{kern: kern, poll: p, close: func() {
		_ = k.Close()
		p.stop()
		w.budget.give(taken)
	}}, nil
}

// choose decides how to watch the workspace: Options.Watch, the file
// systems the workspace lies on (for Auto) and the Budget (for Auto and
// Notify). trust is whether folders' mtimes may be trusted by the poller
// (see keepsDirTimes); taken what was taken from the Budget; warn whether
// the Budget made it poll, which deserves a warning.
func (w *Watcher) choose(ctx context.Context) (x Watching, trust bool, taken int, warn bool) {
	x = Watching{Kind: Notify, Interval: w.interval}
	trust = true
	mounts := w.fileSystems()
	if w.kind == Poll {
		x.Kind, x.Reason = Poll, "asked for (--watch poll)"
		return x, keepDirTimes(mounts), 0, false
	}
	if w.kind == Auto && len(mounts) > 0 {
		if root := mounts[0]; remoteFS(root.fsType) {
			x.Kind = Poll
			x.Reason = fmt.Sprintf("the workspace folder is on %s, where file notifications miss changes made by other machines (or by the host of a VM or container); --watch notify overrides", root.fsType)
			return x, keepDirTimes(mounts), 0, false
		}
		var types []string
		under := slices.Clone(mounts[1:])
		slices.SortStableFunc(under, func(a, b mount) int { return cmp.Compare(len(a.dir), len(b.dir)) }) // a share before those mounted in it
		for _, m := range under {
			rel, ok := w.ws.Rel(m.dir)
			if !ok || !remoteFS(m.fsType) || w.ignore.IgnoredDir(rel) || underAnyOf(rel, x.Polled) {
				continue
			}
			x.Polled = append(x.Polled, rel)
			types = append(types, rel+" is on "+m.fsType)
			trust = trust && keepsDirTimes(m.fsType)
		}
		if len(x.Polled) > 0 {
			x.Reason = strings.Join(types, ", ") + ": file notifications there miss changes made by other machines; --watch notify overrides"
		}
	}
	if left := w.budget.left(); left >= 0 {
		n, over := w.countWatches(ctx, w.budget, x.Polled, left)
		if !over && w.budget.take(n) {
			return x, trust, n, false
		}
		need := fmt.Sprintf("%d", n)
		if over {
			need = fmt.Sprintf("over %d", left)
		}
		x.Kind, x.Polled = Poll, nil
		x.Reason = fmt.Sprintf("the workspace needs %s %s, more than the %d left (%s); %s", need, w.budget.unit, left, w.budget.detail, w.budget.raise)
		return x, keepDirTimes(mounts), 0, true
	}
	return x, trust, 0, false
}

// keepDirTimes reports whether every one of mounts keeps folders' mtimes
// (keepsDirTimes): whether a poller may trust them across the workspace.
func keepDirTimes(mounts []mount) bool {
	for _, m := range mounts {
		if !keepsDirTimes(m.fsType) {
			return false
		}
	}
	return true
}

// fileSystems returns the file systems of the workspace (its own first,
// then those mounted under it); none when they cannot be told.
func (w *Watcher) fileSystems() []mount {
	of := mountsOf
	if w.mounts != nil {
		of = w.mounts
	}
	ms, err := of(w.ws.Dir)
	if err != nil {
		w.log.Debug("cannot tell the file system of the workspace folder; watching it as a local one", "err", err)
		return nil
	}
	return ms
}
