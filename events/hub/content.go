package hub

import (
	"context"
	"errors"
	"fmt"

	"github.com/filecast/filecast/events"
	"github.com/filecast/filecast/events/content"
)

// Contents keeps earlier contents of files by workspace and sha256, for
// diffs (satisfied by *content.Store). Its methods are safe for
// concurrent use; Offer never waits.
type Contents interface {
	// Offer hands over the content a file now has; it may drop it.
	Offer(ws, sha string, data []byte) bool
	// Get returns a content, or content.ErrNotStored, ErrBinary or
	// ErrTooLarge.
	Get(ctx context.Context, ws, sha string) ([]byte, error)
}

// Content implements [events.Source]: a content a file of ws had, from
// the content store (Options.Contents), keyed by ws and sha together so
// that no other workspace's content is ever returned. Without a store
// every content but the empty one is events.ErrNotStored.
func (h *Hub) Content(ctx context.Context, ws, sha string) ([]byte, error) {
	if _, err := h.state(ws); err != nil {
		return nil, err
	}
	if !events.ValidSHA256(sha) {
		return nil, &events.Error{Kind: events.ErrBadPath, Value: short(sha), Why: "a content is named by its sha256: 64 lowercase hex digits"}
	}
	if sha == content.EmptySHA256 {
		return []byte{}, nil
	}
	if h.contents == nil {
		return nil, &events.Error{Kind: events.ErrNotStored, Value: short(sha), Why: "this hub keeps no earlier contents"}
	}
	data, err := h.contents.Get(ctx, ws, sha)
	switch {
	case err == nil:
		return data, nil
	case errors.Is(err, content.ErrNotStored):
		return nil, &events.Error{Kind: events.ErrNotStored, Value: short(sha), Why: "never seen, or dropped by the content store's size cap or the log's retention"}
	case errors.Is(err, content.ErrBinary):
		return nil, &events.Error{Kind: events.ErrBinary, Value: short(sha), Why: "not text: only that is kept"}
	case errors.Is(err, content.ErrTooLarge):
		return nil, &events.Error{Kind: events.ErrTooLarge, Value: short(sha), Why: "over the content store's size limit: not kept"}
	case errors.Is(err, content.ErrClosed):
		return nil, fmt.Errorf("read content %.12s: %w", sha, events.ErrClosed)
	}
	return nil, fmt.Errorf("read content %.12s: %w", sha, err)
}

// offer hands the content a write gives a file to the content store.
func (h *Hub) offer(ws, sha string, data []byte) {
	if h.contents != nil {
		h.contents.Offer(ws, sha, data)
	}
}

// short cuts a malformed sha for an error message.
func short(s string) string {
	if len(s) > 80 {
		return s[:80] + "…"
	}
	return s
}
