package webhook

import (
	"errors"
	"io"
	"net/http"
	"strconv"
	"time"

	"github.com/filecast/filecast/events/wire"
)

// maxRequestBody bounds a request body of the webhook routes.
const maxRequestBody = 64 << 10

// Wire codes of the package's errors, beside those of package wire.
const (
	CodeBadURL        = "bad_url"
	CodeURLNotAllowed = "url_not_allowed"
	CodeNotFound      = "not_found"
	CodeNotActive     = "not_active"
	CodeBadRequest    = wire.CodeBadRequest
)

// Routes registers the webhook API on mux:
//
//	POST   /v1/webhooks                   register → 201 Webhook with its secret
//	GET    /v1/webhooks                   {"webhooks": [...]} (?workspace= filters)
//	GET    /v1/webhooks/{id}              Webhook
//	DELETE /v1/webhooks/{id}              {"id": …, "deleted": true}
//	GET    /v1/webhooks/{id}/deliveries   {"deliveries": [...]}, newest first (?limit=, default 100)
//	POST   /v1/webhooks/{id}/replay       ReplayRequest → 202 ReplayResult
//	POST   /v1/webhooks/{id}/rotate       {"overlap_seconds": n}? → Webhook with the new secret
//
// Bodies are JSON; errors are JSON error bodies (wire.ErrorBody). Authentication is
// the caller's (the hub's router wraps mux).
func (d *Dispatcher) Routes(mux *http.ServeMux) {
	mux.HandleFunc("POST /v1/webhooks", d.handleRegister)
	mux.HandleFunc("GET /v1/webhooks", d.handleList)
	mux.HandleFunc("GET /v1/webhooks/{id}", d.handleGet)
	mux.HandleFunc("DELETE /v1/webhooks/{id}", d.handleDelete)
	mux.HandleFunc("GET /v1/webhooks/{id}/deliveries", d.handleDeliveries)
	mux.HandleFunc("POST /v1/webhooks/{id}/replay", d.handleReplay)
	mux.HandleFunc("POST /v1/webhooks/{id}/rotate", d.handleRotate)
}

func (d *Dispatcher) handleRegister(w http.ResponseWriter, r *http.Request) {
	var reg Registration
	if err := decode(w, r, &reg, false); err != nil {
		d.writeError(w, r, err)
		return
	}
	hook, err := d.Register(r.Context(), reg)
	if err != nil {
		d.writeError(w, r, err)
		return
	}
	wire.WriteJSON(w, http.StatusCreated, hook)
}

func (d *Dispatcher) handleList(w http.ResponseWriter, r *http.Request) {
	hooks, err := d.List(r.Context())
	if err != nil {
		d.writeError(w, r, err)
		return
	}
	if ws := r.URL.Query().Get("workspace"); ws != "" {
		kept := hooks[:0]
		for _, h := range hooks {
			if h.Workspace == ws {
				kept = append(kept, h)
			}
		}
		hooks = kept
	}
	wire.WriteJSON(w, http.StatusOK, struct {
		Webhooks []Webhook `json:"webhooks"`
	}{hooks})
}

func (d *Dispatcher) handleGet(w http.ResponseWriter, r *http.Request) {
	hook, err := d.Get(r.Context(), r.PathValue("id"))
	if err != nil {
		d.writeError(w, r, err)
		return
	}
	wire.WriteJSON(w, http.StatusOK, hook)
}

func (d *Dispatcher) handleDelete(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if err := d.Delete(r.Context(), id); err != nil {
		d.writeError(w, r, err)
		return
	}
	wire.WriteJSON(w, http.StatusOK, struct {
		ID      string `json:"id"`
		Deleted bool   `json:"deleted"`
	}{id, true})
}

func (d *Dispatcher) handleDeliveries(w http.ResponseWriter, r *http.Request) {
	limit := 0
	if s := r.URL.Query().Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 {
			d.writeError(w, r, badRequest("limit %q: give a positive number", truncate(s, 20)))
			return
		}
		limit = n
	}
	ds, err := d.Deliveries(r.Context(), r.PathValue("id"), limit)
	if err != nil {
		d.writeError(w, r, err)
		return
	}
	wire.WriteJSON(w, http.StatusOK, struct {
		Deliveries []Delivery `json:"deliveries"`
	}{ds})
}

func (d *Dispatcher) handleReplay(w http.ResponseWriter, r *http.Request) {
	var req ReplayRequest
	if err := decode(w, r, &req, false); err != nil {
		d.writeError(w, r, err)
		return
	}
	res, err := d.Replay(r.Context(), r.PathValue("id"), req)
	if err != nil {
		d.writeError(w, r, err)
		return
	}
	wire.WriteJSON(w, http.StatusAccepted, res)
}

// rotateRequest is the optional body of POST /v1/webhooks/{id}/rotate.
type rotateRequest struct {
	// OverlapSeconds is how long the current secret keeps signing beside
	// the new one; 0 or absent means DefaultOverlap.
	OverlapSeconds int64 `json:"overlap_seconds"`
}

func (d *Dispatcher) handleRotate(w http.ResponseWriter, r *http.Request) {
	var req rotateRequest
	if err := decode(w, r, &req, true); err != nil {
		d.writeError(w, r, err)
		return
	}
	if req.OverlapSeconds < 0 || req.OverlapSeconds > int64(MaxOverlap/time.Second) {
		d.writeError(w, r, badRequest("overlap_seconds must be between 0 and %d", int64(MaxOverlap/time.Second)))
		return
	}
	hook, err := d.Rotate(r.Context(), r.PathValue("id"), time.Duration(req.OverlapSeconds)*time.Second)
	if err != nil {
		d.writeError(w, r, err)
		return
	}
	wire.WriteJSON(w, http.StatusOK, hook)
}

// decode reads a JSON body into v, refusing unknown fields, trailing data,
// invalid UTF-8 and bodies over maxRequestBody (see wire.DecodeJSON). An
// empty body is allowed when optional.
func decode(w http.ResponseWriter, r *http.Request, v any, optional bool) error {
	err := wire.DecodeJSON(http.MaxBytesReader(w, r.Body, maxRequestBody), v, wire.DecodeOptions{Strict: true})
	switch {
	case errors.Is(err, io.EOF) && optional:
		return nil
	case errors.Is(err, io.EOF):
		return badRequest("the body must be a JSON object")
	}
	return err // wire.ErrBadRequest (400 bad_request) or the size limit
}

var errorCodes = []struct {
	err    error
	status int
	code   string
}{
	{ErrForbiddenAddress, http.StatusBadRequest, CodeURLNotAllowed},
	{ErrBadURL, http.StatusBadRequest, CodeBadURL},
	{ErrBadRequest, http.StatusBadRequest, CodeBadRequest},
	{ErrNotFound, http.StatusNotFound, CodeNotFound},
	{ErrNotActive, http.StatusConflict, CodeNotActive},
}

// writeError answers with err as a JSON error body: the package's own
// sentinels first, then wire's mapping of the events sentinels.
func (d *Dispatcher) writeError(w http.ResponseWriter, r *http.Request, err error) {
	for _, c := range errorCodes {
		if errors.Is(err, c.err) {
			wire.WriteErrorCode(w, c.status, c.code, err.Error())
			return
		}
	}
	if status, _ := wire.ErrorCode(err); status == http.StatusInternalServerError {
		d.log.Error("webhook request failed", "method", r.Method, "path", r.URL.Path, "err", err)
	}
	wire.WriteError(w, err)
}
