package watch

import (
	"context"
	"maps"
	"slices"
)

// A symlink to a file inside the workspace is indexed as a file with its
// target's content (entry.Link names the target), so a change to the
// target is a change to every link to it: state.links maps each target to
// its links, kept by put and drop.

// refreshLinks re-reads the symlinks whose target is rel: their content is
// the target's.
func (w *Watcher) refreshLinks(ctx context.Context, rel string) error {
	links := w.st.links[rel]
	if len(links) == 0 {
		return nil
	}
	for _, l := range slices.Sorted(maps.Keys(links)) {
		if w.known(l) == nil {
			continue
		}
		if err := w.check(ctx, l, true); err != nil {
			return err
		}
	}
	return nil
}

// put and drop change the index; the caller holds w.mu.
func (w *Watcher) put(rel string, e *entry) {
	old := w.files[rel]
	if old != nil && old.Link != "" && old.Link != e.Link {
		w.unlink(rel, old.Link)
	}
	if old != nil && old.SHA256 == e.SHA256 && old.Version > e.Version {
		// The same content was given a newer version meanwhile (Applied).
		ne := *e
		ne.Version = old.Version
		e = &ne
	}
	w.files[rel] = e
	if e.Link != "" {
		m := w.st.links[e.Link]
		if m == nil {
			m = map[string]bool{}
			w.st.links[e.Link] = m
		}
		m[rel] = true
	}
}

func (w *Watcher) drop(rel string) {
	if old := w.files[rel]; old != nil && old.Link != "" {
		w.unlink(rel, old.Link)
	}
	delete(w.files, rel)
}

func (w *Watcher) unlink(rel, target string) {
	if m := w.st.links[target]; m != nil {
		delete(m, rel)
		if len(m) == 0 {
			delete(w.st.links, target)
		}
	}
}
