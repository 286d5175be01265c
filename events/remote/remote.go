// Package remote is an [events.Source] that reaches a hub over HTTP: the
// JSON routes for listings, pages and reads, and the hub's Server-Sent
// Events stream for subscriptions, parsed with go-sse. A subscription is
// one stream, started after a cursor with Last-Event-ID; when it breaks,
// [events.Follow] subscribes again after the last event delivered.
//
//	c, err := remote.New("http://hub:8080", remote.Options{Token: tok})
//	if err != nil { ... }
//	err = events.Follow(ctx, c, "docs", cursor, func(ev events.Event) error {
//		fmt.Println(ev.Seq, ev.Type, ev.Path)
//		return nil
//	}, events.FollowOptions{Final: remote.Permanent})
//
// Errors the hub reports keep their meaning: errors.Is(err,
// events.ErrCursorExpired) and the other events sentinels work on them.
package remote

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/filecast/filecast/events"
	"github.com/filecast/filecast/events/wire"
)

// Defaults of [Options].
const (
	// DefaultTimeout bounds a JSON request (beyond a Changes wait) when the
	// HTTP client has no timeout of its own.
	DefaultTimeout = 30 * time.Second
)

// idleTimeout is how long a stream may stay silent (the hub sends a
// heartbeat every 15s by default) before it counts as lost.
const idleTimeout = 60 * time.Second

// maxEventSize bounds one event on the stream.
const maxEventSize = 1 << 20

// Sentinel errors of the client itself; errors the hub reports wrap the
// events sentinels instead.
var (
	ErrUnauthorized = errors.New("remote: the hub refused the token (401); pass the hub's --token")
	ErrProtocol     = errors.New("remote: the hub sent something that is not a filecast event stream")
	// ErrStreamLost reports an event stream that broke or ended after the
	// hub answered: the caller subscribes again after the last event it
	// got ([events.Follow] does), and the hub replays from there.
	ErrStreamLost = errors.New("remote: the event stream was lost")
)

// Options configures a [Client]; the zero value means the defaults.
type Options struct {
	// Token is sent as "Authorization: Bearer <token>" when not empty.
	Token string
	// HTTPClient makes the requests; nil means a new http.Client. Its
	// Timeout, if any, applies to JSON requests on top of a Changes wait
	// and never to event streams.
	HTTPClient *http.Client
	// SendActor sends the Actor of a WriteRequest in the X-Filecast-Actor
	// header. A hub records it only on a listener that trusts its clients
	// (the data folder's unix socket); others record the token's name.
	SendActor bool
}

// Client is a hub reached over HTTP. It is safe for concurrent use.
type Client struct {
	base      *url.URL
	token     string
	http      *http.Client
	timeout   time.Duration
	sendActor bool
}

var _ events.Source = (*Client)(nil)

// New returns a client of the hub at baseURL ("http://host:port", with an
// optional path prefix). Only http and https URLs are accepted.
func New(baseURL string, opts Options) (*Client, error) {
	u, err := url.Parse(baseURL)
	if err != nil {
		return nil, fmt.Errorf("remote: hub URL %q: %w", baseURL, err)
	}
	if u.Scheme != "http" && u.Scheme != "https" || u.Host == "" {
		return nil, fmt.Errorf("remote: hub URL %q: want http://host:port or https://host", baseURL)
	}
	if u.User != nil || u.RawQuery != "" || u.Fragment != "" {
		return nil, fmt.Errorf("remote: hub URL %q: no user, query or fragment allowed; pass the token separately", baseURL)
	}
	u.Path = strings.TrimSuffix(u.Path, "/")
	u.RawPath = ""
	c := &Client{base: u, token: opts.Token, timeout: DefaultTimeout, sendActor: opts.SendActor}
	hc := http.Client{}
	if opts.HTTPClient != nil {
		hc = *opts.HTTPClient
	}
	if hc.Timeout > 0 {
		c.timeout = hc.Timeout
		hc.Timeout = 0 // it would cut event streams and long polls
	}
	c.http = &hc
	return c, nil
}

// endpoint builds the URL of a route below the base; segments are escaped.
func (c *Client) endpoint(query url.Values, segments ...string) string {
	u := *c.base
	var raw strings.Builder
	raw.WriteString(u.EscapedPath())
	for _, s := range segments {
		raw.WriteByte('/')
		raw.WriteString(url.PathEscape(s))
	}
	u.Path = ""
	u.RawPath = ""
	u.Opaque = ""
	s := u.String() + raw.String()
	if len(query) > 0 {
		s += "?" + query.Encode()
	}
	return s
}

func (c *Client) newRequest(ctx context.Context, target string) (*http.Request, error) {
	return c.newRequestBody(ctx, http.MethodGet, target, nil)
}

func (c *Client) newRequestBody(ctx context.Context, method, target string, body io.Reader) (*http.Request, error) {
	req, err := http.NewRequestWithContext(ctx, method, target, body)
	if err != nil {
		return nil, err
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	return req, nil
}

// get performs a JSON request, bounded by the client timeout plus extra,
// and decodes a 200 answer into v, or the error body into an error.
func (c *Client) get(ctx context.Context, extra time.Duration, target string, v any) error {
	ctx, cancel := context.WithTimeout(ctx, c.timeout+extra)
	defer cancel()
	req, err := c.newRequest(ctx, target)
	if err != nil {
		return err
	}
	req.Header.Set("Accept", "application/json")
	res, err := c.http.Do(req)
	if err != nil {
		return err
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		return responseError(res)
	}
	if err := json.NewDecoder(io.LimitReader(res.Body, 64<<20)).Decode(v); err != nil {
		return fmt.Errorf("%w: decode answer: %v", ErrProtocol, err)
	}
	return nil
}

// Workspaces implements [events.Source].
func (c *Client) Workspaces(ctx context.Context) ([]events.WorkspaceInfo, error) {
	var list wire.WorkspaceList
	if err := c.get(ctx, 0, c.endpoint(nil, "v1", "workspaces"), &list); err != nil {
		return nil, fmt.Errorf("list workspaces: %w", err)
	}
	return list.Workspaces, nil
}

// Changes implements [events.Source]; wait is sent to the hub, which holds
// the request up to that long (at most 30s).
func (c *Client) Changes(ctx context.Context, ws string, after uint64, limit int, wait time.Duration) (events.Page, error) {
	q := url.Values{"cursor": {strconv.FormatUint(after, 10)}}
	if limit > 0 {
		q.Set("limit", strconv.Itoa(limit))
	}
	if wait > 0 {
		q.Set("wait", strconv.FormatInt(wait.Milliseconds(), 10))
	}
	var page events.Page
	if err := c.get(ctx, max(wait, 0), c.endpoint(q, "v1", "workspaces", ws, "changes"), &page); err != nil {
		return events.Page{}, fmt.Errorf("read changes of %s: %w", ws, err)
	}
	return page, nil
}

// Files implements [events.Source].
func (c *Client) Files(ctx context.Context, ws, prefix string) (events.Listing, error) {
	var q url.Values
	if prefix != "" {
		q = url.Values{"prefix": {prefix}}
	}
	var list events.Listing
	if err := c.get(ctx, 0, c.endpoint(q, "v1", "workspaces", ws, "files"), &list); err != nil {
		return events.Listing{}, fmt.Errorf("list files of %s: %w", ws, err)
	}
	return list, nil
}

// ReadFile implements [events.Source]. The path is checked here too, so a
// path that escapes the workspace never leaves the process. A part is
// asked for with a Range header; a hub that ignores it (and so sends the
// whole file) is cut here.
func (c *Client) ReadFile(ctx context.Context, ws, path string, r events.Range) ([]byte, events.FileInfo, error) {
	data, info, err := c.readFile(ctx, ws, path, r)
	if err != nil {
		return nil, events.FileInfo{}, fmt.Errorf("read %s of %s: %w", path, ws, err)
	}
	return data, info, nil
}

func (c *Client) readFile(ctx context.Context, ws, path string, r events.Range) ([]byte, events.FileInfo, error) {
	if err := checkRelPath(path); err != nil {
		return nil, events.FileInfo{}, err
	}
	if r.Offset < 0 || r.Length < 0 {
		return nil, events.FileInfo{}, fmt.Errorf("remote: negative range %d+%d", r.Offset, r.Length)
	}
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	segs := append([]string{"v1", "workspaces", ws, "files"}, strings.Split(path, "/")...)
	req, err := c.newRequest(ctx, c.endpoint(nil, segs...))
	if err != nil {
		return nil, events.FileInfo{}, err
	}
	if !r.Whole() {
		req.Header.Set("Range", fmt.Sprintf("bytes=%d-%d", r.Offset, r.Offset+r.Limit()-1))
	}
	res, err := c.http.Do(req)
	if err != nil {
		return nil, events.FileInfo{}, err
	}
	defer res.Body.Close()
	var size int64 = -1 // of the whole file, from Content-Range
	switch {
	case res.StatusCode == http.StatusOK:
	case !r.Whole() && res.StatusCode == http.StatusPartialContent:
		first, total, ok := contentRange(res.Header.Get("Content-Range"))
		if !ok || first != r.Offset {
			return nil, events.FileInfo{}, fmt.Errorf("%w: bad Content-Range %q for bytes from %d", ErrProtocol, res.Header.Get("Content-Range"), r.Offset)
		}
		size = total
	case !r.Whole() && res.StatusCode == http.StatusRequestedRangeNotSatisfiable:
		// Nothing at or past the end of the file.
		_, total, ok := contentRange(res.Header.Get("Content-Range"))
		if !ok {
			return nil, events.FileInfo{}, fmt.Errorf("%w: bad Content-Range %q", ErrProtocol, res.Header.Get("Content-Range"))
		}
		size = total
	default:
		return nil, events.FileInfo{}, responseError(res)
	}
	data, err := io.ReadAll(io.LimitReader(res.Body, events.MaxReadSize+1))
	if err != nil {
		return nil, events.FileInfo{}, err
	}
	if res.StatusCode == http.StatusRequestedRangeNotSatisfiable {
		data = nil
	}
	if len(data) > events.MaxReadSize {
		return nil, events.FileInfo{}, &events.Error{Kind: events.ErrTooLarge, Value: path, Why: "the hub sent more than the read limit"}
	}
	if size < 0 {
		size = int64(len(data))
		if !r.Whole() {
			// The hub sent the whole file: keep the part asked for.
			data = data[min(r.Offset, size):min(r.Offset+r.Limit(), size)]
		}
	}
	info := events.FileInfo{Path: path, Size: size, SHA256: res.Header.Get(wire.HeaderSHA256)}
	if v := res.Header.Get(wire.HeaderVersion); v != "" {
		if info.Version, err = strconv.ParseUint(v, 10, 64); err != nil {
			return nil, events.FileInfo{}, fmt.Errorf("%w: bad %s header %q", ErrProtocol, wire.HeaderVersion, v)
		}
	}
	if v := res.Header.Get(wire.HeaderMTime); v != "" {
		if info.ModTime, err = time.Parse(time.RFC3339Nano, v); err != nil {
			return nil, events.FileInfo{}, fmt.Errorf("%w: bad %s header %q", ErrProtocol, wire.HeaderMTime, v)
		}
	}
	return data, info, nil
}

// Content implements [events.Source] through GET
// /v1/workspaces/{ws}/content/{sha256}. What comes back is checked
// against sha256: a hub that sends something else is an error.
func (c *Client) Content(ctx context.Context, ws, sha string) ([]byte, error) {
	data, err := c.content(ctx, ws, sha)
	if err != nil {
		return nil, fmt.Errorf("read content %.12s of %s: %w", sha, ws, err)
	}
	return data, nil
}

func (c *Client) content(ctx context.Context, ws, sha string) ([]byte, error) {
	if !events.ValidSHA256(sha) {
		return nil, &events.Error{Kind: events.ErrBadPath, Value: sha, Why: "a content is named by its sha256: 64 lowercase hex digits"}
	}
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	req, err := c.newRequest(ctx, c.endpoint(nil, "v1", "workspaces", ws, "content", sha))
	if err != nil {
		return nil, err
	}
	res, err := c.http.Do(req)
	if err != nil {
		return nil, err
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		return nil, responseError(res)
	}
	data, err := io.ReadAll(io.LimitReader(res.Body, events.MaxReadSize+1))
	if err != nil {
		return nil, err
	}
	if sum := sha256.Sum256(data); hex.EncodeToString(sum[:]) != sha {
		return nil, fmt.Errorf("%w: the content sent is not the one asked for", ErrProtocol)
	}
	return data, nil
}

// contentRange reads "bytes FIRST-LAST/SIZE" or "bytes */SIZE" (first -1).
func contentRange(v string) (first, size int64, ok bool) {
	spec, found := strings.CutPrefix(v, "bytes ")
	if !found {
		return 0, 0, false
	}
	rng, total, found := strings.Cut(spec, "/")
	if !found {
		return 0, 0, false
	}
	size, err := strconv.ParseInt(total, 10, 64)
	if err != nil || size < 0 {
		return 0, 0, false
	}
	if rng == "*" {
		return -1, size, true
	}
	a, _, found := strings.Cut(rng, "-")
	if !found {
		return 0, 0, false
	}
	if first, err = strconv.ParseInt(a, 10, 64); err != nil {
		return 0, 0, false
	}
	return first, size, true
}

// checkRelPath accepts only normalised relative paths, as [events.Source]
// requires.
func checkRelPath(p string) error {
	bad := func(why string) error { return &events.Error{Kind: events.ErrBadPath, Value: p, Why: why} }
	if p == "" || strings.HasPrefix(p, "/") || strings.HasSuffix(p, "/") || strings.ContainsRune(p, '\\') {
		return bad("want a clean path relative to the workspace root")
	}
	for seg := range strings.SplitSeq(p, "/") {
		if seg == "" || seg == "." || seg == ".." {
			return bad("want a clean path relative to the workspace root")
		}
	}
	return nil
}

// Error is an error answer of the hub. It wraps the events sentinel its
// code names, if any, so errors.Is works across the network.
type Error struct {
	Status  int    // HTTP status
	Code    string // wire code, e.g. "cursor_expired"
	Message string // the hub's explanation
	kind    error
}

func (e *Error) Error() string {
	if e.Message != "" {
		return e.Message
	}
	return fmt.Sprintf("remote: hub answered %d %s", e.Status, http.StatusText(e.Status))
}

// Unwrap returns the sentinel the code stands for, or for a lock error the
// *events.LockError (which wraps its sentinel).
func (e *Error) Unwrap() error { return e.kind }

// responseError turns a non-200 answer into an *Error. A lock error keeps
// its details: errors.As finds an *events.LockError in it.
func responseError(res *http.Response) error {
	e := &Error{Status: res.StatusCode}
	var body wire.ErrorBody
	b, _ := io.ReadAll(io.LimitReader(res.Body, 64<<10))
	if json.Unmarshal(b, &body) == nil {
		e.Code, e.Message = body.Error.Code, body.Error.Message
	}
	e.kind = wire.CodeError(e.Code)
	if le := body.Error.LockError(); le != nil {
		e.kind = le
	}
	if res.StatusCode == http.StatusUnauthorized {
		e.kind = ErrUnauthorized
		e.Message = ErrUnauthorized.Error()
	}
	return e
}
