package content

import "context"

// Workspace is the part of a Store that holds the contents of one
// workspace: the Store's methods with the workspace given. It is what a
// workspace's watcher hands its contents to. It is safe for concurrent
// use, and valid until the Store is closed.
type Workspace struct {
	s  *Store
	ws string
}

// Workspace returns the contents of workspace ws.
func (s *Store) Workspace(ws string) *Workspace { return &Workspace{s: s, ws: ws} }

// MaxFileSize is Store.MaxFileSize.
func (w *Workspace) MaxFileSize() int64 { return w.s.MaxFileSize() }

// Epoch is Store.Epoch.
func (w *Workspace) Epoch() string { return w.s.Epoch() }

// Put is Store.Put in this workspace.
func (w *Workspace) Put(ctx context.Context, sha string, data []byte) error {
	return w.s.Put(ctx, w.ws, sha, data)
}

// Offer is Store.Offer in this workspace.
func (w *Workspace) Offer(sha string, data []byte) bool { return w.s.Offer(w.ws, sha, data) }

// MarkTooLarge is Store.MarkTooLarge in this workspace.
func (w *Workspace) MarkTooLarge(sha string) bool { return w.s.MarkTooLarge(w.ws, sha) }

// Retire is Store.Retire in this workspace.
func (w *Workspace) Retire(sha string) bool { return w.s.Retire(w.ws, sha) }

// Get is Store.Get in this workspace.
func (w *Workspace) Get(ctx context.Context, sha string) ([]byte, error) {
	return w.s.Get(ctx, w.ws, sha)
}
