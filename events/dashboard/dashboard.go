// Package dashboard serves the hub's live dashboard: one HTML page, its
// script, style sheet and icon, embedded in the binary, and a small JSON
// route the page polls for the hub's counters. The page needs no build
// step and loads nothing from other sites, so it works offline.
//
// The page itself talks to the hub's own routes: it lists workspaces with
// GET v1/workspaces, follows each selected workspace's SSE stream
// (v1/workspaces/{ws}/events, with its type and path filters), polls
// v1/workspaces/{ws}/locks and v1/webhooks, and shows whether the hub is
// live, reconnecting or unreachable, and what keeps it from serving
// everything (Stats.Problems: a missing workspace folder, a full log). Every URL it uses is relative to the
// page, so the hub may sit under a path prefix behind a proxy.
//
//	h := dashboard.Handler(dashboard.Options{Stats: func() dashboard.Stats {
//		return dashboard.Stats{SSESubscribers: fd.Subscribers(), Version: version}
//	}})
//	mux.Handle("GET /{$}", h)
//	mux.Handle("GET /dashboard/", h)
//
// When the hub has tokens, open the page as http://host:port/?token=SECRET:
// the page sends it as a bearer token on its JSON requests and as the
// access_token parameter on its event streams. The page, script, style
// sheet and icon contain nothing secret; /dashboard/stats does.
package dashboard

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"path"
	"strings"
	"time"

	"github.com/filecast/filecast/events"
	"github.com/filecast/filecast/events/wire"
)

//go:embed assets
var assetFS embed.FS

// ContentSecurityPolicy is sent with every answer of the handler: the page
// may load scripts, styles, images and connections from the hub only.
const ContentSecurityPolicy = "default-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'; object-src 'none'"

// Routes served by [Handler], relative to the hub's root.
const (
	PathIndex = "/"
	PathStats = "/dashboard/stats"
)

// Stats are the hub's counters shown on the page.
type Stats struct {
	// MCPSessions is the number of MCP sessions connected to the hub.
	MCPSessions int `json:"mcp_sessions"`
	// SSESubscribers is the number of open event streams, the page's own
	// included.
	SSESubscribers int `json:"sse_subscribers"`
	// Workspaces are the names of the workspaces served; the page reloads
	// its workspace list when they change.
	Workspaces []string `json:"workspaces"`
	// Version is the hub's version.
	Version string `json:"version"`
	// Problems is what keeps the hub from serving everything (a missing
	// workspace folder, a full event log); the page shows them in a
	// banner. Empty when all is well.
	Problems []events.Problem `json:"problems"`
	// Watchers says how this hub learns of changes in each workspace it
	// watches; the page lists them.
	Watchers []Watcher `json:"watchers"`
}

// Watcher is how a workspace is watched.
type Watcher struct {
	Workspace string `json:"workspace"`
	// Kind is "notify" (kernel notifications), "poll" (the tree walked
	// every PollIntervalMS), or "notify+poll" (folders on network or FUSE
	// file systems polled, the rest notified).
	Kind string `json:"watcher"`
	// PollIntervalMS is how often what is polled is walked, at most; 0
	// when nothing is.
	PollIntervalMS int64 `json:"poll_interval_ms,omitempty"`
	// Reason says why it polls, when it does.
	Reason string `json:"reason,omitempty"`
}

// statsBody is the JSON of GET /dashboard/stats: the stats and the hub's
// clock, which the page uses to count lock time down without skew.
type statsBody struct {
	Stats
	ServerTime time.Time `json:"server_time"`
}

// Options configures [Handler]; the zero value serves the page with zero
// counters.
type Options struct {
	// Stats returns the current counters; it is called once per request
	// of /dashboard/stats (every 2 s per open page) and must be safe for
	// concurrent use. Nil means zero counters.
	Stats func() Stats
}

// asset is one embedded file ready to serve.
type asset struct {
	body        []byte
	contentType string
	etag        string
	version     string // short content hash, the ?v= of immutable URLs
}

// handler serves the page and its assets; it is immutable after Handler.
type handler struct {
	index  asset
	assets map[string]asset // by URL path
	stats  func() Stats
}

// assetTypes lists the embedded files served under /dashboard/ with their
// content types.
var assetTypes = map[string]string{
	"app.js":   "text/javascript; charset=utf-8",
	"app.css":  "text/css; charset=utf-8",
	"icon.svg": "image/svg+xml",
}

// Handler returns the dashboard's handler. It answers GET and HEAD of
// PathIndex (the page), /dashboard/app.js, /dashboard/app.css,
// /dashboard/icon.svg and PathStats, and a JSON 404 for any other path it
// is given. It is safe for concurrent use and never blocks beyond
// Options.Stats.
func Handler(opts Options) http.Handler {
	h := &handler{assets: map[string]asset{}, stats: opts.Stats}
	for name, ctype := range assetTypes {
		h.assets["/dashboard/"+name] = newAsset(mustRead(name), ctype)
	}
	// The page names its script and style sheet with their content hash,
	// so that browsers may cache them for good and a new binary's page
	// never runs with an old script.
	page := mustRead("index.html")
	for name := range assetTypes {
		ref := []byte(`"dashboard/` + name + `"`)
		versioned := []byte(`"dashboard/` + name + `?v=` + h.assets["/dashboard/"+name].version + `"`)
		page = bytes.ReplaceAll(page, ref, versioned)
	}
	h.index = newAsset(page, "text/html; charset=utf-8")
	return h
}

func mustRead(name string) []byte {
	b, err := assetFS.ReadFile(path.Join("assets", name))
	if err != nil {
		panic("dashboard: embedded asset missing: " + name)
	}
	return b
}

func newAsset(body []byte, contentType string) asset {
	sum := sha256.Sum256(body)
	v := hex.EncodeToString(sum[:8])
	return asset{body: body, contentType: contentType, etag: `"` + v + `"`, version: v}
}

func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	hdr := w.Header()
	hdr.Set("Content-Security-Policy", ContentSecurityPolicy)
	hdr.Set("X-Content-Type-Options", "nosniff")
	hdr.Set("Referrer-Policy", "no-referrer") // the page's URL may hold a token
	hdr.Set("X-Frame-Options", "DENY")
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		hdr.Set("Allow", "GET, HEAD")
		wire.WriteErrorCode(w, http.StatusMethodNotAllowed, wire.CodeMethodNotAllowed,
			r.Method+" is not allowed on "+r.URL.Path+"; allowed: GET, HEAD")
		return
	}
	switch p := r.URL.Path; {
	case p == PathIndex:
		h.serve(w, r, h.index, false)
	case p == PathStats:
		h.serveStats(w)
	default:
		a, ok := h.assets[p]
		if !ok {
			wire.WriteErrorCode(w, http.StatusNotFound, wire.CodeNoRoute, "no such route: "+r.Method+" "+p)
			return
		}
		h.serve(w, r, a, r.URL.Query().Get("v") == a.version)
	}
}

// serve writes an embedded file. A URL that names the file's content hash
// may be cached for good; anything else is revalidated by ETag.
func (h *handler) serve(w http.ResponseWriter, r *http.Request, a asset, immutable bool) {
	hdr := w.Header()
	hdr.Set("Content-Type", a.contentType)
	hdr.Set("ETag", a.etag)
	if immutable {
		hdr.Set("Cache-Control", "public, max-age=31536000, immutable")
	} else {
		hdr.Set("Cache-Control", "no-cache")
	}
	http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(a.body))
}

func (h *handler) serveStats(w http.ResponseWriter) {
	var body statsBody
	if h.stats != nil {
		body.Stats = h.stats()
	}
	if body.Workspaces == nil {
		body.Workspaces = []string{}
	}
	if body.Watchers == nil {
		body.Watchers = []Watcher{}
	}
	if body.Problems == nil {
		body.Problems = []events.Problem{}
	}
	body.ServerTime = time.Now().UTC()
	b, err := json.Marshal(body)
	if err != nil {
		wire.WriteErrorCode(w, http.StatusInternalServerError, wire.CodeInternal, "internal error")
		return
	}
	hdr := w.Header()
	hdr.Set("Content-Type", "application/json")
	hdr.Set("Cache-Control", "no-store")
	_, _ = w.Write(append(b, '\n'))
}

// IsAsset reports whether the URL path p is one of the static files of the
// page (the page itself included), which hold nothing secret: a router
// that requires a token may serve them without one, so that a browser can
// load the page whose script then presents the token.
func IsAsset(p string) bool {
	if p == PathIndex {
		return true
	}
	name, ok := strings.CutPrefix(p, "/dashboard/")
	_, known := assetTypes[name]
	return ok && known
}
