// Package watch turns the file-system notifications of one workspace into
// filecast's normalised file events and keeps the workspace index: every
// regular file's path, size, sha256, mtime and version.
//
// A Watcher builds the index (a walk and a sha256 of every file), then
// watches the tree until its context is done: with inotify, read
// directly, on Linux; with fsnotify elsewhere. It folds what editors and
// tools do into the events an agent cares about:
//
//   - a new file is reported once, as file.created, with its final
//     content: when its writer closes it and the kernel's queue is then
//     quiet for Options.Quiet (inotify), else once it has been quiet for
//     Options.Settle (fsnotify) or, with inotify, for the longer of it and
//     50 ms (a writer that keeps it open, a hard link);
//   - a write that leaves the content unchanged (same sha256) emits nothing;
//   - a save by rename (write a temp file, rename it onto the real name) is
//     one file.updated, or file.created when the name did not exist;
//   - a removed file is reported as file.deleted once the kernel's queue
//     has been quiet for Options.Quiet after it (inotify), or once its
//     path has stayed gone for Options.Settle: elsewhere, and where a
//     replacement may be under way (a git or Mercurial lock on the
//     repository, a replacement seen lately; see removal.go); removed and
//     created again within that wait (git checkout, some editors) is one
//     file.updated, or nothing when the content is the same;
//   - a rename inside the workspace is one file.moved; folders produce no
//     events of their own: a moved folder is one file.moved per file, a
//     deleted one a file.deleted per file;
//   - ignored paths (see workspace.Ignorer) are neither watched nor reported;
//   - symlinks are never followed; a link whose target resolves to a regular
//     file inside the workspace is a file with its target's content, a link
//     that resolves outside is neither listed nor reported.
//
// The kernel's watches are not recursive: the Watcher adds one per folder,
// including folders created later (walking them, since files may appear
// before the watch is in place). When notifications may have been lost —
// a queue overflow, a watcher error, a folder that could not be watched
// because of the inotify watch limit — it logs a warning and rescans,
// reporting what changed.
//
// Changes the hub makes itself (writes through its API) are reported by
// the hub, with the writer as actor. The hub announces each one with
// [Watcher.Expect] before making it and reports its event with
// [Watcher.Applied]; the Watcher then takes the change into its index
// silently instead of reporting it again as actor "fs".
//
// The index is persisted to Options.IndexPath, at most every half second
// while running, so a process that is killed may leave it behind the log.
// The log is the source of truth and the index a cache of it: given
// Options.Log, the Watcher starts by folding into the persisted index (or
// an empty one) every file event the log holds after the index's seq,
// then compares the folder with it and reports what differs (created,
// updated, deleted, and moved when the same content disappeared at one
// path and appeared at another) — exactly the changes the log does not
// have yet. A change appended just before a kill is not reported again,
// and one made while filecast was not running is reported once.
//
// The very first start — no index file, and no file event of the
// workspace in the log — indexes the tree silently and saves the index at
// once. Without Options.Log the persisted index alone is trusted: a
// missing or unreadable index file means a first start.
//
// Usage:
//
//	w, err := watch.New(watch.Options{Workspace: ws, IndexPath: "/state/index/docs.json"}, hub)
//	if err != nil { ... }
//	go w.Run(ctx)            // blocks until ctx is done; owned by the caller
//	<-w.Ready()              // the index is built and the watches are in place
//	files, cursor := w.Files("reports")
//
// Hashing happens on the goroutine that handles the notifications (read
// ahead of it by a goroutine of the kernel's: up to 32 reads of 64 KiB of
// inotify's queue, or fsnotify's 65536 events), streaming each file
// through sha256. A write to a known file smaller than 1 MiB is hashed
// once its writer closes it (inotify; Options.Settle for one that keeps
// it open) or at once (fsnotify); writes to
// bigger files are hashed once they have been quiet for 50 ms, so a large
// copy is hashed once rather than on every write notification (and the
// loop is busy for about a second per GiB when it is). Two more waits keep
// half-written content out of the log: a known file truncated to empty
// (the first step of an O_TRUNC rewrite) is looked at again after the
// write that follows, or after 250 ms if it stays empty, and a file
// written to while it was being hashed is hashed again once quiet. A
// rescan (after lost notifications, or of a folder renamed) judges a
// file it finds half-written the same way. A file written without pause
// is still reported about once a second.
//
// Only regular files (and symlinks to them inside the workspace) are ever
// opened: fifos, sockets and devices are neither read, listed nor
// reported, and a folder is opened without following a symlink or
// blocking. A file or folder that cannot be read now — no file descriptor
// to spare (EMFILE, ENFILE), or any error but the path being gone — is
// not dropped: it is read again after 20 ms, then after twice as long each
// time it fails, at most every second for want of descriptors and every
// 30 s otherwise, until it is read, and its change is reported then; a
// folder that a rescan could not list keeps its files in the index
// meanwhile. The lack of descriptors is logged once (and once more when it
// ends), other failures once per path; Counters counts the retries.
//
// The Watcher survives what happens around it. A workspace folder that
// goes away (removed, renamed away) is reported by Missing and watched for
// until it is back, then compared with the index as at a start (see
// vanish.go). An Appender that fails for want of room in the log
// (events.ErrInsufficientStorage) makes it hold the changed paths, each
// once, and report them once there is room (see hold.go). Temporary files
// a writer left when it was killed (Options.Leftover) are removed by the
// first walk.
//
// Platform notes: behaviour is tested on Linux (inotify). Folders beyond
// fs.inotify.max_user_watches are rescanned every two seconds instead of
// watched; the first is logged with how to raise the limit, the others
// only counted (Counters). Renames are paired by inode; where there is no
// inode (Windows) a live rename is reported as deleted and created.
package watch

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/filecast/filecast/events"
	"github.com/filecast/filecast/events/workspace"
)

// Appender stores an event in the log and returns it with Seq assigned.
// The hub satisfies it. Append is called serially, from Run's goroutine.
type Appender interface {
	Append(ctx context.Context, ev events.Event) (events.Event, error)
}

// BatchAppender is an Appender that can also store several events in one
// go, in the order given, returning them with their Seqs in that order.
// When the Appender given to New is one (the hub is), a burst of changes
// to distinct files is appended in batches instead of one acknowledgement
// at a time; a lone change still goes out at once. AppendBatch is called
// serially, from Run's goroutine.
type BatchAppender interface {
	Appender
	AppendBatch(ctx context.Context, evs []events.Event) ([]events.Event, error)
}

// Errors returned by New and Run.
var (
	ErrIndexInWorkspace = errors.New("watch: the index path lies inside the workspace")
	ErrNoAppender       = errors.New("watch: no appender")
	ErrRunning          = errors.New("watch: Run was already called")
)

// DefaultSettle is how long a new or removed file must be quiet before it
// is reported, where nothing else tells, when Options.Settle is zero.
const DefaultSettle = 5 * time.Millisecond

// DefaultQuiet is how long the kernel's queue must stay empty after a
// rename away or the close of a new file before the Watcher takes it as
// the whole story, when Options.Quiet is zero (see Options.Quiet).
const DefaultQuiet = 100 * time.Microsecond

// openQuiet is the least time a file written to and not closed must be
// quiet before it is read anyway, where the kernel tells of closes; see
// Watcher.openWait.
const openQuiet = 50 * time.Millisecond

// maxBlockingQuiet is the longest quiet the Watcher waits for in the
// kernel, blocking its goroutine; a longer one is waited for by its timer.
const maxBlockingQuiet = time.Millisecond

const (
	pairWindow    = 50 * time.Millisecond  // a Rename with no matching Create within it is a deletion
	bigFile       = 1 << 20                // writes to files at least this big are hashed once quiet
	bigQuiet      = 50 * time.Millisecond  // how quiet a big file must be before it is hashed
	truncQuiet    = 250 * time.Millisecond // how long a known file emptied by a truncation may stay empty before that is reported
	maxSettle     = time.Second            // a new file written to without pause is reported after this
	saveEvery     = 500 * time.Millisecond
	saveMax       = 5 * time.Second // saves wait for a burst to end, at most this long
	pollEvery     = 2 * time.Second // rescans of folders that could not be watched
	progressEvery = 10000
	eventBuffer   = 1 << 16 // fsnotify's channel: room for bursts while a file is hashed
	maxBatch      = 1024    // events appended with one wait for their acknowledgements
)

// Options configures a Watcher. Zero values mean the defaults.
type Options struct {
	Workspace workspace.Workspace // required; Dir is absolute and free of symlinks
	Ignore    *workspace.Ignorer  // nil means workspace.NewIgnorer(nil)
	IndexPath string              // where the index is persisted (never inside the workspace); "" keeps it in memory only
	Log       Log                 // the durable log the index is a cache of; nil trusts the persisted index alone
	Settle    time.Duration       // how long a new file must be quiet, or a removed one stay gone, before it is reported where nothing else tells; default DefaultSettle
	Logger    *slog.Logger        // nil discards logs; "component" and "workspace" attributes are added
	Progress  io.Writer           // optional: a line every 10,000 files while indexing
	Since     time.Time           // first start only: a file changed (ctime) at or after it is reported as created, not indexed silently; zero: none
	Counters  *Counters           // where the Watcher counts retries and unwatched folders; nil: its own (see Watcher.Counters)
	// Watch is how to learn of changes: Auto (""), Notify or Poll; see
	// Kind. PollInterval is how often polled folders are walked, at most;
	// default DefaultPollInterval. Budget is what the kernel watches of
	// every Watcher of the process may take; nil: NewBudget(0), this
	// Watcher's own.
	Watch        Kind
	PollInterval time.Duration
	Budget       *Budget
	// Leftover, when set, names the files a writer leaves behind when it
	// is killed mid-write (hub.IsTempName): the first walk of Run removes
	// those it finds that were last changed before Since (or all, when
	// Since is zero), so that a write in progress is never touched.
	Leftover func(name string) bool
	// Contents, when set, keeps the contents of the workspace's files, so
	// that their changes can be shown as diffs (see keep.go): each change
	// reported is offered to it, the files there before are put once in
	// the background, the contents no file has any more are retired.
	Contents Contents
	// Quiet is how long, where the kernel tells when a writer closes a
	// file and when its queue is empty (inotify), the queue must stay
	// empty after a rename away, a new file's close or a removal before
	// that is taken as the whole story: the renamed file left the
	// workspace, the new one is not a temporary file about to be renamed
	// onto its real name, the removed one is not being replaced. Within
	// it the rest of such a story comes at once (an editor's save);
	// Settle remains the bound while notifications keep coming, and for
	// a removal while a replacement may be under way. Default
	// DefaultQuiet.
	Quiet time.Duration
}

// Watcher watches one workspace and keeps its index. Files and Stat are
// safe for concurrent use at any time; Run must be called once.
type Watcher struct {
	badNames   warned
	ws         workspace.Workspace
	ignore     *workspace.Ignorer
	app        Appender
	batch      BatchAppender // app, when it is one
	logr       Log
	path       string
	settle     time.Duration
	quiet      time.Duration
	log        *slog.Logger
	progress   io.Writer
	since      time.Time
	ready      chan struct{}
	started    atomic.Bool
	inject     chan func(context.Context) error                // test hooks run on Run's goroutine; see export_test.go
	addHook    func(name string, add func(string) error) error // test hook: adds a watch instead of fsnotify; see export_test.go
	openKernel func() (notifier, error)                        // test hook: notifications from elsewhere than fsnotify; see export_test.go
	readFault  func(path string) error                         // test hook: fails opening a file or folder; see export_test.go
	counters   *Counters
	leftover   func(name string) bool
	kind       Kind                               // Options.Watch
	interval   time.Duration                      // Options.PollInterval
	budget     *Budget                            // Options.Budget
	mounts     func(root string) ([]mount, error) // test hook: the file systems of the workspace; see export_test.go
	watching   atomic.Pointer[Watching]           // how Run chose to watch; see Watching
	contents   Contents                           // nil keeps no contents
	keepWake   chan struct{}                      // wakes the keeper
	lastAppend atomic.Int64                       // when live changes were last appended (unix ns); the keeper's fill yields to them
	inFlight   atomic.Pointer[chan struct{}]      // closed once the changes being appended are in the index; nil between appends

	missing   atomic.Pointer[time.Time] // since when the workspace folder is missing; nil while it is there
	heldCount atomic.Int64              // paths held while the log has no room; -1: the whole tree

	mu    sync.RWMutex // guards files and seq; written by Run's goroutine, and by Applied
	files map[string]*entry
	seq   uint64

	kmu  sync.Mutex // guards keep; taken after xmu and mu
	keep keepState

	xmu     sync.Mutex // guards expects and recheck; taken before mu
	expects map[string][]*expectation
	recheck map[string]bool // paths Undo changed the index of, looked at again by poll

	// Everything below is owned by Run's goroutine.
	st *state
}

// New checks opts and returns a Watcher that reports to app. It starts
// nothing: call Run.
func New(opts Options, app Appender) (*Watcher, error) {
	if app == nil {
		return nil, ErrNoAppender
	}
	if opts.Workspace.Dir == "" || !filepath.IsAbs(opts.Workspace.Dir) {
		return nil, fmt.Errorf("watch: workspace %q needs an absolute folder", opts.Workspace.Name)
	}
	ig := opts.Ignore
	if ig == nil {
		var err error
		if ig, err = workspace.NewIgnorer(nil); err != nil {
			return nil, fmt.Errorf("compile ignores: %w", err)
		}
	}
	if opts.IndexPath != "" {
		abs, err := filepath.Abs(opts.IndexPath)
		if err != nil {
			return nil, fmt.Errorf("resolve index path: %w", err)
		}
		if real, err := filepath.EvalSymlinks(filepath.Dir(abs)); err == nil {
			abs = filepath.Join(real, filepath.Base(abs))
		}
		if _, inside := opts.Workspace.Rel(abs); inside {
			return nil, fmt.Errorf("%w: %s", ErrIndexInWorkspace, opts.IndexPath)
		}
		opts.IndexPath = abs
	}
	if opts.Settle <= 0 {
		opts.Settle = DefaultSettle
	}
	if opts.Quiet <= 0 {
		opts.Quiet = DefaultQuiet
	}
	kind, err := ParseKind(string(opts.Watch))
	if err != nil {
		return nil, err
	}
	if opts.PollInterval <= 0 {
		opts.PollInterval = DefaultPollInterval
	}
	if opts.Budget == nil {
		opts.Budget = NewBudget(0)
	}
	batch, _ := app.(BatchAppender)
	counters := opts.Counters
	if counters == nil {
		counters = &Counters{}
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Watcher{
		ws:       opts.Workspace,
		ignore:   ig,
		app:      app,
		batch:    batch,
		logr:     opts.Log,
		path:     opts.IndexPath,
		settle:   opts.Settle,
		quiet:    opts.Quiet,
		log:      log.With("component", "watch", "workspace", opts.Workspace.Name),
		progress: opts.Progress,
		since:    opts.Since,
		leftover: opts.Leftover,
		ready:    make(chan struct{}),
		inject:   make(chan func(context.Context) error),
		files:    map[string]*entry{},
		expects:  map[string][]*expectation{},
		counters: counters,
		kind:     kind,
		interval: opts.PollInterval,
		budget:   opts.Budget,
		contents: opts.Contents,
		keepWake: make(chan struct{}, 1),
	}, nil
}

// Counters returns the tallies the Watcher keeps (Options.Counters, when
// given).
func (w *Watcher) Counters() *Counters { return w.counters }

// Ready returns a channel closed once the initial index is complete, the
// changes made while filecast was not running have been reported and the
// watches are in place. It is never closed if Run fails before that.
func (w *Watcher) Ready() <-chan struct{} { return w.ready }

// Files returns the indexed files whose path is prefix or lies under the
// folder prefix ("" for all), sorted by path, and the seq of the last
// event applied to the index: the listing reflects every event up to it.
// An invalid prefix gives no files.
func (w *Watcher) Files(prefix string) ([]events.FileInfo, uint64) {
	w.awaitAppend()
	p, err := workspace.CleanPrefix(prefix)
	w.mu.RLock()
	defer w.mu.RUnlock()
	if err != nil {
		return nil, w.seq
	}
	out := make([]events.FileInfo, 0, len(w.files))
	for rel, e := range w.files {
		if p == "" || rel == p || strings.HasPrefix(rel, p) && rel[len(p)] == '/' {
			out = append(out, e.info(rel))
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Path < out[j].Path })
	return out, w.seq
}

// Stat returns the index entry of one file; rel is cleaned first.
func (w *Watcher) Stat(rel string) (events.FileInfo, bool) {
	p, err := workspace.Clean(rel)
	if err != nil {
		return events.FileInfo{}, false
	}
	w.mu.RLock()
	defer w.mu.RUnlock()
	e, ok := w.files[p]
	if !ok {
		return events.FileInfo{}, false
	}
	return e.info(p), true
}
