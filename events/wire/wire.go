// Package wire holds what the hub's HTTP API and its clients agree on
// besides the events themselves: how a JSON answer is written, how a JSON
// request body is read, the error body every route answers with, and the
// mapping between the events sentinels, HTTP statuses and the error codes
// on the wire. The server side (feed, api, webhook, relay, dashboard) and
// the client side (remote, relay) import it, so that neither has to import
// the other to speak the same language.
//
//	// a handler
//	var req registerRequest
//	if err := wire.DecodeJSON(r.Body, &req, wire.DecodeOptions{Strict: true}); err != nil {
//		wire.WriteError(w, err) // 400 bad_request, or 413 too_large
//		return
//	}
//	wire.WriteJSON(w, http.StatusCreated, answer)
//
//	// a client
//	var body wire.ErrorBody
//	_ = json.NewDecoder(res.Body).Decode(&body)
//	err := wire.CodeError(body.Error.Code) // events.ErrLocked for "locked", ...
//	if le := body.Error.LockError(); le != nil { ... } // who holds the lock, until when
package wire

import (
	"encoding/json"
	"net/http"

	"github.com/filecast/filecast/events"
)

// Headers of a file read (GET /v1/workspaces/{ws}/files/{path...}).
const (
	HeaderSHA256  = "X-Filecast-Sha256"
	HeaderVersion = "X-Filecast-Version"
	HeaderMTime   = "X-Filecast-Mtime" // RFC 3339 with nanoseconds
)

// WorkspaceList is the body of GET /v1/workspaces.
type WorkspaceList struct {
	Workspaces []events.WorkspaceInfo `json:"workspaces"`
}

// WriteJSON writes v as a JSON answer with status, the way every route of
// the hub answers (no caching, no sniffing); a value that cannot be encoded
// becomes a 500 "internal" error.
func WriteJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		status = http.StatusInternalServerError
		b = []byte(`{"error":{"code":"internal","message":"internal error"}}`)
	}
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	_, _ = w.Write(append(b, '\n'))
}
