package api_test

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/filecast/filecast/events/api"
	"github.com/filecast/filecast/events/feed/feedtest"
)

// BenchmarkNew_Authenticated measures the router's per-request work:
// limits, token check and rate limit, scope and route lookup, on cheap
// routes.
func BenchmarkNew_Authenticated(b *testing.B) {
	src := feedtest.New()
	src.AddWorkspace("docs", b.TempDir())
	tokens := make([]api.Token, 8)
	for i := range tokens {
		tokens[i] = api.Token{Name: "t", Secret: "secret-" + string(rune('a'+i)), Rate: 1e9}
	}
	tokens[7].Workspaces = []string{"docs"}
	tokens[7].ReadOnly = true
	h := api.New(src, nil, api.Options{Tokens: tokens})
	for _, bc := range []struct{ name, secret, path string }{
		{"full", "secret-a", "/v1/workspaces"},
		{"scoped", "secret-h", "/v1/workspaces/docs/files"},
	} {
		b.Run(bc.name, func(b *testing.B) {
			req := httptest.NewRequest(http.MethodGet, bc.path, nil)
			req.Header.Set("Authorization", "Bearer "+bc.secret)
			b.ReportAllocs()
			for b.Loop() {
				w := httptest.NewRecorder()
				h.ServeHTTP(w, req)
				if w.Code != http.StatusOK {
					b.Fatal(w.Code, w.Body)
				}
			}
		})
	}
}
