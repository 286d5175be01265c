// Package delta tells what a file event changed: the unified diff of a
// file.updated (or of a file.moved that changed the content) against the
// content the file had before, the start of a created file's content, or
// why neither can be given. An agent told that a file changed can then see
// the change in a few hundred bytes instead of reading the file again.
//
// The contents come from a [Getter] — an [events.Source], whose Content
// reads the hub's content store — by the sha256 each event carries
// (SHA256, and PrevSHA256 for the content before). They are read from the
// store, never from the file as it is now, so the diffs of a page of the
// log are the same each time it is read, for as long as the store keeps
// the contents.
//
//	diffs, err := delta.Events(ctx, src, page.Events, delta.Options{})
//	if err != nil { log.Warn("some diffs could not be read", "err", err) } // those say not_stored
//	for i, ev := range page.Events {
//		fmt.Println(ev.Path, diffs[i].Text, diffs[i].Unavailable)
//	}
//
// Events and Since are safe for concurrent use.
package delta

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"sync"

	"github.com/sourcegraph/conc/pool"

	"github.com/filecast/filecast/events"
	"github.com/filecast/filecast/events/diff"
)

// Why a change has no diff (Diff.Unavailable).
const (
	// Binary: a content is not text.
	Binary = "binary"
	// TooLarge: a content is over the store's size limit, or the diffs of
	// one call would read more than Options.MaxFetch or be longer
	// together than Options.MaxTotal.
	TooLarge = "too_large"
	// NotStored: the store does not have a content (any more), or the
	// event does not say what the file had before.
	NotStored = "not_stored"
)

// Defaults of Options.
const (
	// DefaultMaxBytes bounds each diff: diff.DefaultMaxBytes, 2 KiB.
	DefaultMaxBytes = diff.DefaultMaxBytes
	// DefaultMaxFetch bounds the contents one call of Events reads.
	DefaultMaxFetch = 64 << 20
	// DefaultMaxTotal bounds the text of the diffs of one call of Events
	// together: 16 KiB, eight diffs at DefaultMaxBytes, dozens of small
	// edits.
	DefaultMaxTotal = 16 << 10
)

// fetchers bounds the contents read at once.
const fetchers = 4

// Getter reads an earlier content of a file of ws by its sha256;
// events.Source is one. It fails with events.ErrNotStored,
// events.ErrBinary or events.ErrTooLarge when the content is not kept.
type Getter interface {
	Content(ctx context.Context, ws, sha256 string) ([]byte, error)
}

// Options bounds the diffs; zero fields take the defaults.
type Options struct {
	// MaxBytes bounds the text of each diff; past it Diff.Truncated is
	// set. Default DefaultMaxBytes.
	MaxBytes int
	// MaxFetch bounds the content bytes one call of Events reads,
	// counting each event's size twice (its content and the one before).
	// The events past it get Unavailable TooLarge. Default
	// DefaultMaxFetch.
	MaxFetch int64
	// MaxTotal bounds the text of all the diffs of one call of Events
	// together, so that a page of many changes stays small: from the
	// first diff that would go past it on, the events get Unavailable
	// TooLarge. Default DefaultMaxTotal.
	MaxTotal int
}

func (o Options) maxBytes() int {
	if o.MaxBytes <= 0 {
		return DefaultMaxBytes
	}
	return o.MaxBytes
}

func (o Options) maxTotal() int {
	if o.MaxTotal <= 0 {
		return DefaultMaxTotal
	}
	return o.MaxTotal
}

func (o Options) maxFetch() int64 {
	if o.MaxFetch <= 0 {
		return DefaultMaxFetch
	}
	return o.MaxFetch
}

// Diff is what one event changed. Its JSON members are those of a
// list_changes event with "diff": true.
type Diff struct {
	// Text is a unified diff with three lines of context ("@@ -a,b +c,d
	// @@" hunks), or for a created file the start of its content as one
	// ("@@ -0,0 +1,n @@" and '+' lines). Lines ending with CRLF in both
	// versions are shown without the CR.
	Text string `json:"diff,omitempty"`
	// Truncated is set when Text stops at the bound.
	Truncated bool `json:"diff_truncated,omitempty"`
	// Unavailable says why there is no Text: Binary, TooLarge or
	// NotStored.
	Unavailable string `json:"diff_unavailable,omitempty"`
}

// Applies reports whether ev gets a Diff: a file.created, a file.updated,
// and a file.moved whose content changed (it has a PrevSHA256).
func Applies(ev events.Event) bool {
	switch ev.Type {
	case events.FileCreated, events.FileUpdated:
		return true
	case events.FileMoved:
		return ev.PrevSHA256 != ""
	}
	return false
}

// key names a content: ws and sha together.
type key struct{ ws, sha string }

// got is a content read, or why it could not be.
type got struct {
	data []byte
	why  string // Diff.Unavailable when data is not there
	err  error  // a failure other than the store not keeping it
}

// Events returns the Diff of each event of evs, in the same order: the
// zero Diff for events Applies refuses. Each content is read once, a few
// at a time. err joins the failures to read a content for another reason
// than the store not keeping it (the events concerned say NotStored), and
// is ctx's error when ctx ends; the Diffs are always returned.
func Events(ctx context.Context, g Getter, evs []events.Event, opts Options) ([]Diff, error) {
	out := make([]Diff, len(evs))
	// Which contents to read, within MaxFetch, in the order of the events
	// so that the same events always give the same answer.
	budget := opts.maxFetch()
	want := map[key]bool{}
	admitted := make([]bool, len(evs))
	for i, ev := range evs {
		if !Applies(ev) {
			continue
		}
		if ev.SHA256 == "" || ev.Type != events.FileCreated && ev.PrevSHA256 == "" {
			out[i].Unavailable = NotStored
			continue
		}
		cost := max(ev.Size, 0)
		if ev.Type != events.FileCreated {
			cost *= 2
		}
		if cost > budget {
			out[i].Unavailable = TooLarge
			budget = 0
			continue
		}
		budget -= cost
		admitted[i] = true
		want[key{ev.Workspace, ev.SHA256}] = true
		if ev.Type != events.FileCreated {
			want[key{ev.Workspace, ev.PrevSHA256}] = true
		}
	}
	contents := fetch(ctx, g, want)
	var errs []error
	for k, c := range contents {
		if c.err != nil {
			errs = append(errs, fmt.Errorf("read content %.12s of %s: %w", k.sha, k.ws, c.err))
		}
	}
	room := opts.maxTotal()
	for i, ev := range evs {
		if !admitted[i] {
			continue
		}
		if room < 0 {
			out[i].Unavailable = TooLarge
			continue
		}
		old := contents[key{ev.Workspace, ev.PrevSHA256}]
		if ev.Type == events.FileCreated {
			old = got{data: []byte{}}
		}
		out[i] = compare(old, contents[key{ev.Workspace, ev.SHA256}], opts)
		if room -= len(out[i].Text); room < 0 {
			out[i] = Diff{Unavailable: TooLarge}
		}
	}
	if err := ctx.Err(); err != nil {
		return out, err
	}
	return out, errors.Join(errs...)
}

// Since returns the Diff from the content since (the sha256 of a version
// of the file the caller saw before) to cur, the file's content now, as Events gives
// it for a file.updated; a zero Diff when cur has that very content. err
// is a failure to read the earlier content for another reason than the
// store not keeping it (the Diff then says NotStored), or ctx's error.
func Since(ctx context.Context, g Getter, ws, since string, cur []byte, opts Options) (Diff, error) {
	if sha256sum(cur) == since {
		return Diff{}, nil
	}
	old := read(ctx, g, key{ws, since})
	d := compare(old, got{data: cur}, opts)
	if err := ctx.Err(); err != nil {
		return d, err
	}
	if old.err != nil {
		return d, fmt.Errorf("read content %.12s of %s: %w", since, ws, old.err)
	}
	return d, nil
}

func sha256sum(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// compare diffs two contents read, or says why it cannot.
func compare(old, cur got, opts Options) Diff {
	for _, c := range []got{cur, old} {
		if c.data == nil {
			return Diff{Unavailable: c.why}
		}
	}
	if !diff.IsText(old.data) || !diff.IsText(cur.data) {
		return Diff{Unavailable: Binary}
	}
	r := diff.Unified(old.data, cur.data, diff.Options{MaxBytes: opts.maxBytes()})
	return Diff{Text: r.Text, Truncated: r.Truncated}
}

// fetch reads the contents wanted, fetchers at a time.
func fetch(ctx context.Context, g Getter, want map[key]bool) map[key]got {
	out := make(map[key]got, len(want))
	var mu sync.Mutex
	p := pool.New().WithMaxGoroutines(fetchers)
	for k := range want {
		p.Go(func() {
			c := read(ctx, g, k)
			mu.Lock()
			out[k] = c
			mu.Unlock()
		})
	}
	p.Wait()
	return out
}

// read reads one content, turning the store's refusals into reasons.
func read(ctx context.Context, g Getter, k key) got {
	data, err := g.Content(ctx, k.ws, k.sha)
	switch {
	case err == nil:
		if data == nil {
			data = []byte{}
		}
		return got{data: data}
	case errors.Is(err, events.ErrBinary):
		return got{why: Binary}
	case errors.Is(err, events.ErrTooLarge):
		return got{why: TooLarge}
	case errors.Is(err, events.ErrNotStored):
		return got{why: NotStored}
	}
	return got{why: NotStored, err: err}
}
