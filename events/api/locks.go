package api

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/filecast/filecast/events"
	"github.com/filecast/filecast/events/lock"
	"github.com/filecast/filecast/events/wire"
)

// Headers (or the query parameters lock_token and fencing_token) of a
// write that relies on a lock.
const (
	HeaderLockToken    = "X-Filecast-Lock-Token"
	HeaderFencingToken = "X-Filecast-Fencing-Token"
	// HeaderActor names the actor of a write, "mcp:<client>#<session>";
	// only a router with Options.TrustActor records it.
	HeaderActor = "X-Filecast-Actor"
)

// maxActorLen bounds the actor a write may name.
const maxActorLen = 4 + lock.MaxHolderLen

// Limits of a lock request, the same as the lock package's.
const (
	MaxTTLSeconds = int(lock.MaxTTL / time.Second)
	MaxWaitMS     = int(lock.MaxWait / time.Millisecond)
)

// routeWrite is the pattern whose body may be as large as a file.
const routeWrite = "PUT /v1/workspaces/{ws}/files/{path...}"

// WriteResult is the body of a successful PUT or DELETE of a file. Event
// is null and Seq 0 when the content was already the file's.
type WriteResult struct {
	Event     *events.Event `json:"event"`
	Size      int64         `json:"size"`
	SHA256    string        `json:"sha256,omitempty"`
	Seq       uint64        `json:"seq"`
	Unchanged bool          `json:"unchanged,omitempty"`
}

// LockBody is the body of POST /v1/workspaces/{ws}/locks (and, with only
// ttl_seconds and optionally path, of PATCH …/locks/{token}).
type LockBody struct {
	Path       string `json:"path"`
	TTLSeconds int    `json:"ttl_seconds,omitempty"`
	Mode       string `json:"mode,omitempty"`
	WaitMS     int    `json:"wait_ms,omitempty"`
	Holder     string `json:"holder,omitempty"`
	LockToken  string `json:"lock_token,omitempty"`
}

// LockList is the body of GET /v1/workspaces/{ws}/locks.
type LockList struct {
	Workspace string         `json:"workspace"`
	Locks     []events.Lease `json:"locks"`
}

// Released is the body of DELETE /v1/workspaces/{ws}/locks/{token}.
type Released struct {
	Released bool `json:"released"`
}

// lockRoutes serves writes and locks through an events.Locker.
type lockRoutes struct {
	locker     events.Locker
	log        *slog.Logger
	trustActor bool // record the actor HeaderActor names
}

func (l *lockRoutes) register(mux *http.ServeMux) {
	mux.HandleFunc(routeWrite, l.put)
	mux.HandleFunc("DELETE /v1/workspaces/{ws}/files/{path...}", l.delete)
	mux.HandleFunc("POST /v1/workspaces/{ws}/locks", l.acquire)
	mux.HandleFunc("GET /v1/workspaces/{ws}/locks", l.list)
	mux.HandleFunc("PATCH /v1/workspaces/{ws}/locks/{token}", l.refresh)
	mux.HandleFunc("DELETE /v1/workspaces/{ws}/locks/{token}", l.release)
}

// actor is the actor HeaderActor names when the routes trust it and it is
// a valid MCP actor, else "api:<token name>", or "api" when the hub has no
// tokens.
func (l *lockRoutes) actor(r *http.Request) string {
	if a := r.Header.Get(HeaderActor); l.trustActor && validActor(a) {
		return a
	}
	if name := TokenName(r.Context()); name != "" {
		return "api:" + name
	}
	return "api"
}

// validActor accepts "mcp:" and a printable UTF-8 name.
func validActor(a string) bool {
	name, ok := strings.CutPrefix(a, "mcp:")
	if !ok || name == "" || len(a) > maxActorLen || !utf8.ValidString(name) {
		return false
	}
	for _, r := range name {
		if r < 0x20 || r == 0x7f {
			return false
		}
	}
	return true
}

// holder is who takes a lock when the body names nobody.
func holder(r *http.Request) string {
	if name := TokenName(r.Context()); name != "" {
		return name
	}
	return "api"
}

func (l *lockRoutes) fail(w http.ResponseWriter, r *http.Request, err error) {
	if r.Context().Err() != nil {
		return
	}
	if errors.Is(err, lock.ErrBadRequest) {
		wire.WriteErrorCode(w, http.StatusBadRequest, wire.CodeBadRequest, err.Error())
		return
	}
	if status, _ := wire.ErrorCode(err); status >= 500 && !wire.Degraded(err) {
		l.log.Error("request failed", "method", r.Method, "path", r.URL.Path, "err", err)
	}
	wire.WriteError(w, err)
}

func badRequest(format string, args ...any) error {
	return fmt.Errorf("%w: %s", wire.ErrBadRequest, fmt.Sprintf(format, args...))
}

// tokens reads the lock and fencing tokens of a write.
func tokens(r *http.Request) (lockToken string, fencing uint64, err error) {
	q := r.URL.Query()
	lockToken = r.Header.Get(HeaderLockToken)
	if lockToken == "" {
		lockToken = q.Get("lock_token")
	}
	f := r.Header.Get(HeaderFencingToken)
	if f == "" {
		f = q.Get("fencing_token")
	}
	if f != "" {
		if fencing, err = strconv.ParseUint(f, 10, 64); err != nil {
			return "", 0, badRequest("fencing token %q is not a number", f)
		}
	}
	return lockToken, fencing, nil
}

// put answers PUT /v1/workspaces/{ws}/files/{path...}: the body is the
// file's new content (at most events.MaxReadSize bytes).
func (l *lockRoutes) put(w http.ResponseWriter, r *http.Request) {
	l.write(w, r, false)
}

// delete answers DELETE /v1/workspaces/{ws}/files/{path...}.
func (l *lockRoutes) delete(w http.ResponseWriter, r *http.Request) {
	l.write(w, r, true)
}

func (l *lockRoutes) write(w http.ResponseWriter, r *http.Request, del bool) {
	lockToken, fencing, err := tokens(r)
	if err != nil {
		l.fail(w, r, err)
		return
	}
	var data []byte
	if !del {
		if data, err = io.ReadAll(r.Body); err != nil {
			l.fail(w, r, err)
			return
		}
	}
	ev, err := l.locker.WriteFile(r.Context(), events.WriteRequest{
		Workspace:    r.PathValue("ws"),
		Path:         r.PathValue("path"),
		Content:      data,
		Delete:       del,
		LockToken:    lockToken,
		FencingToken: fencing,
		Actor:        l.actor(r),
	})
	if err != nil {
		l.fail(w, r, err)
		return
	}
	res := WriteResult{Seq: ev.Seq}
	if ev.Seq != 0 {
		res.Event = &ev
	} else {
		res.Unchanged = true
	}
	if !del {
		sum := sha256.Sum256(data)
		res.Size, res.SHA256 = int64(len(data)), hex.EncodeToString(sum[:])
	}
	wire.WriteJSON(w, http.StatusOK, res)
}

// decodeBody reads a JSON request body into v (see wire.DecodeJSON).
func decodeBody(r *http.Request, v any) error {
	err := wire.DecodeJSON(r.Body, v, wire.DecodeOptions{})
	if errors.Is(err, io.EOF) {
		return badRequest("the body must be a JSON object")
	}
	return err
}

func (b *LockBody) request(ws string) (events.LockRequest, error) {
	switch {
	case b.TTLSeconds < 0 || b.TTLSeconds > MaxTTLSeconds:
		return events.LockRequest{}, badRequest("ttl_seconds %d is out of range: use 1 to %d (0 or absent means 60)", b.TTLSeconds, MaxTTLSeconds)
	case b.WaitMS < 0 || b.WaitMS > MaxWaitMS:
		return events.LockRequest{}, badRequest("wait_ms %d is out of range: use 0 to %d", b.WaitMS, MaxWaitMS)
	case b.Mode != "" && b.Mode != events.LockExclusive && b.Mode != events.LockShared:
		return events.LockRequest{}, badRequest("mode %q: use %q or %q", b.Mode, events.LockExclusive, events.LockShared)
	}
	return events.LockRequest{
		Workspace: ws,
		Path:      b.Path,
		Holder:    b.Holder,
		Mode:      b.Mode,
		TTL:       time.Duration(b.TTLSeconds) * time.Second,
		Wait:      time.Duration(b.WaitMS) * time.Millisecond,
		Token:     b.LockToken,
	}, nil
}

// acquire answers POST /v1/workspaces/{ws}/locks with 201 and the lease
// (200 when the body's lock_token refreshes one).
func (l *lockRoutes) acquire(w http.ResponseWriter, r *http.Request) {
	var body LockBody
	if err := decodeBody(r, &body); err != nil {
		l.fail(w, r, err)
		return
	}
	req, err := body.request(r.PathValue("ws"))
	if err != nil {
		l.fail(w, r, err)
		return
	}
	if req.Token == "" && req.Path == "" {
		l.fail(w, r, badRequest("path is required"))
		return
	}
	if req.Holder == "" {
		req.Holder = holder(r)
	}
	lease, err := l.locker.Lock(r.Context(), req)
	if err != nil {
		l.fail(w, r, err)
		return
	}
	status := http.StatusCreated
	if req.Token != "" {
		status = http.StatusOK
	}
	wire.WriteJSON(w, status, lease)
}

// refresh answers PATCH /v1/workspaces/{ws}/locks/{token} with the lease
// extended by ttl_seconds from now.
func (l *lockRoutes) refresh(w http.ResponseWriter, r *http.Request) {
	var body LockBody
	if r.ContentLength != 0 {
		if err := decodeBody(r, &body); err != nil {
			l.fail(w, r, err)
			return
		}
	}
	body.LockToken, body.WaitMS, body.Holder = r.PathValue("token"), 0, ""
	req, err := body.request(r.PathValue("ws"))
	if err != nil {
		l.fail(w, r, err)
		return
	}
	lease, err := l.locker.Lock(r.Context(), req)
	if err != nil {
		l.fail(w, r, err)
		return
	}
	wire.WriteJSON(w, http.StatusOK, lease)
}

// list answers GET /v1/workspaces/{ws}/locks.
func (l *lockRoutes) list(w http.ResponseWriter, r *http.Request) {
	ws := r.PathValue("ws")
	ls, err := l.locker.Locks(r.Context(), ws)
	if err != nil {
		l.fail(w, r, err)
		return
	}
	if ls == nil {
		ls = []events.Lease{}
	}
	wire.WriteJSON(w, http.StatusOK, LockList{Workspace: ws, Locks: ls})
}

// release answers DELETE /v1/workspaces/{ws}/locks/{token}[?path=].
func (l *lockRoutes) release(w http.ResponseWriter, r *http.Request) {
	if err := l.locker.Unlock(r.Context(), r.PathValue("ws"), r.URL.Query().Get("path"), r.PathValue("token")); err != nil {
		l.fail(w, r, err)
		return
	}
	wire.WriteJSON(w, http.StatusOK, Released{Released: true})
}
