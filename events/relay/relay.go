// Package relay forwards the two calls that only the hub watching a
// workspace can answer — writing a file and listing the files — over NATS
// to whichever hub watches it now, when several hubs share one NATS
// cluster.
//
// Every hub serves SSE, /changes, locks and reads by itself, but a write
// must be made by the hub whose watcher is told of it beforehand (so that
// it is reported once, by the writer, and not a second time as a foreign
// change), and only that hub has the index a listing comes from. The hub
// that leads a workspace runs [Serve] for as long as it watches it; every
// other hub hands its writes and listings to a [Client] (hub.SetRelay),
// which reaches the leader whoever it is.
//
//	// on the hub elected to watch "docs", inside its lead function:
//	h.SetIndex("docs", watcher)
//	defer h.SetIndex("docs", nil)
//	err := relay.Serve(ctx, nc, "docs", h, relay.Options{Logger: log}) // until leadership ends
//
//	// on every hub, once:
//	c := relay.New(nc, relay.Options{Timeout: 30 * time.Second, Logger: log})
//	h.SetRelay("docs", c) // used while the hub has no index of "docs"
//
// # Errors
//
// An error returned by the watching hub comes back with the same text and
// the same identity: errors.Is finds the same events sentinel
// (events.ErrLocked, ErrStale, ErrBadPath, ErrNotFound, ErrTooLarge, …) and
// errors.As the same *events.LockError (holder, mode, expiry) or
// *events.Error as for a local call. When no hub serves the workspace the
// error wraps [ErrNoLeader] (and nats.ErrNoResponders), which wraps
// events.ErrClosed, so the HTTP API answers 503 and the caller may retry:
// nothing was written. A write whose answer does not come within
// Options.Timeout wraps [ErrOutcomeUnknown]: it was sent and may or may not
// have been made, so it is not retried.
//
// # Wire format
//
// Core NATS request/reply, no JetStream. Requests go to
// "filecast.relay.<ws>.write" and "filecast.relay.<ws>.files" (see
// [WriteSubject]), where the watching hub listens in the queue group
// "filecast-relay", so that a request is answered once even while two hubs
// briefly both serve. Each request carries a reply subject (an inbox the
// client listens on) and the header Relay-Budget: the milliseconds the
// client still waits, after which the watching hub no longer starts it.
//
// A payload larger than one message is cut into chunks of at most the
// server's max_payload less 8 KiB; every message of a payload carries
// Relay-Seq (0, 1, …) and Relay-Total (the payload's length in bytes), and
// the receiver accepts them only in order and stops at Relay-Total bytes.
//
//   - write: the payload is the request as one line of JSON ({"path",
//     "delete", "lock_token", "fencing_token", "actor", "size"}), a newline,
//     then the content's bytes. Chunk 0 goes with the request. When more
//     chunks follow, the watching hub answers with Relay-Kind: more and
//     Relay-Upload: a fresh inbox it listens on, and the client sends
//     chunks 1… there. The write is made only once the whole payload has
//     arrived.
//   - files: the payload is {"prefix": "…"}, always one message.
//   - answers: the payload is {"event": …}, {"listing": …} or
//     {"error": {"code", "message", "path", "holder", "mode",
//     "expires_at", "why", "cause", "input": {"value", "why"}}} — the hub
//     API's error body with what it leaves out — sent to the reply subject
//     as chunks with Relay-Kind: result.
package relay

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/filecast/filecast/events"
	"github.com/filecast/filecast/events/journal"
)

// SubjectPrefix starts every subject of the relay.
const SubjectPrefix = "filecast.relay."

// QueueGroup is the queue group the serving hubs listen in.
const QueueGroup = "filecast-relay"

// DefaultTimeout is how long a Client waits for an answer when
// Options.Timeout is not set.
const DefaultTimeout = 30 * time.Second

// Sentinel errors of the package; match them with errors.Is.
var (
	// ErrNoLeader says that no hub serves the workspace: none watches it
	// yet, or the one that did has stopped. The request was not carried
	// out. It wraps events.ErrClosed, so the HTTP API answers 503.
	ErrNoLeader error = noLeaderError{}
	// ErrOutcomeUnknown says that a write was sent to the watching hub but
	// its answer did not come back in time: it may or may not have been
	// made. Read the file or the log before trying again.
	ErrOutcomeUnknown = errors.New("relay: the write was sent but its answer was lost: the file may or may not have been changed; read it before trying again")
	// ErrConfig reports a missing connection or a bad workspace name.
	ErrConfig = errors.New("relay: invalid arguments")
)

type noLeaderError struct{}

func (noLeaderError) Error() string { return "relay: no hub watches the workspace now" }

func (noLeaderError) Unwrap() error { return events.ErrClosed }

// Local is what the watching hub answers relayed requests with (satisfied
// by *hub.Hub). Its methods are safe for concurrent use.
type Local interface {
	// Files lists the files of ws under prefix, from the watcher's index.
	Files(ctx context.Context, ws, prefix string) (events.Listing, error)
	// WriteFile writes or deletes a file, telling the watcher beforehand.
	WriteFile(ctx context.Context, w events.WriteRequest) (events.Event, error)
}

// Options configures Serve and New. Zero values mean the defaults.
type Options struct {
	// Timeout bounds a Client's wait for an answer (default 30 s) and, in
	// Serve, the wait for the rest of a request's chunks when the request
	// gives no budget.
	Timeout time.Duration
	// Logger receives what cannot be returned; nil discards it.
	Logger *slog.Logger
}

func (o Options) timeout() time.Duration {
	if o.Timeout <= 0 {
		return DefaultTimeout
	}
	return o.Timeout
}

func (o Options) logger() *slog.Logger {
	if o.Logger == nil {
		return slog.New(slog.DiscardHandler)
	}
	return o.Logger.With("component", "relay")
}

// WriteSubject returns the subject write requests of workspace ws go to.
func WriteSubject(ws string) string { return SubjectPrefix + journal.Token(ws) + ".write" }

// FilesSubject returns the subject files requests of workspace ws go to.
func FilesSubject(ws string) string { return SubjectPrefix + journal.Token(ws) + ".files" }

// relayedKey marks the context of a request being answered by Serve, so
// that a hub that serves a workspace without watching it does not relay
// the request again (to itself).
type relayedKey struct{}

func relayed(ctx context.Context) bool { return ctx.Value(relayedKey{}) != nil }
