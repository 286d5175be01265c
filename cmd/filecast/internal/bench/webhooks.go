package bench

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/sourcegraph/conc"
)

// delivery is one POST the receiver got.
type delivery struct {
	id, ts, sig string
	body        []byte
	at          time.Time // when the handler was called
}

// receiver is the webhook endpoint of the webhooks scenario: it answers
// the verification challenge, accepts every delivery with 204, and
// records each request for checking afterwards (signatures need the
// secret, which the registration returns after the challenge may have
// arrived). Deliveries are fed to onEvent as they come.
type receiver struct {
	onEvent func(d delivery)

	mu  sync.Mutex
	got []delivery
}

func (rc *receiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	at := time.Now()
	body, err := io.ReadAll(r.Body)
	if err != nil {
		http.Error(w, "read body", http.StatusBadRequest)
		return
	}
	d := delivery{id: r.Header.Get("webhook-id"), ts: r.Header.Get("webhook-timestamp"), sig: r.Header.Get("webhook-signature"), body: body, at: at}
	rc.mu.Lock()
	rc.got = append(rc.got, d)
	rc.mu.Unlock()
	if bytes.Contains(body, []byte(`"webhook.verification"`)) {
		var msg struct {
			Challenge string `json:"challenge"`
		}
		_ = json.Unmarshal(body, &msg)
		_, _ = io.WriteString(w, msg.Challenge)
		return
	}
	if rc.onEvent != nil {
		rc.onEvent(d)
	}
	w.WriteHeader(http.StatusNoContent)
}

func (rc *receiver) deliveries() []delivery {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return append([]delivery(nil), rc.got...)
}

// verify reports whether d carries a Standard Webhooks signature made
// with key: "v1,<base64 HMAC-SHA256 of id.timestamp.body>" among the
// space-separated signatures.
func verify(d delivery, key []byte) bool {
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte(d.id + "." + d.ts + "."))
	mac.Write(d.body)
	want := "v1," + base64.StdEncoding.EncodeToString(mac.Sum(nil))
	for s := range strings.FieldsSeq(d.sig) {
		if hmac.Equal([]byte(s), []byte(want)) {
			return true
		}
	}
	return false
}

// hookEvent is the part of a delivered event the benchmark reads.
type hookEvent struct {
	ID        string    `json:"event_id"`
	Type      string    `json:"type"`
	Path      string    `json:"path"`
	SHA256    string    `json:"sha256"`
	Timestamp time.Time `json:"timestamp"`
}

// runWebhooks registers a webhook on "filecast hub" for a receiver in this
// process, writes at c.Rate for c.Duration (latency), then c.Changes
// writes as fast as possible (deliveries per second).
func runWebhooks(ctx context.Context, c Config) (Result, error) {
	base, root, data, err := makeBase(c)
	if err != nil {
		return Result{}, err
	}
	defer os.RemoveAll(base)
	names, err := flatFiles(root, c.Files)
	if err != nil {
		return Result{}, err
	}
	l := newLedger(root, names)
	got := l.newHeard()
	var (
		mu     sync.Mutex
		toPOST []time.Duration // the event's timestamp → POST received
		phase  = "paced"
		burst  []time.Duration
	)
	rc := &receiver{onEvent: func(d delivery) {
		var e hookEvent
		if json.Unmarshal(d.body, &e) != nil {
			return
		}
		l.see(got, e.Path, e.SHA256, e.Timestamp, d.at)
		mu.Lock()
		if phase == "paced" {
			toPOST = append(toPOST, d.at.Sub(e.Timestamp))
		} else {
			burst = append(burst, d.at.Sub(e.Timestamp))
		}
		mu.Unlock()
	}}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return Result{}, fmt.Errorf("listen for webhooks: %w", err)
	}
	srv := &http.Server{Handler: rc, ReadHeaderTimeout: 10 * time.Second}
	var wg conc.WaitGroup
	defer wg.Wait()
	wg.Go(func() { _ = srv.Serve(ln) })
	defer srv.Close()

	addr, err := freeAddr()
	if err != nil {
		return Result{}, err
	}
	hub, err := spawn("filecast hub", c.Binary, append([]string{"hub", "--root", wsName + "=" + root, "--data", data, "--listen", addr,
		"--allow-private-webhooks", "--log-level", "warn"}, c.Flags...), false, c.Log)
	if err != nil {
		return Result{}, err
	}
	defer hub.stop()
	api := "http://" + addr
	hc := &http.Client{Timeout: 10 * time.Second}
	defer hc.CloseIdleConnections()
	if _, err := waitHealthy(ctx, hc, api+"/healthz", hub, 10*time.Millisecond, 30*time.Second); err != nil {
		return Result{}, err
	}
	var hook struct {
		ID     string `json:"id"`
		Secret string `json:"secret"`
		Status string `json:"status"`
	}
	if err := doJSON(ctx, hc, http.MethodPost, api+"/v1/webhooks", map[string]any{"url": "http://" + ln.Addr().String() + "/hook", "workspace": wsName}, &hook); err != nil {
		return Result{}, fmt.Errorf("register webhook: %w", err)
	}
	key, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(hook.Secret, "whsec_"))
	if err != nil || !strings.HasPrefix(hook.Secret, "whsec_") {
		return Result{}, fmt.Errorf("register webhook: secret %q is not whsec_ + base64", hook.Secret)
	}
	var status string
	active := waitFor(ctx, 10*time.Second, func() bool {
		var h struct {
			Status string `json:"status"`
		}
		if doJSON(ctx, hc, http.MethodGet, api+"/v1/webhooks/"+hook.ID, nil, &h) == nil {
			status = h.Status
		}
		return status == "active"
	})
	if !active {
		return Result{}, fmt.Errorf("webhook %s is %q, not active, 10 s after registering", hook.ID, status)
	}

	bl, err := newBaseline(l, []string{root})
	if err != nil {
		return Result{}, err
	}
	runCtx, stop := context.WithCancel(ctx)
	defer stop()
	wg.Go(func() { bl.run(runCtx) })

	// Phase 1: paced writes, for latency.
	cpu0 := hub.cpu()
	writing, err := l.writeAt(ctx, c.Rate, 0, c.Duration)
	if err != nil {
		return Result{}, err
	}
	paced := l.writes()
	wait := func() bool {
		return waitFor(ctx, 10*time.Second+time.Duration(l.writes())*time.Millisecond, func() bool { return l.complete(got) })
	}
	pacedDone := wait()
	pacedCPU := hub.cpu() - cpu0
	pacedLat, pacedStamp := l.latencies(got)

	// Phase 2: a burst, for deliveries per second.
	mu.Lock()
	phase = "burst"
	mu.Unlock()
	before := len(rc.deliveries())
	burstStart := time.Now()
	if _, err := l.writeAt(ctx, 0, c.Changes, 0); err != nil {
		return Result{}, err
	}
	burstDone := wait()
	rss := hub.peakRSS()
	stop()

	all := rc.deliveries()
	bad, dups, events := 0, 0, 0
	ids := map[string]bool{}
	var lastAt time.Time
	for i, d := range all {
		if !verify(d, key) {
			bad++
		}
		if bytes.Contains(d.body, []byte(`"webhook.verification"`)) {
			continue
		}
		events++
		if ids[d.id] {
			dups++
		}
		ids[d.id] = true
		if i >= before && d.at.After(lastAt) {
			lastAt = d.at
		}
	}
	r := Result{Summary: fmt.Sprintf("filecast hub → webhook receiver in this process; %d writes at %d/s over %s, then a burst of %d writes; %d files",
		paced, c.Rate, writing.Round(time.Millisecond), c.Changes, c.Files)}
	floor, _ := l.latencies(bl.h)
	lat, _ := l.latencies(got) // the paced phase's, then the burst's
	mu.Lock()
	r.row("write → fsnotify (floor)", floor)
	r.row("write → event timestamp (paced)", pacedStamp)
	r.row("write → POST received (paced)", pacedLat)
	r.row("event timestamp → POST (paced)", toPOST)
	r.row("write → POST received (burst)", lat[len(pacedLat):])
	r.row("event timestamp → POST (burst)", burst)
	mu.Unlock()
	burstN := len(all) - before
	if burstDone && lastAt.After(burstStart) {
		r.fig("deliveries/s (burst: deliveries ÷ first write → last POST)", perSecond(burstN, lastAt.Sub(burstStart)), "/s")
	}
	r.fig("deliveries", float64(events), "")
	t := l.tally(got)
	r.worst("bad signatures", float64(bad))
	r.worst("duplicate deliveries (same webhook-id)", float64(dups))
	r.worst("files missing their last write", float64(t.incomplete))
	dup, disorder, unknown, _, _ := l.counts(got)
	r.worst("events out of order per file", float64(disorder))
	r.fig("writes coalesced (a later write was delivered)", float64(t.coalesced), "")
	r.fig("deliveries for content not written by the bench", float64(unknown+dup), "")
	if pacedCPU > 0 && paced > 0 {
		r.fig("filecast hub CPU per write (paced)", micros(pacedCPU/time.Duration(paced)), "µs")
	}
	if rss > 0 {
		r.fig("filecast hub peak RSS", mib(rss), "MiB")
	}
	if !pacedDone || !burstDone {
		r.note("not every write was delivered before the deadline")
	}
	return r, nil
}

// doJSON sends body (nil for none) as JSON and decodes a 2xx answer into out.
func doJSON(ctx context.Context, hc *http.Client, method, url string, body, out any) error {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, url, rd)
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	res, err := hc.Do(req)
	if err != nil {
		return err
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		return err
	}
	if res.StatusCode/100 != 2 {
		return fmt.Errorf("%s %s: %s: %s", method, url, res.Status, bytes.TrimSpace(b))
	}
	if out == nil {
		return nil
	}
	if err := json.Unmarshal(b, out); err != nil {
		return errors.Join(fmt.Errorf("decode %s %s", method, url), err)
	}
	return nil
}
