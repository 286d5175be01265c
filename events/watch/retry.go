package watch

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"sync/atomic"
	"syscall"
	"time"
)

// Counters are a Watcher's tallies of the trouble it met, for metrics.
// They are safe for concurrent use; several Watchers may share one
// (Options.Counters), each adding its own.
type Counters struct {
	// ReadRetries counts reads of a file or folder that failed for a
	// reason other than the path being gone, and were scheduled again.
	ReadRetries atomic.Uint64
	// DescriptorRetries counts those of ReadRetries that failed for want
	// of a file descriptor (EMFILE, ENFILE).
	DescriptorRetries atomic.Uint64
	// Retrying is the number of paths waiting to be read again.
	Retrying atomic.Int64
	// WatchFailures counts folders that could not be watched (the inotify
	// watch limit, mostly) each time it was tried.
	WatchFailures atomic.Uint64
	// Unwatched is the number of folders rescanned periodically because
	// they could not be watched.
	Unwatched atomic.Int64
	// PollRounds counts the rounds of polling (see Kind), and PollNanos
	// the time they took, in nanoseconds.
	PollRounds atomic.Uint64
	PollNanos  atomic.Uint64
}

// Retry delays: a path that could not be read is read again after
// retryFirst, doubling each time it fails again, up to retryMaxShort when
// descriptors were lacking (they come back as soon as a connection
// closes) and retryMax otherwise (a file without read permission, say).
// It is never given up while it exists.
const (
	retryFirst    = 20 * time.Millisecond
	retryMaxShort = time.Second
	retryMax      = 30 * time.Second
)

// retry is a path (a file or a folder) to read again.
type retry struct {
	attempt  int
	deadline time.Time
	silent   bool // first found by the very first start's silent scan
	short    bool // the last failure was for want of a descriptor
}

// transient reports whether a failure to read a path may go away by
// itself, so that the path is worth reading again: anything but the path
// being gone or no longer something the index holds.
func transient(err error) bool { return err != nil && !gone(err) }

// retryLater schedules another look at rel, a file or folder that could
// not be read (err): it is read again once the delay has passed (see
// retryDue), and again after every failure, with a growing delay, until
// it is read or gone — the change it holds is reported then. A lack of descriptors is
// logged once until they are available again; other errors once per
// path. It runs on Run's goroutine.
func (w *Watcher) retryLater(rel string, err error, silent bool) {
	st := w.st
	short := shortOfDescriptors(err)
	r := st.retries[rel]
	if r == nil {
		r = &retry{silent: silent}
		st.retries[rel] = r
		if !short {
			w.log.Warn("cannot read a path; trying again until it can be read", "path", rel, "err", err)
		}
	} else {
		r.attempt++
		r.silent = r.silent && silent
	}
	r.short = short
	w.counters.ReadRetries.Add(1)
	if short {
		w.counters.DescriptorRetries.Add(1)
		if !st.shortWarned {
			st.shortWarned = true
			w.log.Warn("out of file descriptors: changes that cannot be read now are read again once descriptors free up; raise the limit (ulimit -n, LimitNOFILE=) or lower --max-streams",
				"path", rel, "err", err)
		}
	}
	limit := retryMax
	if short {
		limit = retryMaxShort
	}
	d := retryFirst << min(r.attempt, 16)
	r.deadline = time.Now().Add(min(d, limit))
	st.due(r.deadline)
}

// retryDue reads again the paths whose retry delay has passed, in path
// order: a file is compared with the index (check), a folder — or
// anything found by the very first start's silent scan — rescanned. It
// runs on Run's goroutine, from expire.
func (w *Watcher) retryDue(ctx context.Context, now time.Time) error {
	st := w.st
	var due []string
	for p, r := range st.retries {
		if now.Before(r.deadline) {
			st.due(r.deadline)
		} else {
			due = append(due, p)
		}
	}
	slices.Sort(due)
	for _, p := range due {
		r := st.retries[p]
		if r == nil {
			continue
		}
		attempt := r.attempt
		var err error
		if s := w.lstat(p); s.kind == kindFile && !r.silent {
			err = w.checkStat(ctx, p, s, true) // a file alone: no rescan of the index
		} else {
			err = w.sync(ctx, p, r.silent)
		}
		if err != nil {
			return err
		}
		if st.retries[p] == r && r.attempt == attempt {
			delete(st.retries, p) // read (or gone) this time
		}
	}
	if st.shortWarned {
		for _, r := range st.retries {
			if r.short {
				return nil
			}
		}
		st.shortWarned = false
		w.log.Info("file descriptors are available again; the changes held back have been read")
	}
	return nil
}

// underAny reports whether rel is one of the folders dirs holds or lies
// under one of them.
func underAny[V any](rel string, dirs map[string]V) bool {
	if len(dirs) == 0 {
		return false
	}
	if _, ok := dirs[""]; ok {
		return true
	}
	if _, ok := dirs[rel]; ok {
		return true
	}
	for i := strings.LastIndexByte(rel, '/'); i > 0; i = strings.LastIndexByte(rel[:i], '/') {
		if _, ok := dirs[rel[:i]]; ok {
			return true
		}
	}
	return false
}

// publishCounts brings the shared gauges in line with this Watcher's
// state; it runs on Run's goroutine after each change, and with zeros
// when Run returns.
func (w *Watcher) publishCounts(retrying, unwatched int) {
	st := w.st
	if d := retrying - st.pubRetrying; d != 0 {
		w.counters.Retrying.Add(int64(d))
		st.pubRetrying = retrying
	}
	if d := unwatched - st.pubUnwatched; d != 0 {
		w.counters.Unwatched.Add(int64(d))
		st.pubUnwatched = unwatched
	}
}

// watchFailed notes a folder that could not be watched: it is rescanned
// every pollEvery instead. The first failure of a spell is logged — for
// the inotify watch limit with how to raise it — and every one counted,
// so that a tree beyond the limit is one warning, not one per folder.
func (w *Watcher) watchFailed(rel string, err error) {
	st := w.st
	st.unwatched[rel] = true
	w.counters.WatchFailures.Add(1)
	if st.watchWarned {
		return
	}
	st.watchWarned = true
	if errors.Is(err, syscall.ENOSPC) {
		limit := "the limit"
		if b, rerr := os.ReadFile("/proc/sys/fs/inotify/max_user_watches"); rerr == nil {
			limit = "the limit of " + strings.TrimSpace(string(b))
		}
		w.log.Warn(fmt.Sprintf("cannot watch every folder: %s inotify watches (fs.inotify.max_user_watches) is reached; "+
			"the folders beyond it are rescanned every %s instead, which is slower and costs CPU. "+
			"Raise it: sudo sysctl fs.inotify.max_user_watches=1048576 (and put the setting in /etc/sysctl.d/ to keep it); "+
			"filecast_watch_failures_total counts the folders", limit, pollEvery),
			"path", rel)
		return
	}
	w.log.Warn(fmt.Sprintf("cannot watch a folder; it and any other that fails are rescanned every %s instead (filecast_watch_failures_total counts them)", pollEvery),
		"path", rel, "err", err)
}

// watchRecovered is called when every folder is watched again: a new
// spell of failures is logged again.
func (w *Watcher) watchRecovered() {
	if w.st.watchWarned && len(w.st.unwatched) == 0 {
		w.st.watchWarned = false
		w.log.Info("every folder is watched again")
	}
}
