package api_test

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/filecast/filecast/events/api"
	"github.com/filecast/filecast/events/feed/feedtest"
)

// BenchmarkNew_Authenticated measures the router's per-request work:
// token check, body limit and route lookup, on a cheap route.
func BenchmarkNew_Authenticated(b *testing.B) {
	src := feedtest.New()
	src.AddWorkspace("docs", b.TempDir())
	tokens := make([]api.Token, 8)
	for i := range tokens {
		tokens[i] = api.Token{Name: "t", Secret: "secret-" + string(rune('a'+i))}
	}
	h := api.New(src, nil, api.Options{Tokens: tokens})
	req := httptest.NewRequest(http.MethodGet, "/v1/workspaces", nil)
	req.Header.Set("Authorization", "Bearer secret-h")
	b.ReportAllocs()
	for b.Loop() {
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		if w.Code != http.StatusOK {
			b.Fatal(w.Code)
		}
	}
}
