package api

import (
	"fmt"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"

	"github.com/filecast/filecast/events/wire"
)

// Stream caps: an event stream holds a connection, and so a file
// descriptor, for as long as it is open; the caps keep enough of them for
// everything else (the watchers above all).
const (
	// DefaultMaxStreams is the overall cap of a hub's open event streams
	// when its descriptor limit leaves room for it (see FitStreams).
	DefaultMaxStreams = 4096
	// DefaultMaxStreamsPerClient is the cap per token, or per client
	// address for requests no token authenticates.
	DefaultMaxStreamsPerClient = 256
	// DescriptorReserve is what FitStreams keeps aside from a descriptor
	// limit for everything but connections: the event log's files, the
	// watchers' reads and listings, webhooks.
	DescriptorReserve = 256
	// streamRetry is the Retry-After, in seconds, of a refused stream.
	streamRetry = 5
)

// CodeTooManyStreams is the error code of an event stream refused by a
// cap: 503 when the hub's cap is reached, 429 when the client's is.
const CodeTooManyStreams = "too_many_streams"

// FitStreams returns the overall stream cap that a process whose limit is
// descriptors can afford: half of what is left after DescriptorReserve
// (the other half for API requests and other connections), at least 16,
// and want when that is smaller. A limit of 0 means unknown: want.
func FitStreams(want int, descriptors uint64) int {
	if descriptors == 0 {
		return want
	}
	fit := 16
	if descriptors > DescriptorReserve+32 {
		fit = int(min((descriptors-DescriptorReserve)/2, 1<<30))
	}
	return min(want, fit)
}

// StreamLimits caps the event streams open at once through the routers
// that share it (Options.Streams): overall, and per client — the token
// that authenticated the request, else the client's IP address (an IPv6
// client by its /64). A stream over it is refused before it starts: 503
// with Retry-After beyond the overall cap, 429 with Retry-After beyond the
// client's, both with code too_many_streams. Requests without an IP
// address (a unix socket: filecast mcp processes sharing the hub) are not
// capped. It is safe for concurrent use.
type StreamLimits struct {
	total, perClient int

	mu     sync.Mutex
	open   int
	client map[string]int

	refusedTotal, refusedClient atomic.Uint64
}

// NewStreamLimits returns caps of total streams overall and perClient per
// client; 0 or less means no cap.
func NewStreamLimits(total, perClient int) *StreamLimits {
	return &StreamLimits{total: total, perClient: perClient, client: map[string]int{}}
}

// StreamStats is what StreamLimits has seen.
type StreamStats struct {
	Open          int    // capped streams open now
	RefusedTotal  uint64 // streams refused because the overall cap was reached
	RefusedClient uint64 // streams refused because their client's cap was reached
}

// Stats returns the current counts.
func (s *StreamLimits) Stats() StreamStats {
	s.mu.Lock()
	open := s.open
	s.mu.Unlock()
	return StreamStats{Open: open, RefusedTotal: s.refusedTotal.Load(), RefusedClient: s.refusedClient.Load()}
}

// Caps returns the overall and per-client caps (0: none).
func (s *StreamLimits) Caps() (total, perClient int) { return max(s.total, 0), max(s.perClient, 0) }

// acquire takes a slot for a stream of r, authenticated by tok (nil for
// none). When it returns false it has answered r; otherwise release must
// be called when the stream ends.
func (s *StreamLimits) acquire(w http.ResponseWriter, r *http.Request, tok *Token) (release func(), ok bool) {
	var key, who string
	if tok != nil {
		key, who = "token\x00"+tok.Name, fmt.Sprintf("token %q", tok.Name)
	} else if addr, ok := clientAddr(r.RemoteAddr); ok {
		key, who = "addr\x00"+addr.String(), addr.String()
	} else {
		return func() {}, true
	}
	s.mu.Lock()
	switch {
	case s.total > 0 && s.open >= s.total:
		s.mu.Unlock()
		s.refusedTotal.Add(1)
		w.Header().Set("Retry-After", strconv.Itoa(streamRetry))
		wire.WriteErrorCode(w, http.StatusServiceUnavailable, CodeTooManyStreams,
			fmt.Sprintf("the hub has %d event streams open, its limit (--max-streams); retry after %d s, or use GET …/changes?wait= to long-poll", s.total, streamRetry))
		return nil, false
	case s.perClient > 0 && s.client[key] >= s.perClient:
		s.mu.Unlock()
		s.refusedClient.Add(1)
		w.Header().Set("Retry-After", strconv.Itoa(streamRetry))
		wire.WriteErrorCode(w, http.StatusTooManyRequests, CodeTooManyStreams,
			fmt.Sprintf("%s has %d event streams open, the limit per client (--max-streams-per-client); close one, or retry after %d s", who, s.perClient, streamRetry))
		return nil, false
	}
	s.open++
	s.client[key]++
	s.mu.Unlock()
	var once sync.Once
	return func() {
		once.Do(func() {
			s.mu.Lock()
			defer s.mu.Unlock()
			s.open--
			if s.client[key]--; s.client[key] <= 0 {
				delete(s.client, key)
			}
		})
	}, true
}
