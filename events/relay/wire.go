package relay

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/filecast/filecast/events"
	"github.com/filecast/filecast/events/wire"
)

// Message headers of the relay protocol. See the package doc.
const (
	hdrSeq    = "Relay-Seq"    // index of a chunk in its payload, from 0
	hdrTotal  = "Relay-Total"  // length of the whole payload in bytes
	hdrKind   = "Relay-Kind"   // on answers: kindMore or kindResult
	hdrUpload = "Relay-Upload" // with kindMore: where the rest of the request goes
	hdrBudget = "Relay-Budget" // on requests: milliseconds the caller still waits

	kindMore   = "more"
	kindResult = "result"
)

// Bounds of what a peer may send.
const (
	// maxWritePayload bounds an assembled write request: the largest
	// content plus its description.
	maxWritePayload = events.MaxReadSize + 64<<10
	// maxFilesPayload bounds an assembled files request.
	maxFilesPayload = 64 << 10
	// maxAnswer bounds the answer to a write: an event or an error.
	maxAnswer = 1 << 20
	// MaxListing bounds the JSON of a listing relayed in answer to Files,
	// about seven million files.
	MaxListing = 1 << 30
	// defaultChunk is the chunk size when the connection does not know the
	// server's max_payload yet.
	defaultChunk = 1<<20 - headroom
	// headroom is left in each message for the headers and the protocol.
	headroom = 8 << 10
	// minChunk is the smallest chunk used, whatever the server allows.
	minChunk = 1 << 10
	// maxPrealloc bounds the buffer allocated up front for a payload, so
	// that a declared total does not by itself allocate.
	maxPrealloc = 16 << 20
)

// errProtocol marks a message that does not follow the protocol.
var errProtocol = errors.New("relay: malformed message")

// chunkSize returns the payload bytes carried per message on nc.
func chunkSize(nc *nats.Conn) int {
	mp := nc.MaxPayload()
	if mp <= 0 {
		return defaultChunk
	}
	return max(int(mp)-headroom, int(mp)/2, minChunk)
}

// split cuts payload into chunks of at most size bytes; an empty payload
// is one empty chunk. The chunks share payload's memory.
func split(payload []byte, size int) [][]byte {
	if len(payload) == 0 {
		return [][]byte{payload}
	}
	out := make([][]byte, 0, (len(payload)+size-1)/size)
	for len(payload) > 0 {
		n := min(size, len(payload))
		out = append(out, payload[:n:n])
		payload = payload[n:]
	}
	return out
}

// chunkMsg returns the message carrying chunk seq of a payload of total
// bytes to subject.
func chunkMsg(subject string, seq, total int, chunk []byte) *nats.Msg {
	m := nats.NewMsg(subject)
	m.Header.Set(hdrSeq, strconv.Itoa(seq))
	m.Header.Set(hdrTotal, strconv.Itoa(total))
	m.Data = chunk
	return m
}

// assembler puts a payload back together from its chunks, which must
// arrive in order, each declaring the same total.
type assembler struct {
	max   int // largest total accepted
	total int // -1 until the first chunk
	next  int // seq expected next
	buf   []byte
}

func newAssembler(limit int) *assembler { return &assembler{max: limit, total: -1} }

// add takes the next chunk from its message header and data and reports
// whether the payload is now complete. An error (errProtocol, or
// events.ErrTooLarge for a total over the limit) is final.
func (a *assembler) add(h nats.Header, data []byte) (bool, error) {
	seq, err := headerInt(h, hdrSeq)
	if err != nil {
		return false, err
	}
	total, err := headerInt(h, hdrTotal)
	if err != nil {
		return false, err
	}
	switch {
	case a.total >= 0 && a.total == len(a.buf) && a.next > 0:
		return false, fmt.Errorf("%w: chunk %d after the payload was complete", errProtocol, seq)
	case seq != a.next:
		return false, fmt.Errorf("%w: chunk %d where %d was expected (a message was lost)", errProtocol, seq, a.next)
	case a.total < 0 && total > a.max:
		return false, fmt.Errorf("%w: a payload of %d bytes, the limit is %d", events.ErrTooLarge, total, a.max)
	case a.total >= 0 && total != a.total:
		return false, fmt.Errorf("%w: chunk %d declares %d bytes, the first declared %d", errProtocol, seq, total, a.total)
	case len(a.buf)+len(data) > total:
		return false, fmt.Errorf("%w: chunks of more than the %d bytes declared", errProtocol, total)
	case len(data) == 0 && len(a.buf) < total:
		return false, fmt.Errorf("%w: empty chunk %d of an unfinished payload", errProtocol, seq)
	}
	if a.total < 0 {
		a.total = total
		if len(data) == total {
			a.buf = data // one chunk: no copy
		} else {
			a.buf = make([]byte, 0, min(total, maxPrealloc))
			a.buf = append(a.buf, data...)
		}
	} else {
		a.buf = append(a.buf, data...)
	}
	a.next++
	return len(a.buf) == a.total, nil
}

// payload returns the assembled payload once add has reported it complete.
func (a *assembler) payload() []byte { return a.buf }

func headerInt(h nats.Header, key string) (int, error) {
	v := h.Get(key)
	n, err := strconv.Atoi(v)
	if err != nil || n < 0 || v != strconv.Itoa(n) {
		return 0, fmt.Errorf("%w: header %s is %q", errProtocol, key, v)
	}
	return n, nil
}

// writeMeta describes a write request; the content follows it.
type writeMeta struct {
	Path         string `json:"path"`
	Delete       bool   `json:"delete,omitempty"`
	LockToken    string `json:"lock_token,omitempty"`
	FencingToken uint64 `json:"fencing_token,omitempty"`
	Actor        string `json:"actor,omitempty"`
	Size         int    `json:"size"`
}

// encodeWrite returns the payload of a write request: its description as
// one line of JSON, a newline, then the content as is. The workspace is
// not part of it: the subject names it.
func encodeWrite(w events.WriteRequest) []byte {
	meta, _ := json.Marshal(writeMeta{ // cannot fail: strings and numbers
		Path: w.Path, Delete: w.Delete, LockToken: w.LockToken,
		FencingToken: w.FencingToken, Actor: w.Actor, Size: len(w.Content),
	})
	out := make([]byte, 0, len(meta)+1+len(w.Content))
	out = append(out, meta...)
	out = append(out, '\n')
	return append(out, w.Content...)
}

// decodeWrite inverts encodeWrite for workspace ws. The content shares
// payload's memory.
func decodeWrite(ws string, payload []byte) (events.WriteRequest, error) {
	line, content, ok := bytes.Cut(payload, []byte{'\n'})
	if !ok {
		return events.WriteRequest{}, fmt.Errorf("%w: a write request without its description line", errProtocol)
	}
	var m writeMeta
	if err := json.Unmarshal(line, &m); err != nil {
		return events.WriteRequest{}, fmt.Errorf("%w: write request: %v", errProtocol, err)
	}
	if m.Size != len(content) {
		return events.WriteRequest{}, fmt.Errorf("%w: write request declares %d bytes of content and carries %d", errProtocol, m.Size, len(content))
	}
	w := events.WriteRequest{
		Workspace: ws, Path: m.Path, Delete: m.Delete, LockToken: m.LockToken,
		FencingToken: m.FencingToken, Actor: m.Actor, Content: content,
	}
	if m.Delete && len(content) == 0 {
		w.Content = nil
	}
	return w, nil
}

// filesRequest is the payload of a files request.
type filesRequest struct {
	Prefix string `json:"prefix"`
}

// result is the payload of every answer: exactly one member is set.
type result struct {
	Event   *events.Event   `json:"event,omitempty"`
	Listing *events.Listing `json:"listing,omitempty"`
	Error   *wireError      `json:"error,omitempty"`
}

// wireError is an error as it crosses the relay: the hub API's error
// detail (its code names the events sentinel), plus what the API leaves
// out so that the caller's errors.Is and errors.As see what a local call
// would have returned.
type wireError struct {
	wire.ErrorDetail
	// Cause is no_leader, canceled or deadline_exceeded when the error
	// is (or wraps) ErrNoLeader or a context error.
	Cause string `json:"cause,omitempty"`
	// Input carries the fields of an *events.Error.
	Input *wireInput `json:"input,omitempty"`
}

type wireInput struct {
	Value string `json:"value"`
	Why   string `json:"why,omitempty"`
}

// Causes of a wireError.
const (
	causeNoLeader = "no_leader"
	causeCanceled = "canceled"
	causeDeadline = "deadline_exceeded"
)

// newWireError describes err for the caller.
func newWireError(err error) *wireError {
	_, code := wire.ErrorCode(err)
	w := &wireError{ErrorDetail: wire.ErrorDetail{Code: code, Message: err.Error()}}
	if le, ok := errors.AsType[*events.LockError](err); ok {
		w.Path, w.Holder, w.Mode, w.Why = le.Path, le.Holder, le.Mode, le.Why
		if !le.ExpiresAt.IsZero() {
			t := le.ExpiresAt.UTC()
			w.ExpiresAt = &t
		}
	} else if ie, ok := errors.AsType[*events.Error](err); ok {
		w.Input = &wireInput{Value: ie.Value, Why: ie.Why}
	}
	switch {
	case errors.Is(err, ErrNoLeader):
		w.Cause = causeNoLeader
	case errors.Is(err, context.Canceled):
		w.Cause = causeCanceled
	case errors.Is(err, context.DeadlineExceeded):
		w.Cause = causeDeadline
	}
	return w
}

// err rebuilds the error: its text is the original's, and it wraps the
// sentinel its code names (as an *events.LockError or *events.Error with
// their fields when the original was one) and its cause.
func (w *wireError) err() error {
	var errs []error
	kind := wire.CodeError(w.Code)
	switch le := w.LockError(); {
	case le != nil:
		errs = append(errs, le)
	case kind != nil && w.Input != nil:
		errs = append(errs, &events.Error{Kind: kind, Value: w.Input.Value, Why: w.Input.Why})
	case kind != nil:
		errs = append(errs, kind)
	}
	switch w.Cause {
	case causeNoLeader:
		errs = append(errs, ErrNoLeader)
	case causeCanceled:
		errs = append(errs, context.Canceled)
	case causeDeadline:
		errs = append(errs, context.DeadlineExceeded)
	}
	msg := w.Message
	if msg == "" {
		msg = "relay: the watching hub failed (" + w.Code + ")"
	}
	return &remoteError{msg: msg, errs: errs}
}

// remoteError is an error returned by the watching hub.
type remoteError struct {
	msg  string
	errs []error
}

func (e *remoteError) Error() string   { return e.msg }
func (e *remoteError) Unwrap() []error { return e.errs }

// decodeResult parses an answer's payload.
func decodeResult(payload []byte) (result, error) {
	var r result
	if err := json.Unmarshal(payload, &r); err != nil {
		return result{}, fmt.Errorf("%w: answer: %v", errProtocol, err)
	}
	n := 0
	for _, set := range []bool{r.Event != nil, r.Listing != nil, r.Error != nil} {
		if set {
			n++
		}
	}
	if n != 1 {
		return result{}, fmt.Errorf("%w: an answer with %d of event, listing and error", errProtocol, n)
	}
	return r, nil
}

// budget returns the header value for the time left until deadline.
func budget(deadline time.Time) string {
	return strconv.FormatInt(max(time.Until(deadline).Milliseconds(), 1), 10)
}

// parseBudget reads a request's budget; ok is false when absent or invalid.
func parseBudget(h nats.Header) (time.Duration, bool) {
	ms, err := strconv.ParseInt(h.Get(hdrBudget), 10, 64)
	if err != nil || ms <= 0 || ms > int64(24*time.Hour/time.Millisecond) {
		return 0, false
	}
	return time.Duration(ms) * time.Millisecond, true
}
