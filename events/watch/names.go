package watch

import (
	"errors"
	"sync"

	"github.com/filecast/filecast/events"
	"github.com/filecast/filecast/events/workspace"
)

// rel turns a path under the root into the relative path events carry. It
// refuses (ok false) the root itself, paths outside it, and names filecast
// cannot report faithfully — invalid UTF-8, control characters such as a
// newline — which workspace.Clean would refuse anywhere else: such a file
// is skipped with a warning (once per name) instead of failing the watch.
func (w *Watcher) rel(abs string) (string, bool) {
	rel, ok := w.ws.Rel(abs)
	if !ok {
		return "", false
	}
	if c, err := workspace.Clean(rel); err != nil || c != rel {
		if !errors.Is(err, events.ErrVCSInternal) { // ignored, not unreportable
			w.warnName(rel, err)
		}
		return "", false
	}
	return rel, true
}

// warned remembers the unreportable names already logged, boundedly.
type warned struct {
	mu    sync.Mutex
	names map[string]bool
}

const maxWarned = 1024

func (w *Watcher) warnName(rel string, err error) {
	w.badNames.mu.Lock()
	defer w.badNames.mu.Unlock()
	if w.badNames.names == nil {
		w.badNames.names = map[string]bool{}
	}
	if w.badNames.names[rel] || len(w.badNames.names) >= maxWarned {
		return
	}
	w.badNames.names[rel] = true
	w.log.Warn("skipping a file whose name filecast cannot report", "name", []byte(rel), "err", err)
}
