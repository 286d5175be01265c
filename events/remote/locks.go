package remote

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/filecast/filecast/events"
	"github.com/filecast/filecast/events/workspace"
)

var _ events.Locker = (*Client)(nil)

// Wire forms of the hub's lock and write routes (see package api).
type (
	lockBody struct {
		Path       string `json:"path,omitempty"`
		TTLSeconds int    `json:"ttl_seconds,omitempty"`
		Mode       string `json:"mode,omitempty"`
		WaitMS     int    `json:"wait_ms,omitempty"`
		Holder     string `json:"holder,omitempty"`
	}
	lockList struct {
		Locks []events.Lease `json:"locks"`
	}
	writeResult struct {
		Event *events.Event `json:"event"`
		Seq   uint64        `json:"seq"`
	}
)

// send performs a request with an optional body and header, bounded by
// the client timeout plus extra, and decodes an answer with one of the
// statuses in ok into v (if not nil), or the error body into an error.
func (c *Client) send(ctx context.Context, extra time.Duration, method, target string, hdr http.Header, body []byte, v any, ok ...int) error {
	ctx, cancel := context.WithTimeout(ctx, c.timeout+extra)
	defer cancel()
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := c.newRequestBody(ctx, method, target, rd)
	if err != nil {
		return err
	}
	for k, vs := range hdr {
		req.Header[k] = vs
	}
	req.Header.Set("Accept", "application/json")
	res, err := c.http.Do(req)
	if err != nil {
		return err
	}
	defer res.Body.Close()
	good := false
	for _, s := range ok {
		good = good || res.StatusCode == s
	}
	if !good {
		return responseError(res)
	}
	if v == nil {
		_, _ = io.Copy(io.Discard, io.LimitReader(res.Body, 64<<10))
		return nil
	}
	if err := json.NewDecoder(io.LimitReader(res.Body, 64<<20)).Decode(v); err != nil {
		return fmt.Errorf("%w: decode answer: %v", ErrProtocol, err)
	}
	return nil
}

func jsonBody(v any) (http.Header, []byte) {
	b, _ := json.Marshal(v) // the bodies here always marshal
	return http.Header{"Content-Type": {"application/json"}}, b
}

// ceilSeconds rounds a positive duration up to whole seconds, else 0.
func ceilSeconds(d time.Duration) int {
	if d <= 0 {
		return 0
	}
	return int((d + time.Second - 1) / time.Second)
}

// Lock implements [events.Locker] over POST /v1/workspaces/{ws}/locks, or
// PATCH …/locks/{token} when r.Token refreshes a lease. The TTL is sent in
// whole seconds (rounded up) and the wait in milliseconds; the request may
// take r.Wait longer than the client's timeout. A conflict is a
// *events.LockError (wrapping events.ErrLockConflict) with the holder and
// expiry the hub named.
func (c *Client) Lock(ctx context.Context, r events.LockRequest) (events.Lease, error) {
	var l events.Lease
	var err error
	if r.Token != "" {
		hdr, body := jsonBody(lockBody{Path: r.Path, TTLSeconds: ceilSeconds(r.TTL), Mode: r.Mode})
		err = c.send(ctx, 0, http.MethodPatch, c.endpoint(nil, "v1", "workspaces", r.Workspace, "locks", r.Token), hdr, body, &l, http.StatusOK)
	} else {
		hdr, body := jsonBody(lockBody{
			Path: r.Path, TTLSeconds: ceilSeconds(r.TTL), Mode: r.Mode, Holder: r.Holder,
			WaitMS: int(r.Wait / time.Millisecond),
		})
		err = c.send(ctx, max(r.Wait, 0), http.MethodPost, c.endpoint(nil, "v1", "workspaces", r.Workspace, "locks"), hdr, body, &l, http.StatusCreated, http.StatusOK)
	}
	if err != nil {
		return events.Lease{}, fmt.Errorf("lock %s in %s: %w", r.Path, r.Workspace, err)
	}
	return l, nil
}

// Unlock implements [events.Locker] over DELETE
// /v1/workspaces/{ws}/locks/{token}?path=.
func (c *Client) Unlock(ctx context.Context, ws, path, token string) error {
	if token == "" {
		return fmt.Errorf("unlock %s in %s: %w", path, ws, &events.LockError{Kind: events.ErrNotHolder, Path: path, Why: "no lock_token given"})
	}
	var q url.Values
	if path != "" {
		q = url.Values{"path": {path}}
	}
	if err := c.send(ctx, 0, http.MethodDelete, c.endpoint(q, "v1", "workspaces", ws, "locks", token), nil, nil, nil, http.StatusOK); err != nil {
		return fmt.Errorf("unlock %s in %s: %w", path, ws, err)
	}
	return nil
}

// Locks implements [events.Locker] over GET /v1/workspaces/{ws}/locks.
func (c *Client) Locks(ctx context.Context, ws string) ([]events.Lease, error) {
	var list lockList
	if err := c.send(ctx, 0, http.MethodGet, c.endpoint(nil, "v1", "workspaces", ws, "locks"), nil, nil, &list, http.StatusOK); err != nil {
		return nil, fmt.Errorf("list locks of %s: %w", ws, err)
	}
	if list.Locks == nil {
		list.Locks = []events.Lease{}
	}
	return list.Locks, nil
}

// WriteFile implements [events.Locker] over PUT (or, with w.Delete,
// DELETE) /v1/workspaces/{ws}/files/{path}, sending the lock and fencing
// tokens as headers. The hub records the change as made by the client's
// token ("api:<token name>"); w.Actor is sent only with
// Options.SendActor, for a hub that trusts it. The path is checked
// here too, so a path that escapes the workspace never leaves the process.
func (c *Client) WriteFile(ctx context.Context, w events.WriteRequest) (events.Event, error) {
	ev, err := c.writeFile(ctx, w)
	if err != nil {
		verb := "write"
		if w.Delete {
			verb = "delete"
		}
		return events.Event{}, fmt.Errorf("%s %s in %s: %w", verb, w.Path, w.Workspace, err)
	}
	return ev, nil
}

func (c *Client) writeFile(ctx context.Context, w events.WriteRequest) (events.Event, error) {
	rel, err := workspace.Clean(w.Path)
	if err != nil {
		return events.Event{}, err
	}
	if !w.Delete && len(w.Content) > events.MaxReadSize {
		return events.Event{}, &events.Error{Kind: events.ErrTooLarge, Value: rel, Why: fmt.Sprintf("%d bytes, the limit is %d", len(w.Content), events.MaxReadSize)}
	}
	hdr := http.Header{}
	if w.LockToken != "" {
		hdr.Set("X-Filecast-Lock-Token", w.LockToken)
	}
	if w.FencingToken != 0 {
		hdr.Set("X-Filecast-Fencing-Token", strconv.FormatUint(w.FencingToken, 10))
	}
	if c.sendActor && w.Actor != "" {
		hdr.Set("X-Filecast-Actor", w.Actor)
	}
	method, body := http.MethodPut, w.Content
	if w.Delete {
		method, body = http.MethodDelete, nil
	} else {
		hdr.Set("Content-Type", "application/octet-stream")
		if body == nil {
			body = []byte{}
		}
	}
	segs := append([]string{"v1", "workspaces", w.Workspace, "files"}, strings.Split(rel, "/")...)
	var res writeResult
	if err := c.send(ctx, 0, method, c.endpoint(nil, segs...), hdr, body, &res, http.StatusOK); err != nil {
		return events.Event{}, err
	}
	if res.Event == nil {
		return events.Event{}, nil
	}
	return *res.Event, nil
}
