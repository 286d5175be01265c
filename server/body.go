package server

import (
	"fmt"
	"net/http"
)

// MaxRequestBody bounds the body of a request to the HTTP endpoint: room
// for a write_file of events.MaxReadSize bytes as base64 in JSON. A larger
// declared body answers 413; a longer streamed one is cut and answered
// with a JSON-RPC parse error.
const MaxRequestBody = 32 << 20

// limitBody bounds the body of every request to MaxRequestBody.
func limitBody(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.ContentLength > MaxRequestBody {
			http.Error(w, fmt.Sprintf("Request Entity Too Large: the limit is %d bytes", MaxRequestBody), http.StatusRequestEntityTooLarge)
			return
		}
		if r.Body != nil && r.Body != http.NoBody {
			r.Body = http.MaxBytesReader(w, r.Body, MaxRequestBody)
		}
		next.ServeHTTP(w, r)
	})
}
