package daemon

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/filecast/filecast/events"
)

// Subscribe implements [events.Source] on the current backend, waiting
// for one (bounded by ctx): it passes the backend's events on, and ends
// when that subscription does, or with an error wrapping ErrOwnerGone the
// moment the backend stops being current (its owner went away, or this
// process took over). It does not resume: the caller subscribes again
// after the last event it got ([events.Follow] does), and lands on the
// next backend, from whose log the events after that one come. Once Run
// has returned it fails with ErrStopped.
func (s *Shared) Subscribe(ctx context.Context, ws string, after uint64, fn func(events.Event) error) error {
	t, err := s.await(ctx, 0, nil)
	if err != nil {
		return err
	}
	bctx, cancel := context.WithCancel(ctx)
	defer cancel()
	defer context.AfterFunc(t.ctx, cancel)()
	var fnErr error
	err = t.b.Subscribe(bctx, ws, after, func(ev events.Event) error {
		if err := fn(ev); err != nil {
			fnErr = err
			return err
		}
		return nil
	})
	switch {
	case fnErr != nil:
		return fnErr
	case ctx.Err() != nil:
		return ctx.Err()
	case t.ctx.Err() != nil:
		s.mu.Lock()
		stopped := s.stopped
		s.mu.Unlock()
		if stopped {
			return ErrStopped
		}
		return fmt.Errorf("subscribe to %s: %w", ws, ErrOwnerGone)
	}
	return err
}

// stale returns t if it is still current, for await's grace.
func stale(t *term) *term {
	if t.ctx.Err() != nil {
		return nil
	}
	return t
}

// call runs f on the current backend. When f fails because the owner went
// away, it waits (bounded by ctx) for the next backend and runs f once
// more. A call that may change something (mutates) is retried only when
// it never reached the owner.
func call[T any](s *Shared, ctx context.Context, mutates bool, f func(context.Context, Backend) (T, error)) (T, error) {
	var zero T
	t, err := s.await(ctx, 0, nil)
	if err != nil {
		return zero, err
	}
	v, err := attempt(ctx, t, mutates, f)
	if err == nil || ctx.Err() != nil || !lost(t, err, mutates) {
		return v, err
	}
	s.log.Debug("call failed on a lost owner; retrying on the next backend", "err", err)
	next, werr := s.await(ctx, t.gen+1, stale(t))
	if werr != nil {
		if errors.Is(werr, ErrStopped) {
			return zero, werr
		}
		return zero, err
	}
	return attempt(ctx, next, mutates, f)
}

// attempt runs f on t's backend. A read is cut short when t ends, so that
// a long poll on a vanished owner is retried at once.
func attempt[T any](ctx context.Context, t *term, mutates bool, f func(context.Context, Backend) (T, error)) (T, error) {
	if mutates {
		return f(ctx, t.b)
	}
	cctx, cancel := context.WithCancel(ctx)
	defer cancel()
	defer context.AfterFunc(t.ctx, cancel)()
	return f(cctx, t.b)
}

// lost reports whether err, from a call on t, says that the owner went
// away in a way that makes a retry safe.
func lost(t *term, err error, mutates bool) bool {
	switch {
	case t.owner:
		// In-process calls are interrupted only by the end of the term.
		return !mutates && t.ctx.Err() != nil
	case mutates:
		return dialError(err)
	default:
		return t.ctx.Err() != nil || connError(err)
	}
}

// Workspaces implements [events.Source]; it is retried once on a new
// owner when the current one goes away.
func (s *Shared) Workspaces(ctx context.Context) ([]events.WorkspaceInfo, error) {
	return call(s, ctx, false, func(ctx context.Context, b Backend) ([]events.WorkspaceInfo, error) {
		return b.Workspaces(ctx)
	})
}

// Changes implements [events.Source]; it is retried once on a new owner
// when the current one goes away.
func (s *Shared) Changes(ctx context.Context, ws string, after uint64, limit int, wait time.Duration) (events.Page, error) {
	return call(s, ctx, false, func(ctx context.Context, b Backend) (events.Page, error) {
		return b.Changes(ctx, ws, after, limit, wait)
	})
}

// Files implements [events.Source]; it is retried once on a new owner
// when the current one goes away.
func (s *Shared) Files(ctx context.Context, ws, prefix string) (events.Listing, error) {
	return call(s, ctx, false, func(ctx context.Context, b Backend) (events.Listing, error) {
		return b.Files(ctx, ws, prefix)
	})
}

type fileRead struct {
	data []byte
	info events.FileInfo
}

// ReadFile implements [events.Source]; it is retried once on a new owner
// when the current one goes away.
func (s *Shared) ReadFile(ctx context.Context, ws, path string, r events.Range) ([]byte, events.FileInfo, error) {
	read, err := call(s, ctx, false, func(ctx context.Context, b Backend) (fileRead, error) {
		data, info, err := b.ReadFile(ctx, ws, path, r)
		return fileRead{data, info}, err
	})
	return read.data, read.info, err
}

// Content implements [events.Source]; it is retried once on a new owner
// when the current one goes away.
func (s *Shared) Content(ctx context.Context, ws, sha string) ([]byte, error) {
	return call(s, ctx, false, func(ctx context.Context, b Backend) ([]byte, error) {
		return b.Content(ctx, ws, sha)
	})
}

// Lock implements [events.Locker]. It is retried on a new owner only when
// the request never reached the current one; otherwise the error is
// returned, since the lock may have been granted.
func (s *Shared) Lock(ctx context.Context, r events.LockRequest) (events.Lease, error) {
	return call(s, ctx, true, func(ctx context.Context, b Backend) (events.Lease, error) {
		return b.Lock(ctx, r)
	})
}

// Unlock implements [events.Locker]. It is retried on a new owner only
// when the request never reached the current one.
func (s *Shared) Unlock(ctx context.Context, ws, path, token string) error {
	_, err := call(s, ctx, true, func(ctx context.Context, b Backend) (struct{}, error) {
		return struct{}{}, b.Unlock(ctx, ws, path, token)
	})
	return err
}

// Locks implements [events.Locker]; it is retried once on a new owner
// when the current one goes away.
func (s *Shared) Locks(ctx context.Context, ws string) ([]events.Lease, error) {
	return call(s, ctx, false, func(ctx context.Context, b Backend) ([]events.Lease, error) {
		return b.Locks(ctx, ws)
	})
}

// WriteFile implements [events.Locker]. It is retried on a new owner only
// when the request never reached the current one; otherwise the error is
// returned, since the write may have been applied.
func (s *Shared) WriteFile(ctx context.Context, w events.WriteRequest) (events.Event, error) {
	return call(s, ctx, true, func(ctx context.Context, b Backend) (events.Event, error) {
		return b.WriteFile(ctx, w)
	})
}
