package watch

import (
	"context"
	"time"

	"github.com/filecast/filecast/events/internal/wait"
)

// Contents keeps the contents of a workspace's text files for diffs
// (satisfied by *content.Workspace). Its methods are safe for concurrent
// use; Offer, MarkTooLarge and Retire never wait.
type Contents interface {
	// MaxFileSize is the largest content kept.
	MaxFileSize() int64
	// Epoch names the store: one made anew has another, and is filled
	// again.
	Epoch() string
	// Offer hands over a content without waiting; it may drop it.
	Offer(sha string, data []byte) bool
	// Put hands over a content, waiting for room while ctx allows.
	Put(ctx context.Context, sha string, data []byte) error
	// MarkTooLarge records that a content over MaxFileSize exists.
	MarkTooLarge(sha string) bool
	// Retire says that no file has the content any more.
	Retire(sha string) bool
}

// With Options.Contents the Watcher keeps the contents of the files it
// reports, so that their changes can be shown as diffs:
//
//   - a change it sees live is read once, to hash it and to keep it: the
//     bytes hashed (files up to Contents.MaxFileSize) are offered when the
//     change is reported, before its event is appended, so whoever reads
//     the event finds its content. Larger files are only marked as such;
//   - a change it finds by comparing the folder with the index (a rescan,
//     a start) is read again, on a goroutine of its own, and kept if the
//     file still has the content reported;
//   - once the index is ready the first time (Options.IndexPath records
//     it, for each store: Contents.Epoch), every file of the index is kept
//     the same way, in the background, one at a time and waiting for room
//     in the store's queue, so that the first change of a file that was
//     there before filecast started has a diff too;
//   - a content no file of the index has any more (a file changed, moved,
//     was deleted) is retired, at most every half second.

// capture is an io.Writer that keeps what is written to it, up to max
// bytes: past that it keeps nothing and sets over.
type capture struct {
	data []byte
	max  int
	over bool
}

// newCapture returns a capture of at most limit bytes with room for a
// file of size bytes.
func newCapture(size, limit int64) *capture {
	return &capture{data: make([]byte, 0, min(max(size, 0), limit)), max: int(limit)}
}

func (c *capture) Write(p []byte) (int, error) {
	switch {
	case c.over:
	case len(c.data)+len(p) > c.max:
		c.over, c.data = true, nil
	default:
		c.data = append(c.data, p...)
	}
	return len(p), nil
}

// keepState is what the keeping shares between Run's goroutine, the
// keeper's and the hub's (Applied). Its mutex is taken after w.xmu and
// w.mu, never before.
type keepState struct {
	todo    map[string]string   // path → content to read and keep
	unused  map[string]struct{} // contents some file had: retired unless a file still has them
	kept    string              // the store (Epoch) every file was kept in once; persisted in the index
	changed bool                // kept changed since the index was last handed to the saver
}

// capture remembers the content of a file just read on Run's goroutine,
// for offer when its change is reported. What the iteration of the loop
// does not report is forgotten at its end.
func (w *Watcher) capture(sha string, data []byte) {
	if w.st.captured == nil {
		w.st.captured = map[string][]byte{}
	}
	w.st.captured[sha] = data
}

// offer keeps the content e of a change reported at rel: the bytes read
// to hash it, else read again later. It runs on Run's goroutine.
func (w *Watcher) offer(rel string, e *entry) {
	if w.contents == nil {
		return
	}
	data, ok := w.st.captured[e.SHA256]
	switch {
	case e.Size > w.contents.MaxFileSize():
		w.contents.MarkTooLarge(e.SHA256)
	case ok && w.contents.Offer(e.SHA256, data):
	default:
		w.keepLater(rel, e.SHA256)
	}
}

// keepLater has the keeper read rel and keep it if it still has the
// content sha.
func (w *Watcher) keepLater(rel, sha string) {
	w.kmu.Lock()
	if w.keep.todo == nil {
		w.keep.todo = map[string]string{}
	}
	w.keep.todo[rel] = sha
	w.kmu.Unlock()
	select {
	case w.keepWake <- struct{}{}:
	default:
	}
}

// replaced notes that a file had the content old and has another now
// (newSHA, "" when deleted). The caller holds w.mu.
func (w *Watcher) replaced(old *entry, newSHA string) {
	if w.contents == nil || old == nil || old.SHA256 == newSHA || old.SHA256 == "" {
		return
	}
	w.kmu.Lock()
	if w.keep.unused == nil {
		w.keep.unused = map[string]struct{}{}
	}
	w.keep.unused[old.SHA256] = struct{}{}
	w.kmu.Unlock()
}

// retireUnused retires the contents noted by replaced that no file of the
// index has. It runs on Run's goroutine, when no event waits to be
// appended (the index then holds every change reported).
func (w *Watcher) retireUnused() {
	if w.contents == nil || len(w.st.queued) > 0 {
		return
	}
	w.kmu.Lock()
	unused := w.keep.unused
	w.keep.unused = nil
	w.kmu.Unlock()
	if len(unused) == 0 {
		return
	}
	w.mu.RLock()
	for _, e := range w.files {
		delete(unused, e.SHA256)
		if len(unused) == 0 {
			break
		}
	}
	w.mu.RUnlock()
	for sha := range unused {
		w.contents.Retire(sha)
	}
}

// keeper reads and keeps contents until ctx is done: what keepLater asks
// for first, then, the first time for this store, every file of the
// index. It runs on a goroutine Run owns, once the index is ready.
func (w *Watcher) keeper(ctx context.Context) {
	epoch := w.contents.Epoch()
	w.kmu.Lock()
	fill := w.keep.kept != epoch
	w.kmu.Unlock()
	var files []string
	var shas map[string]string
	if fill {
		list, _ := w.Files("")
		shas = make(map[string]string, len(list))
		for _, f := range list {
			files = append(files, f.Path)
			shas[f.Path] = f.SHA256
		}
		w.log.Debug("keeping the contents of the workspace's files", "files", len(files))
	}
	for ctx.Err() == nil {
		if rel, sha, ok := w.nextTodo(); ok {
			w.keepFile(ctx, rel, sha)
			continue
		}
		if fill {
			if len(files) > 0 {
				w.yieldToChanges(ctx)
				rel := files[0]
				files = files[1:]
				w.keepFile(ctx, rel, shas[rel])
				continue
			}
			if ctx.Err() == nil {
				fill = false
				w.kmu.Lock()
				w.keep.kept, w.keep.changed = epoch, true
				w.kmu.Unlock()
				w.log.Debug("the contents of the workspace's files are kept")
			}
			continue
		}
		select {
		case <-ctx.Done():
		case <-w.keepWake:
		}
	}
}

// fillPause is how long the fill of a new store waits before each file
// while live changes are being appended (within the last fillPause): a
// start under load fills at most 200 files a second, leaving the cores
// and the connection to JetStream to the changes agents wait for; a quiet
// one fills at full speed.
const fillPause = 5 * time.Millisecond

// yieldToChanges waits out fillPause when changes were appended within
// it.
func (w *Watcher) yieldToChanges(ctx context.Context) {
	if last := w.lastAppend.Load(); last != 0 && time.Since(time.Unix(0, last)) < fillPause {
		wait.Sleep(ctx, fillPause)
	}
}

// nextTodo takes one path keepLater asked for.
func (w *Watcher) nextTodo() (rel, sha string, ok bool) {
	w.kmu.Lock()
	defer w.kmu.Unlock()
	for rel, sha := range w.keep.todo {
		delete(w.keep.todo, rel)
		return rel, sha, true
	}
	return "", "", false
}

// keepFile reads rel and keeps it if the index and the file both still
// have the content sha: a later change is kept by its own report.
func (w *Watcher) keepFile(ctx context.Context, rel, sha string) {
	cur, ok := w.Stat(rel)
	if !ok || cur.SHA256 != sha {
		return
	}
	if cur.Size > w.contents.MaxFileSize() {
		w.contents.MarkTooLarge(sha)
		return
	}
	s := w.lstat(rel)
	if s.kind != kindFile || s.size > w.contents.MaxFileSize() {
		return
	}
	c := newCapture(s.size, w.contents.MaxFileSize())
	e, _, err := w.read(s, c)
	if err != nil || c.over || e.SHA256 != sha {
		return
	}
	_ = w.contents.Put(ctx, sha, c.data) // fails only when ctx ends or the store closes
}

// keptChanged reports (once) that the index must be saved for the store
// it names as kept.
func (w *Watcher) keptChanged() bool {
	w.kmu.Lock()
	defer w.kmu.Unlock()
	ch := w.keep.changed
	w.keep.changed = false
	return ch
}

// keptEpoch returns the store the index names as kept.
func (w *Watcher) keptEpoch() string {
	w.kmu.Lock()
	defer w.kmu.Unlock()
	return w.keep.kept
}
