package relay

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/filecast/filecast/events"
	"github.com/filecast/filecast/events/workspace"
)

// Client sends writes and listings to the hub that watches their
// workspace. It is safe for concurrent use and holds no goroutine: each
// call subscribes to its own inbox for as long as it waits. It does not
// own the connection.
type Client struct {
	nc      *nats.Conn
	timeout time.Duration
	log     *slog.Logger
}

// New returns a Client that sends its requests over nc.
func New(nc *nats.Conn, opts Options) *Client {
	return &Client{nc: nc, timeout: opts.timeout(), log: opts.logger()}
}

// WriteFile has the watching hub of w.Workspace write or delete the file
// and returns the event it appended, exactly as that hub's WriteFile
// would, errors included (see the package doc). It blocks until the answer
// comes, ctx is done or Options.Timeout passes. Once the whole request is
// sent, a missing answer is an error wrapping ErrOutcomeUnknown (and the
// context's error): the write is not retried, since it may have been made.
func (c *Client) WriteFile(ctx context.Context, w events.WriteRequest) (events.Event, error) {
	verb := "write"
	if w.Delete {
		verb = "delete"
	}
	if !w.Delete && len(w.Content) > events.MaxReadSize {
		// Refused here rather than after 16 MiB went over the wire, in
		// the watching hub's words.
		rel, err := workspace.Clean(w.Path)
		if err == nil {
			err = &events.Error{Kind: events.ErrTooLarge, Value: rel, Why: fmt.Sprintf("%d bytes, the limit is %d", len(w.Content), events.MaxReadSize)}
		}
		return events.Event{}, fmt.Errorf("%s %s: %w", verb, w.Path, err)
	}
	ev, err := c.write(ctx, w)
	if err != nil {
		if _, remote := errors.AsType[*remoteError](err); remote {
			return events.Event{}, err // the watching hub's error, as it said it
		}
		return events.Event{}, fmt.Errorf("relay %s %s of %s: %w", verb, w.Path, w.Workspace, err)
	}
	return ev, nil
}

func (c *Client) write(ctx context.Context, w events.WriteRequest) (events.Event, error) {
	if err := c.check(ctx, w.Workspace); err != nil {
		return events.Event{}, err
	}
	if w.Delete {
		w.Content = nil
	}
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	chunks := split(encodeWrite(w), chunkSize(c.nc))
	total := 0
	for _, ch := range chunks {
		total += len(ch)
	}
	inbox := c.nc.NewInbox()
	box, err := listen(c.nc, inbox, maxAnswer)
	if err != nil {
		return events.Event{}, err
	}
	defer box.close()

	req := chunkMsg(WriteSubject(w.Workspace), 0, total, chunks[0])
	req.Reply = inbox
	c.setBudget(ctx, req)
	if err := c.nc.PublishMsg(req); err != nil {
		return events.Event{}, fmt.Errorf("send request: %w", err)
	}
	sent := len(chunks) == 1 // the whole request is on its way
	asm := newAssembler(maxAnswer)
	for {
		m, err := box.next(ctx)
		switch {
		case errors.Is(err, nats.ErrNoResponders):
			return events.Event{}, fmt.Errorf("%w: %w", ErrNoLeader, err)
		case err != nil && !sent:
			// The watching hub makes no write before it has every chunk.
			return events.Event{}, fmt.Errorf("wait for the watching hub: %w", err)
		case err != nil:
			return events.Event{}, fmt.Errorf("%w: %w", ErrOutcomeUnknown, err)
		}
		switch kind := m.Header.Get(hdrKind); kind {
		case kindMore:
			upload := m.Header.Get(hdrUpload)
			if sent || upload == "" {
				return events.Event{}, fmt.Errorf("%w: %w: an unexpected request for more chunks", ErrOutcomeUnknown, errProtocol)
			}
			for i := 1; i < len(chunks); i++ {
				if err := c.nc.PublishMsg(chunkMsg(upload, i, total, chunks[i])); err != nil {
					return events.Event{}, fmt.Errorf("send chunk %d of %d: %w", i, len(chunks), err)
				}
			}
			sent = true
		case kindResult:
			r, err := c.result(asm, m)
			if err != nil {
				return events.Event{}, fmt.Errorf("%w: %w", ErrOutcomeUnknown, err)
			}
			if r == nil {
				continue
			}
			if r.Error != nil {
				return events.Event{}, r.Error.err()
			}
			if r.Event == nil {
				return events.Event{}, fmt.Errorf("%w: %w: a write answered without an event", ErrOutcomeUnknown, errProtocol)
			}
			return *r.Event, nil
		default:
			return events.Event{}, fmt.Errorf("%w: %w: an answer of kind %q", ErrOutcomeUnknown, errProtocol, kind)
		}
	}
}

// Files has the watching hub of ws list its files under prefix and returns
// the listing, as that hub's Files would. It blocks until the last chunk of
// the answer comes, ctx is done or Options.Timeout passes; a listing is
// made of several messages when large, and its JSON may be up to
// MaxListing bytes.
func (c *Client) Files(ctx context.Context, ws, prefix string) (events.Listing, error) {
	l, err := c.files(ctx, ws, prefix)
	if err != nil {
		if _, remote := errors.AsType[*remoteError](err); remote {
			return events.Listing{}, err
		}
		return events.Listing{}, fmt.Errorf("relay files of %s: %w", ws, err)
	}
	return l, nil
}

func (c *Client) files(ctx context.Context, ws, prefix string) (events.Listing, error) {
	if err := c.check(ctx, ws); err != nil {
		return events.Listing{}, err
	}
	body, _ := json.Marshal(filesRequest{Prefix: prefix}) // cannot fail
	if len(body) > min(maxFilesPayload, chunkSize(c.nc)) {
		return events.Listing{}, &events.Error{Kind: events.ErrBadPath, Value: prefix, Why: "the prefix is too long"}
	}
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	inbox := c.nc.NewInbox()
	box, err := listen(c.nc, inbox, MaxListing+maxAnswer)
	if err != nil {
		return events.Listing{}, err
	}
	defer box.close()
	req := chunkMsg(FilesSubject(ws), 0, len(body), body)
	req.Reply = inbox
	c.setBudget(ctx, req)
	if err := c.nc.PublishMsg(req); err != nil {
		return events.Listing{}, fmt.Errorf("send request: %w", err)
	}
	asm := newAssembler(MaxListing)
	for {
		m, err := box.next(ctx)
		switch {
		case errors.Is(err, nats.ErrNoResponders):
			return events.Listing{}, fmt.Errorf("%w: %w", ErrNoLeader, err)
		case err != nil:
			return events.Listing{}, fmt.Errorf("wait for the watching hub: %w", err)
		}
		if kind := m.Header.Get(hdrKind); kind != kindResult {
			return events.Listing{}, fmt.Errorf("%w: an answer of kind %q", errProtocol, kind)
		}
		r, err := c.result(asm, m)
		if err != nil {
			return events.Listing{}, err
		}
		if r == nil {
			continue
		}
		if r.Error != nil {
			return events.Listing{}, r.Error.err()
		}
		if r.Listing == nil {
			return events.Listing{}, fmt.Errorf("%w: a listing answered without a listing", errProtocol)
		}
		if r.Listing.Files == nil {
			r.Listing.Files = []events.FileInfo{}
		}
		return *r.Listing, nil
	}
}

// check refuses a request that cannot be sent.
func (c *Client) check(ctx context.Context, ws string) error {
	if c == nil || c.nc == nil {
		return fmt.Errorf("%w: no connection", ErrConfig)
	}
	if relayed(ctx) {
		// This hub answers the relay for ws but no longer watches it:
		// relaying again would reach itself.
		return fmt.Errorf("%w: this hub stopped watching the workspace", ErrNoLeader)
	}
	if err := events.ValidWorkspaceName(ws); err != nil {
		return err
	}
	return ctx.Err()
}

func (c *Client) setBudget(ctx context.Context, m *nats.Msg) {
	if dl, ok := ctx.Deadline(); ok {
		m.Header.Set(hdrBudget, budget(dl))
	}
}

// result adds an answer chunk; it returns the answer once complete, nil
// while more chunks are due.
func (c *Client) result(asm *assembler, m *nats.Msg) (*result, error) {
	done, err := asm.add(m.Header, m.Data)
	if err != nil || !done {
		return nil, err
	}
	r, err := decodeResult(asm.payload())
	if err != nil {
		return nil, err
	}
	return &r, nil
}
