package lock

import (
	"context"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/filecast/filecast/events"
)

// locate returns the key of the lock on path, or, when path is empty, of
// the lock in ws that token hash holds according to the mirror.
func (m *Manager) locate(ctx context.Context, ws, path, hash string) (string, error) {
	if err := events.ValidWorkspaceName(ws); err != nil {
		return "", err
	}
	if path != "" {
		_, key, err := target(ws, path)
		return key, err
	}
	m.mu.Lock()
	for key, e := range m.mirror {
		if e.rec != nil && e.rec.Workspace == ws && find(e.rec.Holders, hash) >= 0 {
			m.mu.Unlock()
			return key, nil
		}
	}
	m.mu.Unlock()
	// Not in the mirror, which may lag the bucket (a lock taken through
	// another hub while this one's watch was being re-established): look
	// in the bucket itself.
	if key := m.scan(ctx, ws, hash); key != "" {
		return key, nil
	}
	return "", notHolderError("", "no lock in workspace %s is held with this lock_token (it may have expired or been released)", ws)
}

// scan reads the locks of ws from the bucket and returns the key of the
// one held with the token whose hash is given, or "" (also when the bucket
// cannot be read).
func (m *Manager) scan(ctx context.Context, ws, hash string) string {
	ctx, cancel := withTimeout(ctx)
	defer cancel()
	w, err := m.kv.Watch(ctx, wsFilter(ws), jetstream.IgnoreDeletes())
	if err != nil {
		return ""
	}
	defer func() { _ = w.Stop() }()
	for {
		select {
		case e, ok := <-w.Updates():
			if !ok || e == nil {
				return ""
			}
			if rec, err := decodeRecord(e.Value(), e.Revision()); err == nil && find(rec.Holders, hash) >= 0 {
				return e.Key()
			}
		case <-ctx.Done():
			return ""
		}
	}
}

func notHolder(rec *record, gone []holder, hash, path string) error {
	if rec != nil {
		path = rec.Path
	}
	if i := find(gone, hash); i >= 0 {
		return notHolderError(path, "the lease expired at %s; take the lock again", gone[i].Expires.UTC().Format(time.RFC3339))
	}
	return notHolderError(path, "the lock_token holds no lock here (wrong token, or the lease was released or replaced)")
}
