package server

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"unicode/utf8"

	"github.com/mark3labs/mcp-go/mcp"

	"github.com/filecast/filecast/resources"
)

// The wire layer sits between a transport and mcp-go, over stdio and
// HTTP alike, and does two things mcp-go cannot be asked to do:
//
//   - It refuses messages that are not valid UTF-8. Go's JSON decoder turns
//     invalid bytes, and \u escapes of lone surrogates, into U+FFFD before
//     any handler sees them, so a path "\xff.txt" would be written as
//     "\ufffd.txt". Such a message is answered with a JSON-RPC parse error
//     (-32700) that says where the problem is, with the request's id when
//     it can be read, and never reaches a handler. (A notification that is
//     not valid UTF-8 gets no answer over stdio, where there is nobody to
//     answer to; over HTTP it is answered 400 with the error.)
//   - It gives resources/read failures their JSON-RPC codes: mcp-go answers
//     every error of a resource handler with -32603 (internal error); an
//     answer to a resources/read whose message is one of the failures
//     resources.Code knows gets that code instead (-32002 for a missing
//     resource, -32602 for an invalid URI or a file over the limit).

// textError says where a message stops being valid UTF-8.
type textError struct {
	offset int
	why    string
}

func (e *textError) Error() string {
	return fmt.Sprintf("Parse error: the message is not valid UTF-8: at byte %d, %s. Send JSON in UTF-8, and escape with \\u only whole characters.", e.offset, e.why)
}

// checkText reports whether msg is valid UTF-8 and none of its strings
// holds a \u escape of a lone surrogate.
func checkText(msg []byte) *textError {
	if utf8.Valid(msg) && !bytes.Contains(msg, []byte(`\u`)) {
		return nil
	}
	for i := 0; i < len(msg); {
		if msg[i] < utf8.RuneSelf {
			i++
			continue
		}
		r, n := utf8.DecodeRune(msg[i:])
		if r == utf8.RuneError && n <= 1 {
			return &textError{offset: i, why: fmt.Sprintf("0x%02x is not part of a UTF-8 character", msg[i])}
		}
		i += n
	}
	// Escapes: walk the strings, pairing surrogates.
	in := false
	for i := 0; i < len(msg); i++ {
		c := msg[i]
		switch {
		case !in:
			in = c == '"'
		case c == '"':
			in = false
		case c == '\\' && i+1 < len(msg):
			i++
			if msg[i] != 'u' {
				continue
			}
			start := i - 1
			u, ok := hex4(msg, i+1)
			if !ok {
				continue // the JSON decoder reports it
			}
			i += 4
			switch {
			case u >= 0xdc00 && u <= 0xdfff:
				return &textError{offset: start, why: fmt.Sprintf(`\u%04x is the second half of a surrogate pair without the first`, u)}
			case u >= 0xd800 && u <= 0xdbff:
				if i+6 < len(msg) && msg[i+1] == '\\' && msg[i+2] == 'u' {
					if lo, ok := hex4(msg, i+3); ok && lo >= 0xdc00 && lo <= 0xdfff {
						i += 6
						continue
					}
				}
				return &textError{offset: start, why: fmt.Sprintf(`\u%04x is the first half of a surrogate pair without the second`, u)}
			}
		}
	}
	return nil
}

// hex4 reads four hex digits at msg[i:].
func hex4(msg []byte, i int) (uint16, bool) {
	if i+4 > len(msg) {
		return 0, false
	}
	v, err := strconv.ParseUint(string(msg[i:i+4]), 16, 16)
	return uint16(v), err == nil
}

// envelope is what the wire layer reads of a message.
type envelope struct {
	ID     json.RawMessage `json:"id"`
	Method string          `json:"method"`
	Params struct {
		Meta map[string]any `json:"_meta"`
	} `json:"params"`
}

// modern reports whether the message is of protocol 2026-07-28 or later,
// which declares its version in _meta.
func (e envelope) modern() bool {
	v, _ := e.Params.Meta[mcp.MetaKeyProtocolVersion].(string)
	return mcp.IsModernProtocol(v)
}

func peek(msg []byte) (envelope, bool) {
	var e envelope
	if json.Unmarshal(msg, &e) != nil {
		return envelope{}, false
	}
	return e, true
}

// idKey is a request id in a canonical form, to match an answer's id.
func idKey(raw json.RawMessage) string {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var v any
	if dec.Decode(&v) != nil || v == nil {
		return ""
	}
	b, _ := json.Marshal(v)
	return string(b)
}

// parseError is the answer to a message that is not valid UTF-8: nil for
// a notification (it has a method and no id) when notify is false.
func parseError(msg []byte, te *textError, notify bool) []byte {
	var id any
	if e, ok := peek(msg); ok {
		if k := idKey(e.ID); k != "" {
			id = json.RawMessage(k)
		} else if e.Method != "" && !notify {
			return nil
		}
	}
	b, _ := json.Marshal(struct {
		JSONRPC string                  `json:"jsonrpc"`
		ID      any                     `json:"id"`
		Error   mcp.JSONRPCErrorDetails `json:"error"`
	}{mcp.JSONRPC_VERSION, id, mcp.JSONRPCErrorDetails{Code: mcp.PARSE_ERROR, Message: te.Error()}})
	return b
}

// recode gives an answer to a resources/read the code of its failure; it
// returns msg unchanged when it is no such failure.
func recode(msg []byte, modern bool) []byte {
	if !bytes.Contains(msg, []byte(strconv.Itoa(mcp.INTERNAL_ERROR))) {
		return msg
	}
	var a struct {
		JSONRPC string                   `json:"jsonrpc"`
		ID      json.RawMessage          `json:"id"`
		Error   *mcp.JSONRPCErrorDetails `json:"error"`
	}
	if json.Unmarshal(msg, &a) != nil || a.Error == nil || a.Error.Code != mcp.INTERNAL_ERROR {
		return msg
	}
	code := resources.Code(a.Error.Message, modern)
	if code == 0 {
		return msg
	}
	a.Error.Code = code
	b, err := json.Marshal(a)
	if err != nil {
		return msg
	}
	if bytes.HasSuffix(msg, []byte("\n")) {
		b = append(b, '\n')
	}
	return b
}

// maxTracked bounds the resources/read requests a stdio connection waits
// to answer; beyond it, answers keep mcp-go's code.
const maxTracked = 1024

// stdioWire wraps one stdio connection: admit filters the lines the
// client sends, writer takes the server's answers (whole messages, one
// Write each) and sendNotifications the messages that answer nothing.
type stdioWire struct {
	log *slog.Logger
	in  *bufio.Reader
	out io.Writer

	mu    sync.Mutex      // serialises writes to out and guards reads
	reads map[string]bool // ids of resources/read requests not answered yet → modern
}

func newStdioWire(in io.Reader, out io.Writer, log *slog.Logger) *stdioWire {
	return &stdioWire{log: log, in: bufio.NewReaderSize(in, 64<<10), out: out, reads: map[string]bool{}}
}

// admit checks one line and returns what to pass to mcp-go.
func (w *stdioWire) admit(line []byte) []byte {
	if te := checkText(line); te != nil {
		if resp := parseError(bytes.TrimSpace(line), te, false); resp != nil {
			w.send(append(resp, '\n'))
		} else {
			w.log.Warn("notification that is not valid UTF-8 dropped", "why", te.why, "offset", te.offset)
		}
		return nil
	}
	if bytes.Contains(line, []byte(`"resources/read"`)) {
		if e, ok := peek(line); ok && e.Method == string(mcp.MethodResourcesRead) {
			if k := idKey(e.ID); k != "" {
				w.mu.Lock()
				if len(w.reads) < maxTracked {
					w.reads[k] = e.modern()
				}
				w.mu.Unlock()
			}
		}
	}
	return line
}

// send writes one message of the wire layer's own.
func (w *stdioWire) send(msg []byte) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if _, err := w.out.Write(msg); err != nil {
		w.log.Debug("write parse error", "err", err)
	}
}

// sendNotifications writes msgs, whole messages that are no answers.
func (w *stdioWire) sendNotifications(msgs []byte) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	_, err := w.out.Write(msgs)
	return err
}

// writer is the io.Writer the server's answers are written to.
func (w *stdioWire) writer() io.Writer { return wireWriter{w} }

type wireWriter struct{ w *stdioWire }

func (ww wireWriter) Write(p []byte) (int, error) {
	w := ww.w
	w.mu.Lock()
	defer w.mu.Unlock()
	msg := p
	if len(w.reads) > 0 {
		var a struct {
			ID json.RawMessage `json:"id"`
		}
		if json.Unmarshal(p, &a) == nil {
			k := idKey(a.ID)
			if modern, ok := w.reads[k]; ok && k != "" {
				delete(w.reads, k)
				msg = recode(p, modern)
			}
		}
	}
	if _, err := w.out.Write(msg); err != nil {
		return 0, err
	}
	return len(p), nil
}

// wireHTTP applies the wire layer to the POST bodies of the HTTP
// endpoint and to the answers of resources/read requests.
func (s *Server) wireHTTP(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost || r.Body == nil || r.Body == http.NoBody {
			next.ServeHTTP(w, r)
			return
		}
		body, err := io.ReadAll(r.Body)
		if err != nil {
			status, msg := http.StatusBadRequest, "Parse error: the request body could not be read: "+err.Error()
			if _, ok := errors.AsType[*http.MaxBytesError](err); ok {
				status, msg = http.StatusRequestEntityTooLarge, fmt.Sprintf("Parse error: the request body is too large: the limit is %d bytes", MaxRequestBody)
			}
			writeRPCError(w, status, msg)
			return
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
		if te := checkText(body); te != nil {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusBadRequest)
			_, _ = w.Write(parseError(body, te, true))
			return
		}
		e, ok := peek(body)
		if !ok || e.Method != string(mcp.MethodResourcesRead) {
			next.ServeHTTP(w, r)
			return
		}
		rec := &recodeWriter{ResponseWriter: w, modern: e.modern() || mcp.IsModernProtocol(r.Header.Get("Mcp-Protocol-Version"))}
		next.ServeHTTP(rec, r)
		rec.finish()
	})
}

func writeRPCError(w http.ResponseWriter, status int, msg string) {
	b, _ := json.Marshal(mcp.JSONRPCError{JSONRPC: mcp.JSONRPC_VERSION, Error: mcp.JSONRPCErrorDetails{Code: mcp.PARSE_ERROR, Message: msg}})
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

// recodeWriter holds back the answer to one resources/read until the
// handler is done, then gives a failure its code: the answer is one JSON
// message, or an event stream whose data lines carry messages.
type recodeWriter struct {
	http.ResponseWriter
	modern bool
	status int
	body   bytes.Buffer
}

func (r *recodeWriter) WriteHeader(status int) {
	if r.status == 0 {
		r.status = status
	}
}

func (r *recodeWriter) Write(p []byte) (int, error) {
	if r.status == 0 {
		r.status = http.StatusOK
	}
	return r.body.Write(p)
}

// Flush is a no-op: the answer goes out in finish.
func (r *recodeWriter) Flush() {}

func (r *recodeWriter) finish() {
	out := r.body.Bytes()
	if strings.HasPrefix(r.Header().Get("Content-Type"), "text/event-stream") {
		lines := bytes.SplitAfter(out, []byte("\n"))
		for i, l := range lines {
			if data, ok := bytes.CutPrefix(l, []byte("data: ")); ok {
				lines[i] = append([]byte("data: "), recode(data, r.modern)...)
			}
		}
		out = bytes.Join(lines, nil)
	} else {
		out = recode(out, r.modern)
	}
	r.Header().Del("Content-Length")
	if r.status != 0 {
		r.ResponseWriter.WriteHeader(r.status)
	}
	_, _ = r.ResponseWriter.Write(out)
}
