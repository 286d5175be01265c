package server_test

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/filecast/filecast/server"
)

// TestServer_HTTPBodyLimit: a body over MaxRequestBody is refused before
// mcp-go reads it (declared) or cut off while it reads (streamed).
func TestServer_HTTPBodyLimit(t *testing.T) {
	h := start(t, server.Options{}, "docs").srv.HTTPHandler()
	post := func(body string, declare bool) *httptest.ResponseRecorder {
		req := httptest.NewRequest(http.MethodPost, "/mcp", strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Accept", "application/json, text/event-stream")
		if !declare {
			req.ContentLength = -1
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		return rec
	}
	big := strings.Repeat(" ", server.MaxRequestBody) + `{"jsonrpc":"2.0","id":1,"method":"ping"}`
	if rec := post(big, true); rec.Code != http.StatusRequestEntityTooLarge || !strings.Contains(rec.Body.String(), "limit") {
		t.Errorf("declared: %d %.200s", rec.Code, rec.Body)
	}
	if rec := post(big, false); !strings.Contains(rec.Body.String(), "too large") {
		t.Errorf("streamed: %d %.200s", rec.Code, rec.Body)
	}
}
