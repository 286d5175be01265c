package webhook

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/oklog/ulid/v2"

	"github.com/filecast/filecast/events/internal/wait"
)

const (
	userAgent = "filecast-webhooks/1"
	// maxResponse is how much of a response body is read.
	maxResponse = 4 << 10
	// verifyTries bounds the tries of a verification that fails for a
	// reason that may pass (a connection error, a timeout, a 5xx or 429).
	verifyTries = 3
	// successNote is how often a stream of successes refreshes
	// LastSuccessAt in the store.
	successNote = time.Minute
)

// result is the outcome of one HTTP attempt.
type result struct {
	code      int
	body      []byte
	err       error // nil on a 2xx
	retryable bool  // err may pass on another try
	latency   time.Duration
	start     time.Time
}

// Canonical forms of the request headers, set without canonicalising.
var (
	hdrContentType = http.CanonicalHeaderKey("Content-Type")
	hdrUserAgent   = http.CanonicalHeaderKey("User-Agent")
	hdrID          = http.CanonicalHeaderKey(HeaderID)
	hdrTimestamp   = http.CanonicalHeaderKey(HeaderTimestamp)
	hdrSignature   = http.CanonicalHeaderKey(HeaderSignature)
	jsonType       = []string{"application/json"}
	userAgents     = []string{userAgent}
)

// post sends one request to url, signed by s.
func (d *Dispatcher) post(ctx context.Context, url string, s *signer, msgID string, body []byte) result {
	ctx, cancel := context.WithTimeout(ctx, d.opts.Timeout)
	defer cancel()
	start := time.Now()
	res := result{start: start}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		res.err = err
		return res
	}
	h := make(http.Header, 5)
	h[hdrContentType] = jsonType
	h[hdrUserAgent] = userAgents
	h[hdrID] = []string{msgID}
	h[hdrTimestamp] = []string{strconv.FormatInt(start.Unix(), 10)}
	h[hdrSignature] = []string{s.header(msgID, start, body)}
	req.Header = h
	resp, err := d.client.Do(req)
	if err != nil {
		res.latency = time.Since(start)
		res.err, res.retryable = describe(err, d.opts.Timeout)
		return res
	}
	res.body, err = io.ReadAll(io.LimitReader(resp.Body, maxResponse))
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10)) // let the connection be reused
	_ = resp.Body.Close()
	res.latency = time.Since(start)
	res.code = resp.StatusCode
	switch {
	case resp.StatusCode >= 200 && resp.StatusCode < 300:
		if err != nil {
			res.err, res.retryable = fmt.Errorf("reading the response: %w", err), true
		}
	case resp.StatusCode >= 300 && resp.StatusCode < 400:
		res.err = fmt.Errorf("HTTP %d: redirects are not followed; register the final URL (Location: %s)",
			resp.StatusCode, truncate(resp.Header.Get("Location"), 200))
		res.retryable = true
	default:
		res.err = fmt.Errorf("HTTP %d %s", resp.StatusCode, http.StatusText(resp.StatusCode))
		res.retryable = true
	}
	return res
}

// describe turns a client error into the message shown in deliveries, and
// says whether another try may succeed.
func describe(err error, timeout time.Duration) (error, bool) {
	if errors.Is(err, ErrForbiddenAddress) {
		var ae *AddressError
		if errors.As(err, &ae) {
			return ae, false
		}
		return err, false
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("timed out after %v", timeout), true
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return fmt.Errorf("timed out after %v", timeout), true
	}
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err, true // without the method and URL
	}
	return err, true
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// noteSuccess clears the webhook's run of failures and, now and then,
// refreshes LastSuccessAt.
func (d *Dispatcher) noteSuccess(ctx context.Context, id string) {
	if e := d.cached(id); e != nil && e.rec.FailingSince.IsZero() && time.Since(e.rec.LastSuccessAt) < successNote {
		return
	}
	_, err := d.modify(ctx, id, func(r *record) error {
		r.FailingSince = time.Time{}
		r.LastSuccessAt = time.Now().UTC()
		return nil
	})
	if err != nil && ctx.Err() == nil {
		d.log.Warn("cannot note webhook success", "webhook", id, "err", err)
	}
}

// noteFailure starts the webhook's run of failures, or disables it when
// the run has lasted DisableAfter.
func (d *Dispatcher) noteFailure(ctx context.Context, id, lastErr string) {
	now := time.Now().UTC()
	if e := d.cached(id); e != nil && !e.rec.FailingSince.IsZero() && now.Sub(e.rec.FailingSince) < d.opts.DisableAfter {
		return
	}
	rec, err := d.modify(ctx, id, func(r *record) error {
		switch {
		case r.Status != StatusActive:
			return errSkip
		case r.FailingSince.IsZero():
			r.FailingSince = now
		case now.Sub(r.FailingSince) >= d.opts.DisableAfter:
			r.Status = StatusDisabled
			r.Reason = fmt.Sprintf("disabled: every delivery failed since %s (longer than %v); last error: %s",
				r.FailingSince.Format(time.RFC3339), d.opts.DisableAfter, lastErr)
		default:
			return errSkip
		}
		return nil
	})
	if err != nil {
		if ctx.Err() == nil {
			d.log.Warn("cannot note webhook failure", "webhook", id, "err", err)
		}
		return
	}
	if rec.Status == StatusDisabled {
		d.log.Warn("webhook disabled", "webhook", id, "reason", rec.Reason)
	}
}

// confirm sends the verification challenge to a pending webhook and makes
// it active or failed.
func (d *Dispatcher) confirm(ctx context.Context, rec *record) error {
	b := make([]byte, 24)
	_, _ = rand.Read(b)
	challenge := base64.RawURLEncoding.EncodeToString(b)
	body, err := json.Marshal(struct {
		Type      string `json:"type"`
		Challenge string `json:"challenge"`
	}{VerificationType, challenge})
	if err != nil {
		return err
	}
	msgID := "verify_" + ulid.Make().String()
	sig, err := newSigner(rec.Secrets)
	if err != nil {
		return err
	}
	var res result
	for try := 1; ; try++ {
		res = d.post(ctx, rec.URL, sig, msgID, body)
		if ctx.Err() != nil {
			return nil
		}
		switch {
		case res.err == nil && !echoes(res.body, challenge):
			res.err = fmt.Errorf("HTTP %d but the body does not echo the challenge; answer with the challenge as the body, or as {\"challenge\":\"…\"}", res.code)
			res.retryable = false
		case res.code >= 300 && res.code < 500 && res.code != http.StatusRequestTimeout && res.code != http.StatusTooManyRequests:
			res.retryable = false // a redirect or a refusal: asking again will not help
		}
		a := Delivery{
			DeliveryID: msgID, Type: VerificationType, Attempt: try, Status: DeliverySucceeded,
			LatencyMS: ms(res.latency), ResponseCode: res.code, Time: res.start.UTC(),
		}
		d.count(rec.ID, res.latency, false)
		if res.err != nil {
			a.Error = res.err.Error()
			a.Status = DeliveryFailed
		}
		next, more := nextTry(d.opts.Schedule, try, time.Now())
		retry := res.err != nil && res.retryable && try < verifyTries && more
		if retry {
			a.Status = DeliveryPending
			a.NextAttemptAt = next.UTC()
		}
		d.recordAttempt(rec.ID, a)
		if !retry {
			break
		}
		if !wait.Sleep(ctx, time.Until(next)) {
			return nil
		}
	}
	now := time.Now().UTC()
	updated, err := d.modify(ctx, rec.ID, func(r *record) error {
		if r.Status != StatusPending {
			return errSkip
		}
		if res.err != nil {
			r.Status = StatusFailed
			r.Reason = "verification failed: " + res.err.Error()
			return nil
		}
		r.Status, r.Reason, r.VerifiedAt = StatusActive, "", now
		return nil
	})
	if err != nil {
		return fmt.Errorf("store verification: %w", err)
	}
	d.log.Info("webhook verification done", "webhook", rec.ID, "status", updated.Status, "reason", updated.Reason)
	return nil
}

// echoes reports whether a verification answer carries the challenge, as
// the plain body or as {"challenge": "…"}.
func echoes(body []byte, challenge string) bool {
	if strings.TrimSpace(string(body)) == challenge {
		return true
	}
	var v struct {
		Challenge string `json:"challenge"`
	}
	return json.Unmarshal(body, &v) == nil && v.Challenge == challenge
}
