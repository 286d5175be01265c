package watch

import (
	"context"
	"fmt"
	"sync"
)

// Budget is what the kernel lets the Watchers of one process watch, shared
// by them: inotify watches on Linux (one per folder, up to
// fs.inotify.max_user_watches), descriptors where fsnotify uses kqueue
// (macOS and the BSDs: one per watched folder and per file in it). Before
// it adds a watch, a Watcher that notifies counts what its tree will take
// — stopping as soon as that is more than what is left — and takes it
// from the Budget; when there is not enough left it polls the workspace
// instead, and says so in one log line. It gives its share back when Run
// returns. The tree is counted at the start only: folders (and, with
// kqueue, files) created later take more, which the half of the
// descriptors left to the rest of filecast absorbs, and a folder whose
// watch fails all the same is rescanned every two seconds (see
// watchFailed). A Budget is safe for concurrent use.
type Budget struct {
	files  bool   // a watched file takes one too, not only a folder (kqueue)
	limit  int    // what the Watchers may take together; < 0: no limit
	unit   string // what runs out: "inotify watches"
	detail string // where the limit comes from
	raise  string // how to have more

	mu   sync.Mutex
	used int
}

// Unlimited returns a Budget that never runs out: where watches cost
// nothing that can run out (Windows: a handle per folder).
func Unlimited() *Budget { return &Budget{limit: -1} }

// DescriptorReserve is the part of the open file limit DescriptorBudget
// leaves to the rest of filecast before it halves what remains (the event
// streams get the other half; see api.FitStreams).
const DescriptorReserve = 256

// DescriptorBudget returns the Budget of kqueue, which opens a descriptor
// for every watched folder and every file in it: half of what the open
// file limit openFiles leaves beyond DescriptorReserve (at least 16), the
// other half being the event streams'. A zero openFiles (unknown) means no
// limit.
func DescriptorBudget(openFiles uint64) *Budget {
	if openFiles == 0 {
		return Unlimited()
	}
	n := 16
	if openFiles > DescriptorReserve+32 {
		n = int(min((openFiles-DescriptorReserve)/2, 1<<30))
	}
	return &Budget{
		files:  true,
		limit:  n,
		unit:   "descriptors",
		detail: fmt.Sprintf("kqueue opens one per watched file and folder; watches may take half of the open file limit of %d beyond %d", openFiles, DescriptorReserve),
		raise:  "raise the open file limit (ulimit -n; launchctl limit maxfiles on macOS), or --ignore big folders such as node_modules, to watch it with notifications",
	}
}

// inotifyBudget is the Budget of inotify: maxWatches folders (the value of
// fs.inotify.max_user_watches, which every program of the user shares).
func inotifyBudget(maxWatches int) *Budget {
	return &Budget{
		limit:  maxWatches,
		unit:   "inotify watches",
		detail: fmt.Sprintf("one per folder; fs.inotify.max_user_watches = %d, shared by every program of the user", maxWatches),
		raise:  "raise it to watch it with notifications: sudo sysctl fs.inotify.max_user_watches=1048576 (and put the setting in /etc/sysctl.d/ to keep it)",
	}
}

// take takes n from the Budget; false, taking nothing, when less is left.
func (b *Budget) take(n int) bool {
	if b.limit < 0 {
		return true
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.used+n > b.limit {
		return false
	}
	b.used += n
	return true
}

// give returns n taken earlier.
func (b *Budget) give(n int) {
	if b.limit < 0 || n == 0 {
		return
	}
	b.mu.Lock()
	b.used -= n
	b.mu.Unlock()
}

// left returns what can still be taken; -1 when there is no limit.
func (b *Budget) left() int {
	if b.limit < 0 {
		return -1
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	return max(b.limit-b.used, 0)
}

// countWatches counts what watching the tree with notifications takes
// from b: every folder that is not ignored and not under one of skip (the
// polled ones, relative), and with b.files every entry of those folders
// (kqueue opens them all, ignored names included). It stops as soon as
// the count passes limit, with over set. Folders it cannot list count as
// one each.
func (w *Watcher) countWatches(ctx context.Context, b *Budget, skip []string, limit int) (n int, over bool) {
	if b.files {
		n = 1 // the workspace folder itself, which no folder lists
	}
	stack := []string{""}
	for len(stack) > 0 {
		if ctx.Err() != nil {
			return n, false
		}
		d := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		if underAnyOf(d, skip) {
			continue
		}
		if !b.files {
			n++
		}
		if n > limit {
			return n, true
		}
		f, err := openDir(w.ws.Abs(d))
		if err != nil {
			continue
		}
		ents, err := f.ReadDir(-1)
		f.Close()
		if err != nil {
			continue
		}
		if b.files {
			n += len(ents)
		}
		for _, e := range ents {
			if !e.IsDir() {
				continue
			}
			rel := e.Name()
			if d != "" {
				rel = d + "/" + rel
			}
			if !w.ignore.IgnoredChild(rel, true) {
				stack = append(stack, rel)
			}
		}
	}
	return n, n > limit
}

// underAnyOf reports whether rel is one of dirs or lies under one of them.
func underAnyOf(rel string, dirs []string) bool {
	for _, d := range dirs {
		if under(rel, d) {
			return true
		}
	}
	return false
}
