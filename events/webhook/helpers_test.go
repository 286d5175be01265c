package webhook_test

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/oklog/ulid/v2"
	"github.com/sourcegraph/conc"

	"github.com/filecast/filecast/events"
	"github.com/filecast/filecast/events/eventstest"
	"github.com/filecast/filecast/events/journal"
	"github.com/filecast/filecast/events/natsd"
	"github.com/filecast/filecast/events/webhook"
	"github.com/filecast/filecast/events/wire"
)

const waitFor = 15 * time.Second

func openJournal(t testing.TB, nc *nats.Conn) *journal.Journal {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	j, err := journal.Open(ctx, nc, journal.Options{})
	if err != nil {
		t.Fatalf("open journal: %v", err)
	}
	t.Cleanup(func() { _ = j.Close() })
	if err := j.Ensure(ctx, "docs"); err != nil {
		t.Fatalf("ensure: %v", err)
	}
	return j
}

// hub is a dispatcher, its HTTP API and its running Run.
type hub struct {
	d    *webhook.Dispatcher
	api  *httptest.Server
	stop func()
}

// openHub opens a dispatcher on nc and serves its routes; run starts Run.
func openHub(t testing.TB, nc *nats.Conn, opts webhook.Options, run bool) *hub {
	t.Helper()
	if opts.Workspaces == nil {
		opts.Workspaces = []string{"docs", "other"}
	}
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	d, err := webhook.Open(ctx, nc, opts)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	mux := http.NewServeMux()
	d.Routes(mux)
	h := &hub{d: d, api: httptest.NewServer(mux), stop: func() {}}
	t.Cleanup(func() {
		h.stop()
		h.api.Close()
		_ = d.Close()
	})
	if run {
		h.run(t)
	}
	return h
}

// run starts Run until stop is called or the test ends.
func (h *hub) run(t testing.TB) {
	ctx, cancel := context.WithCancel(context.Background())
	var wg conc.WaitGroup
	wg.Go(func() {
		if err := h.d.Run(ctx); err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	var once sync.Once
	h.stop = func() { once.Do(func() { cancel(); wg.Wait() }) }
}

// call makes a JSON request to the hub's API and decodes the answer into
// out (if not nil); it returns the status code and, on an error status,
// the error body.
// rawBody is a request body call sends as it is, not as JSON.
type rawBody []byte

func (h *hub) call(t testing.TB, method, path string, in, out any) (int, wire.ErrorBody) {
	t.Helper()
	var body io.Reader
	if raw, ok := in.(rawBody); ok {
		body = bytes.NewReader(raw)
	} else if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			t.Fatal(err)
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, h.api.URL+path, body)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := h.api.Client().Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	var eb wire.ErrorBody
	if resp.StatusCode >= 400 {
		if err := json.Unmarshal(data, &eb); err != nil {
			t.Fatalf("%s %s: %d with a body that is not a JSON error: %s", method, path, resp.StatusCode, data)
		}
		return resp.StatusCode, eb
	}
	if out != nil {
		if err := json.Unmarshal(data, out); err != nil {
			t.Fatalf("%s %s: decode %s: %v", method, path, data, err)
		}
	}
	return resp.StatusCode, eb
}

// register registers url for workspace docs with the given filters and
// wires the secret into rcv (if not nil).
func (h *hub) register(t testing.TB, reg webhook.Registration, rcv *receiver) webhook.Webhook {
	t.Helper()
	if reg.Workspace == "" {
		reg.Workspace = "docs"
	}
	var w webhook.Webhook
	code, eb := h.call(t, http.MethodPost, "/v1/webhooks", reg, &w)
	if code != http.StatusCreated {
		t.Fatalf("register %s: %d %+v", reg.URL, code, eb)
	}
	if w.Status != webhook.StatusPending || !strings.HasPrefix(w.Secret, "whsec_") {
		t.Fatalf("register: got status %q secret %q", w.Status, w.Secret)
	}
	if rcv != nil {
		rcv.setSecrets(w.Secret)
	}
	return w
}

func (h *hub) get(t testing.TB, id string) webhook.Webhook {
	t.Helper()
	var w webhook.Webhook
	if code, eb := h.call(t, http.MethodGet, "/v1/webhooks/"+id, nil, &w); code != http.StatusOK {
		t.Fatalf("get %s: %d %+v", id, code, eb)
	}
	return w
}

// waitStatus waits until the webhook has status s and returns it.
func (h *hub) waitStatus(t testing.TB, id string, s webhook.Status) webhook.Webhook {
	t.Helper()
	var w webhook.Webhook
	eventstest.Eventually(t, fmt.Sprintf("webhook %s %s", id, s), func() bool {
		w = h.get(t, id)
		return w.Status == s
	})
	return w
}

func (h *hub) deliveries(t testing.TB, id string) []webhook.Delivery {
	t.Helper()
	var out struct {
		Deliveries []webhook.Delivery `json:"deliveries"`
	}
	if code, eb := h.call(t, http.MethodGet, "/v1/webhooks/"+id+"/deliveries?limit=1000", nil, &out); code != http.StatusOK {
		t.Fatalf("deliveries %s: %d %+v", id, code, eb)
	}
	return out.Deliveries
}

// request is one POST a receiver got.
type request struct {
	ID, Timestamp string
	Sigs          []string
	Body          []byte
	Type          string
	Event         events.Event
	Valid         bool // a signature matched one of the receiver's secrets, checked independently
	Status        int  // what the receiver answered
	At            time.Time
}

// receiver is a webhook endpoint on 127.0.0.1 that checks signatures with
// its own HMAC code and echoes the challenge.
type receiver struct {
	srv   *httptest.Server
	ready chan struct{}
	once  sync.Once

	mu      sync.Mutex
	secrets []string
	reqs    []request
	tries   map[string]int // event ID → requests so far
	// status decides the answer to an event request, given how many
	// requests for that event came before (0 for the first); nil means 200.
	status func(ev events.Event, try int) int
	// echo is the answer body to a challenge; nil echoes it plainly.
	echo func(challenge string) string
	// delay holds an event request back before answering.
	delay func(ev events.Event, try int) time.Duration
	ch    chan struct{}
}

func newReceiver(t testing.TB) *receiver {
	r := &receiver{ready: make(chan struct{}), tries: map[string]int{}, ch: make(chan struct{}, 1)}
	r.srv = httptest.NewServer(http.HandlerFunc(r.serve))
	t.Cleanup(r.srv.Close)
	return r
}

func (r *receiver) url() string { return r.srv.URL + "/hook" }

func (r *receiver) setSecrets(secrets ...string) {
	r.mu.Lock()
	r.secrets = append(r.secrets, secrets...)
	r.mu.Unlock()
	r.once.Do(func() { close(r.ready) })
}

func (r *receiver) set(f func(r *receiver)) {
	r.mu.Lock()
	defer r.mu.Unlock()
	f(r)
}

// sign computes a Standard Webhooks signature with nothing from the
// package under test.
func sign(secret, id, ts string, body []byte) []byte {
	key, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(secret, "whsec_"))
	if err != nil {
		panic(err)
	}
	m := hmac.New(sha256.New, key)
	m.Write([]byte(id + "." + ts + "."))
	m.Write(body)
	return m.Sum(nil)
}

// matches reports whether one of sigs is the signature under secret.
func matches(secret string, q request) bool {
	want := sign(secret, q.ID, q.Timestamp, q.Body)
	for _, s := range q.Sigs {
		v, b64, ok := strings.Cut(s, ",")
		got, err := base64.StdEncoding.DecodeString(b64)
		if ok && v == "v1" && err == nil && hmac.Equal(got, want) {
			return true
		}
	}
	return false
}

func (r *receiver) serve(w http.ResponseWriter, req *http.Request) {
	select {
	case <-r.ready:
	case <-time.After(waitFor):
	}
	body, _ := io.ReadAll(req.Body)
	q := request{
		ID:        req.Header.Get("webhook-id"),
		Timestamp: req.Header.Get("webhook-timestamp"),
		Sigs:      strings.Fields(req.Header.Get("webhook-signature")),
		Body:      body,
		At:        time.Now(),
	}
	var probe struct {
		Type      string `json:"type"`
		Challenge string `json:"challenge"`
	}
	_ = json.Unmarshal(body, &probe)
	q.Type = probe.Type
	if q.Type != webhook.VerificationType {
		_ = json.Unmarshal(body, &q.Event)
	}
	r.mu.Lock()
	for _, s := range r.secrets {
		q.Valid = q.Valid || matches(s, q)
	}
	try := r.tries[q.ID]
	r.tries[q.ID]++
	status, echo, delay := r.status, r.echo, r.delay
	r.mu.Unlock()

	q.Status = http.StatusOK
	answer := ""
	switch {
	case !q.Valid:
		q.Status = http.StatusUnauthorized
	case q.Type == webhook.VerificationType:
		answer = probe.Challenge
		if echo != nil {
			answer = echo(probe.Challenge)
		}
	default:
		if delay != nil {
			if d := delay(q.Event, try); d > 0 {
				select {
				case <-time.After(d):
				case <-req.Context().Done():
				}
			}
		}
		if status != nil {
			q.Status = status(q.Event, try)
		}
	}
	r.mu.Lock()
	r.reqs = append(r.reqs, q)
	r.mu.Unlock()
	select {
	case r.ch <- struct{}{}:
	default:
	}
	w.WriteHeader(q.Status)
	_, _ = io.WriteString(w, answer)
}

func (r *receiver) requests() []request {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]request(nil), r.reqs...)
}

// delivered returns the events the receiver accepted, in arrival order.
func (r *receiver) delivered() []request {
	var out []request
	for _, q := range r.requests() {
		if q.Type != webhook.VerificationType && q.Status == http.StatusOK {
			out = append(out, q)
		}
	}
	return out
}

// waitDelivered waits until n events were accepted.
func (r *receiver) waitDelivered(t testing.TB, n int) []request {
	t.Helper()
	deadline := time.After(waitFor)
	for {
		if got := r.delivered(); len(got) >= n {
			return got
		}
		select {
		case <-r.ch:
		case <-deadline:
			t.Fatalf("receiver accepted %d events, want %d; requests: %d", len(r.delivered()), n, len(r.requests()))
		}
	}
}

func (r *receiver) checkSigned(t testing.TB) {
	t.Helper()
	for _, q := range r.requests() {
		if !q.Valid {
			t.Errorf("request %s (%s) has no valid signature: %v", q.ID, q.Type, q.Sigs)
		}
		ts, err := strconv.ParseInt(q.Timestamp, 10, 64)
		if err != nil || time.Since(time.Unix(ts, 0)).Abs() > time.Minute {
			t.Errorf("request %s: webhook-timestamp %q is not the current unix time", q.ID, q.Timestamp)
		}
	}
}

// appendEvents appends one file.updated event per path to docs.
func appendEvents(t testing.TB, j *journal.Journal, paths ...string) []events.Event {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	var out []events.Event
	for _, p := range paths {
		ev, err := j.Append(ctx, newEvent("docs", p, events.FileUpdated))
		if err != nil {
			t.Fatalf("append: %v", err)
		}
		out = append(out, ev)
	}
	return out
}

func newEvent(ws, path string, typ events.Type) events.Event {
	return events.Event{
		ID: ulid.Make().String(), Type: typ, Workspace: ws, Path: path,
		Size: 12, SHA256: strings.Repeat("ab", 32), Actor: events.ActorFS,
		Time: time.Now().UTC().Truncate(time.Microsecond),
	}
}

// fakeResolver answers lookups from a table; a function entry may answer
// differently each time.
type fakeResolver struct {
	mu    sync.Mutex
	hosts map[string]func(n int) []string
	calls map[string]int
}

func (f *fakeResolver) LookupIPAddr(_ context.Context, host string) ([]net.IPAddr, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	fn, ok := f.hosts[host]
	if !ok {
		return nil, &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}
	}
	if f.calls == nil {
		f.calls = map[string]int{}
	}
	n := f.calls[host]
	f.calls[host]++
	var out []net.IPAddr
	for _, s := range fn(n) {
		out = append(out, net.IPAddr{IP: net.ParseIP(s)})
	}
	return out, nil
}

func always(ips ...string) func(int) []string { return func(int) []string { return ips } }

// fastOpts are options with a short schedule and allowed loopback.
func fastOpts() webhook.Options {
	return webhook.Options{
		Schedule:     []time.Duration{50 * time.Millisecond, 100 * time.Millisecond, 200 * time.Millisecond},
		AllowPrivate: true,
		Timeout:      2 * time.Second,
	}
}

// consumerInfo reads the state of a consumer from the server.
func consumerInfo(t testing.TB, srv *natsd.Server, stream, name string) *jetstream.ConsumerInfo {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	js, err := jetstream.New(srv.Conn())
	if err != nil {
		t.Fatal(err)
	}
	c, err := js.Consumer(ctx, stream, name)
	if err != nil {
		t.Fatalf("consumer %s: %v", name, err)
	}
	info, err := c.Info(ctx)
	if err != nil {
		t.Fatalf("consumer %s: %v", name, err)
	}
	return info
}
