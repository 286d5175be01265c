package webhook

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"path"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/oklog/ulid/v2"

	"github.com/filecast/filecast/events"
	"github.com/filecast/filecast/events/journal"
)

// Limits of a Registration.
const (
	MaxExtensions   = 64
	maxExtensionLen = 32
	// MaxOverlap bounds how long a rotated-out secret may keep signing.
	MaxOverlap = 30 * 24 * time.Hour
	casRetries = 16
	idPrefix   = "wh_"
)

var idPattern = regexp.MustCompile(`^wh_[0-9A-HJKMNP-TV-Z]{26}$`)

// Registration asks for a webhook: the JSON body of POST /v1/webhooks.
type Registration struct {
	URL       string   `json:"url"`
	Workspace string   `json:"workspace"`
	Paths     []string `json:"paths,omitempty"` // globs as in events.CompileGlob; none means every path
	// Extensions are file extensions ("md" or ".md", case-insensitive);
	// none means every file.
	Extensions []string `json:"extensions,omitempty"`
	// Types are event types, full ("file.created") or short ("created",
	// "locked"); none means the four file types.
	Types []string `json:"types,omitempty"`
}

// Webhook is the public view of a registration. Secret is set only in the
// answers of Register and Rotate; it is never listed.
type Webhook struct {
	ID            string    `json:"id"`
	URL           string    `json:"url"`
	Workspace     string    `json:"workspace"`
	Paths         []string  `json:"paths,omitempty"`
	Extensions    []string  `json:"extensions,omitempty"`
	Types         []string  `json:"types,omitempty"`
	Status        Status    `json:"status"`
	Reason        string    `json:"reason,omitempty"`
	CreatedAt     time.Time `json:"created_at"`
	VerifiedAt    time.Time `json:"verified_at,omitzero"`
	LastSuccessAt time.Time `json:"last_success_at,omitzero"`
	// FailingSince is when the current run of failed attempts began; zero
	// when the last attempt succeeded.
	FailingSince time.Time `json:"failing_since,omitzero"`
	Secret       string    `json:"secret,omitempty"`
	// PreviousSecretExpiresAt is when the secret replaced by Rotate stops
	// signing; set only in Rotate's answer.
	PreviousSecretExpiresAt time.Time `json:"previous_secret_expires_at,omitzero"`
}

// secretEntry is one signing secret; a zero ExpiresAt never expires.
type secretEntry struct {
	Secret    string    `json:"secret"`
	ExpiresAt time.Time `json:"expires_at,omitzero"`
}

// record is what the bucket holds per webhook.
type record struct {
	ID            string        `json:"id"`
	URL           string        `json:"url"`
	Workspace     string        `json:"workspace"`
	Paths         []string      `json:"paths,omitempty"`
	Extensions    []string      `json:"extensions,omitempty"`
	Types         []string      `json:"types,omitempty"`
	Secrets       []secretEntry `json:"secrets"` // newest first
	Status        Status        `json:"status"`
	Reason        string        `json:"reason,omitempty"`
	StartSeq      uint64        `json:"start_seq"`
	CreatedAt     time.Time     `json:"created_at"`
	UpdatedAt     time.Time     `json:"updated_at"`
	VerifiedAt    time.Time     `json:"verified_at,omitzero"`
	LastSuccessAt time.Time     `json:"last_success_at,omitzero"`
	FailingSince  time.Time     `json:"failing_since,omitzero"`
}

func (r *record) view() Webhook {
	return Webhook{
		ID: r.ID, URL: r.URL, Workspace: r.Workspace,
		Paths: r.Paths, Extensions: r.Extensions, Types: r.Types,
		Status: r.Status, Reason: r.Reason, CreatedAt: r.CreatedAt,
		VerifiedAt: r.VerifiedAt, LastSuccessAt: r.LastSuccessAt, FailingSince: r.FailingSince,
	}
}

// matcher selects the events of one webhook.
type matcher struct {
	filter events.Filter
	exts   []string // lower case, with the dot
}

func newMatcher(r *record) (matcher, error) {
	f, err := events.NewFilter(r.Workspace, r.Paths, r.Types)
	if err != nil {
		return matcher{}, err
	}
	return matcher{filter: f, exts: r.Extensions}, nil
}

func (m matcher) match(ev events.Event) bool {
	if ev.Workspace != m.filter.Workspace || !m.filter.HasType(ev.Type) {
		return false
	}
	return m.matchPath(ev.Path) || (ev.OldPath != "" && m.matchPath(ev.OldPath))
}

func (m matcher) matchPath(p string) bool {
	if !m.filter.MatchPath(p) {
		return false
	}
	if len(m.exts) == 0 {
		return true
	}
	return slices.Contains(m.exts, strings.ToLower(path.Ext(p)))
}

// normaliseExtensions returns extensions lower case with a leading dot.
func normaliseExtensions(in []string) ([]string, error) {
	if len(in) > MaxExtensions {
		return nil, badRequest("at most %d extensions", MaxExtensions)
	}
	var out []string
	for _, e := range in {
		e = strings.ToLower(strings.TrimPrefix(strings.TrimSpace(e), "."))
		if e == "" || len(e) > maxExtensionLen || strings.ContainsAny(e, "/\\.*?[]{} \x00") {
			return nil, badRequest("extension %q: give a file extension such as \"md\" or \".go\"", truncate(e, 40))
		}
		if e := "." + e; !slices.Contains(out, e) {
			out = append(out, e)
		}
	}
	return out, nil
}

func checkID(id string) error {
	if !idPattern.MatchString(id) {
		return fmt.Errorf("%w: %q is not a webhook id", ErrNotFound, truncate(id, 40))
	}
	return nil
}

func liveConsumer(id string) string   { return "webhook-" + id }
func replayConsumer(id string) string { return "replay-" + id }

// Register checks a registration, refusing URLs that are or resolve to
// forbidden addresses, stores it as pending and returns it with its
// secret. Run then confirms the endpoint. Events appended to the
// workspace's log after Register returns are delivered once it is active.
func (d *Dispatcher) Register(ctx context.Context, reg Registration) (Webhook, error) {
	w, err := d.register(ctx, reg)
	if err != nil {
		return Webhook{}, fmt.Errorf("register webhook: %w", err)
	}
	return w, nil
}

func (d *Dispatcher) register(ctx context.Context, reg Registration) (Webhook, error) {
	u, err := parseURL(reg.URL)
	if err != nil {
		return Webhook{}, err
	}
	if reg.Workspace == "" {
		return Webhook{}, badRequest("workspace is required")
	}
	if err := events.ValidWorkspaceName(reg.Workspace); err != nil {
		return Webhook{}, err
	}
	if len(d.known) > 0 && !d.known[reg.Workspace] {
		return Webhook{}, &events.Error{Kind: events.ErrUnknownWorkspace, Value: reg.Workspace, Why: "not served by this hub"}
	}
	exts, err := normaliseExtensions(reg.Extensions)
	if err != nil {
		return Webhook{}, err
	}
	now := time.Now().UTC()
	rec := record{
		ID:         idPrefix + ulid.Make().String(),
		URL:        u.String(),
		Workspace:  reg.Workspace,
		Paths:      reg.Paths,
		Extensions: exts,
		Types:      reg.Types,
		Secrets:    []secretEntry{{Secret: NewSecret()}},
		Status:     StatusPending,
		CreatedAt:  now,
		UpdatedAt:  now,
	}
	if _, err := newMatcher(&rec); err != nil {
		return Webhook{}, err
	}
	if err := d.guard.check(ctx, u); err != nil {
		return Webhook{}, err
	}
	ctx, cancel := withTimeout(ctx)
	defer cancel()
	rec.StartSeq, err = d.nextSeq(ctx, reg.Workspace)
	if err != nil {
		return Webhook{}, err
	}
	data, err := json.Marshal(rec)
	if err != nil {
		return Webhook{}, err
	}
	if _, err := d.hooks.Create(ctx, rec.ID, data); err != nil {
		return Webhook{}, err
	}
	d.log.Info("webhook registered", "webhook", rec.ID, "workspace", rec.Workspace, "url", redactURL(rec.URL))
	w := rec.view()
	w.Secret = rec.Secrets[0].Secret
	return w, nil
}

// nextSeq returns the seq the next event of ws will get: the journal's
// head plus one, or 1 while ws has no log yet.
func (d *Dispatcher) nextSeq(ctx context.Context, ws string) (uint64, error) {
	s, err := d.js.Stream(ctx, journal.StreamName(ws))
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		return 1, nil
	}
	if err != nil {
		return 0, fmt.Errorf("read head of %s: %w", ws, err)
	}
	return s.CachedInfo().State.LastSeq + 1, nil
}

// load reads a registration and its revision.
func (d *Dispatcher) load(ctx context.Context, id string) (*record, uint64, error) {
	if err := checkID(id); err != nil {
		return nil, 0, err
	}
	ctx, cancel := withTimeout(ctx)
	defer cancel()
	e, err := d.hooks.Get(ctx, id)
	if isNotFound(err) {
		return nil, 0, fmt.Errorf("%w: no webhook %s", ErrNotFound, id)
	}
	if err != nil {
		return nil, 0, err
	}
	rec, err := decodeRecord(e.Value())
	if err != nil {
		return nil, 0, err
	}
	return rec, e.Revision(), nil
}

func decodeRecord(b []byte) (*record, error) {
	var rec record
	if err := json.Unmarshal(b, &rec); err != nil {
		return nil, fmt.Errorf("decode webhook record: %w", err)
	}
	return &rec, nil
}

// modify applies fn to the stored registration with compare-and-set,
// retrying when someone else changed it meanwhile. fn may be called more
// than once; returning errSkip leaves the record as it is.
func (d *Dispatcher) modify(ctx context.Context, id string, fn func(*record) error) (*record, error) {
	for range casRetries {
		rec, rev, err := d.load(ctx, id)
		if err != nil {
			return nil, err
		}
		if err := fn(rec); errors.Is(err, errSkip) {
			return rec, nil
		} else if err != nil {
			return nil, err
		}
		rec.UpdatedAt = time.Now().UTC()
		data, err := json.Marshal(rec)
		if err != nil {
			return nil, err
		}
		uctx, cancel := withTimeout(ctx)
		newRev, err := d.hooks.Update(uctx, id, data, rev)
		cancel()
		if errors.Is(err, jetstream.ErrKeyExists) {
			continue // changed meanwhile: read again
		}
		if err != nil {
			return nil, err
		}
		d.remember(id, newRev, rec)
		return rec, nil
	}
	return nil, fmt.Errorf("update webhook %s: too much contention", id)
}

var errSkip = errors.New("webhook: no change")

// Get returns a webhook, without its secret.
func (d *Dispatcher) Get(ctx context.Context, id string) (Webhook, error) {
	rec, _, err := d.load(ctx, id)
	if err != nil {
		return Webhook{}, fmt.Errorf("get webhook: %w", err)
	}
	return rec.view(), nil
}

// List returns every webhook, oldest first, without secrets.
func (d *Dispatcher) List(ctx context.Context) ([]Webhook, error) {
	out, err := d.list(ctx)
	if err != nil {
		return nil, fmt.Errorf("list webhooks: %w", err)
	}
	return out, nil
}

func (d *Dispatcher) list(ctx context.Context) ([]Webhook, error) {
	es, err := entries(ctx, d.hooks, ">")
	if err != nil {
		return nil, err
	}
	out := make([]Webhook, 0, len(es))
	for _, e := range es {
		rec, err := decodeRecord(e.Value())
		if err != nil {
			return nil, err
		}
		out = append(out, rec.view())
	}
	slices.SortFunc(out, func(a, b Webhook) int { return strings.Compare(a.ID, b.ID) })
	return out, nil
}

// Delete removes a webhook, its consumers, its attempts and its failed
// deliveries. An attempt in flight may still complete.
func (d *Dispatcher) Delete(ctx context.Context, id string) error {
	if err := d.delete(ctx, id); err != nil {
		return fmt.Errorf("delete webhook: %w", err)
	}
	return nil
}

func (d *Dispatcher) delete(ctx context.Context, id string) error {
	rec, _, err := d.load(ctx, id)
	if err != nil {
		return err
	}
	ctx, cancel := withTimeout(ctx)
	defer cancel()
	if err := d.hooks.Purge(ctx, id); err != nil {
		return err
	}
	d.forget(id)
	var errs []error
	if err := d.js.DeleteConsumer(ctx, journal.StreamName(rec.Workspace), liveConsumer(id)); err != nil && !isNotFound(err) {
		errs = append(errs, err)
	}
	if err := d.replays.DeleteConsumer(ctx, replayConsumer(id)); err != nil && !isNotFound(err) {
		errs = append(errs, err)
	}
	if err := d.replays.Purge(ctx, jetstream.WithPurgeSubject(replaysSubject+id)); err != nil {
		errs = append(errs, err)
	}
	if err := d.attempts.Purge(ctx, jetstream.WithPurgeSubject(attemptsSubject+id)); err != nil {
		errs = append(errs, err)
	}
	if err := d.purgeFailed(ctx, id); err != nil {
		errs = append(errs, err)
	}
	for _, replay := range []bool{false, true} {
		if err := d.retries.Purge(ctx, retryKey(id, replay)); err != nil && !isNotFound(err) {
			errs = append(errs, err)
		}
	}
	d.statsMu.Lock()
	delete(d.stats, id)
	d.statsMu.Unlock()
	d.log.Info("webhook deleted", "webhook", id)
	return errors.Join(errs...)
}

// Rotate gives a webhook a new secret, which signs from now on; the
// current one keeps signing beside it for overlap (DefaultOverlap when
// overlap is 0, at most MaxOverlap), so that receivers can switch without
// losing a delivery. It returns the webhook with the new secret.
func (d *Dispatcher) Rotate(ctx context.Context, id string, overlap time.Duration) (Webhook, error) {
	w, err := d.rotate(ctx, id, overlap)
	if err != nil {
		return Webhook{}, fmt.Errorf("rotate secret: %w", err)
	}
	return w, nil
}

func (d *Dispatcher) rotate(ctx context.Context, id string, overlap time.Duration) (Webhook, error) {
	switch {
	case overlap == 0:
		overlap = DefaultOverlap
	case overlap < 0 || overlap > MaxOverlap:
		return Webhook{}, badRequest("overlap must be between 0 and %v", MaxOverlap)
	}
	secret := NewSecret()
	var expires time.Time
	rec, err := d.modify(ctx, id, func(r *record) error {
		now := time.Now().UTC()
		expires = now.Add(overlap)
		kept := []secretEntry{{Secret: secret}}
		for _, s := range r.Secrets {
			if !s.ExpiresAt.IsZero() && !now.Before(s.ExpiresAt) {
				continue // already expired: drop it
			}
			if s.ExpiresAt.IsZero() || s.ExpiresAt.After(expires) {
				s.ExpiresAt = expires
			}
			kept = append(kept, s)
		}
		r.Secrets = kept
		return nil
	})
	if err != nil {
		return Webhook{}, err
	}
	d.log.Info("webhook secret rotated", "webhook", id, "overlap", overlap)
	w := rec.view()
	w.Secret = secret
	w.PreviousSecretExpiresAt = expires
	return w, nil
}

// redactURL drops the query of a URL for logs: it may carry a token.
func redactURL(s string) string {
	if i := strings.IndexByte(s, '?'); i >= 0 {
		return s[:i] + "?…"
	}
	return s
}
