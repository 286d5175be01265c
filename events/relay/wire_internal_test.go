package relay

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/nats-io/nats.go"

	"github.com/filecast/filecast/events"
	"github.com/filecast/filecast/events/wire"
)

func header(seq, total string) nats.Header {
	h := nats.Header{}
	h.Set(hdrSeq, seq)
	h.Set(hdrTotal, total)
	return h
}

func TestAssembler(t *testing.T) {
	type chunk struct{ seq, total, data string }
	tests := []struct {
		name   string
		chunks []chunk
		want   string // the payload, when complete
		err    error  // of the last chunk
	}{
		{"one", []chunk{{"0", "3", "abc"}}, "abc", nil},
		{"empty", []chunk{{"0", "0", ""}}, "", nil},
		{"three", []chunk{{"0", "5", "ab"}, {"1", "5", "cd"}, {"2", "5", "e"}}, "abcde", nil},
		{"gap", []chunk{{"0", "5", "ab"}, {"2", "5", "cd"}}, "", errProtocol},
		{"repeat", []chunk{{"0", "5", "ab"}, {"0", "5", "ab"}}, "", errProtocol},
		{"after the end", []chunk{{"0", "2", "ab"}, {"1", "2", "cd"}}, "", errProtocol},
		{"too long", []chunk{{"0", "3", "ab"}, {"1", "3", "cd"}}, "", errProtocol},
		{"total changes", []chunk{{"0", "5", "ab"}, {"1", "6", "cd"}}, "", errProtocol},
		{"empty chunk", []chunk{{"0", "5", "ab"}, {"1", "5", ""}}, "", errProtocol},
		{"over the limit", []chunk{{"0", "101", "ab"}}, "", events.ErrTooLarge},
		{"no seq", []chunk{{"", "3", "abc"}}, "", errProtocol},
		{"negative", []chunk{{"-1", "3", "abc"}}, "", errProtocol},
		{"leading zero", []chunk{{"00", "3", "abc"}}, "", errProtocol},
		{"sign", []chunk{{"+0", "3", "abc"}}, "", errProtocol},
		{"bad total", []chunk{{"0", "x", "abc"}}, "", errProtocol},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := newAssembler(100)
			var done bool
			var err error
			for i, c := range tt.chunks {
				done, err = a.add(header(c.seq, c.total), []byte(c.data))
				if i < len(tt.chunks)-1 && err != nil {
					t.Fatalf("chunk %d: %v", i, err)
				}
			}
			if !errors.Is(err, tt.err) || (err == nil) != (tt.err == nil) {
				t.Fatalf("err = %v, want %v", err, tt.err)
			}
			if tt.err == nil && (!done || string(a.payload()) != tt.want) {
				t.Fatalf("done %v, payload %q; want %q", done, a.payload(), tt.want)
			}
		})
	}
}

func TestSplit(t *testing.T) {
	for _, n := range []int{0, 1, 9, 10, 11, 95} {
		payload := bytes.Repeat([]byte("x"), n)
		chunks := split(payload, 10)
		if want := max(1, (n+9)/10); len(chunks) != want {
			t.Errorf("%d bytes: %d chunks, want %d", n, len(chunks), want)
		}
		if got := bytes.Join(chunks, nil); !bytes.Equal(got, payload) {
			t.Errorf("%d bytes: joined %d", n, len(got))
		}
	}
}

func TestWireError(t *testing.T) {
	exp := time.Date(2026, 11, 27, 10, 0, 0, 0, time.UTC)
	tests := []struct {
		name string
		err  error
		is   []error
	}{
		{"locked", fmt.Errorf("write a.md: %w", &events.LockError{Kind: events.ErrLocked, Path: "a.md", Holder: "claude#1", Mode: "exclusive", ExpiresAt: exp, Why: "wait"}), []error{events.ErrLocked}},
		{"stale", &events.LockError{Kind: events.ErrStale, Path: "a.md"}, []error{events.ErrStale}},
		{"input", fmt.Errorf("write ../a: %w", &events.Error{Kind: events.ErrBadPath, Value: "../a", Why: "leaves"}), []error{events.ErrBadPath}},
		{"sentinel", fmt.Errorf("read: %w", events.ErrNotFound), []error{events.ErrNotFound}},
		{"unknown workspace", &events.Error{Kind: events.ErrUnknownWorkspace, Value: "x"}, []error{events.ErrUnknownWorkspace}},
		{"no leader", fmt.Errorf("%w: gone", ErrNoLeader), []error{ErrNoLeader, events.ErrClosed}},
		{"canceled", fmt.Errorf("write: %w", context.Canceled), []error{context.Canceled}},
		{"deadline", fmt.Errorf("write: %w", context.DeadlineExceeded), []error{context.DeadlineExceeded}},
		{"bad request", wire.ErrBadRequest, []error{wire.ErrBadRequest}},
		{"internal", errors.New("disk on fire"), nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			payload, err := jsonResult(result{Error: newWireError(tt.err)})
			if err != nil {
				t.Fatal(err)
			}
			r, err := decodeResult(payload)
			if err != nil {
				t.Fatal(err)
			}
			got := r.Error.err()
			if got.Error() != tt.err.Error() {
				t.Errorf("text %q, want %q", got, tt.err)
			}
			for _, is := range tt.is {
				if !errors.Is(got, is) {
					t.Errorf("%v is not %v", got, is)
				}
			}
			s1, c1 := wire.ErrorCode(tt.err)
			s2, c2 := wire.ErrorCode(got)
			if s1 != s2 || c1 != c2 {
				t.Errorf("HTTP %d %s, want %d %s", s2, c2, s1, c1)
			}
			if want, ok := errors.AsType[*events.LockError](tt.err); ok {
				le, ok := errors.AsType[*events.LockError](got)
				if !ok {
					t.Fatalf("%v is not a *events.LockError", got)
				}
				if diff := cmp.Diff(*want, *le, cmpopts.EquateErrors()); diff != "" {
					t.Errorf("lock error (-want +got):\n%s", diff)
				}
			}
			if want, ok := errors.AsType[*events.Error](tt.err); ok {
				ie, ok := errors.AsType[*events.Error](got)
				if !ok || !cmp.Equal(*want, *ie, cmpopts.EquateErrors()) {
					t.Errorf("input error %+v, want %+v", ie, want)
				}
			}
		})
	}
}

func TestWriteRoundTrip(t *testing.T) {
	tests := []events.WriteRequest{
		{Workspace: "docs", Path: "a.md", Content: []byte("line\nline\n"), LockToken: "t", FencingToken: 7, Actor: "api:ci"},
		{Workspace: "docs", Path: "empty.md", Content: []byte{}},
		{Workspace: "docs", Path: "gone.md", Delete: true},
		{Workspace: "docs", Path: "bin", Content: []byte{0, '\n', 0xff}},
	}
	for _, w := range tests {
		got, err := decodeWrite("docs", encodeWrite(w))
		if err != nil {
			t.Fatalf("%s: %v", w.Path, err)
		}
		if diff := cmp.Diff(w, got, cmpopts.EquateEmpty()); diff != "" {
			t.Errorf("%s (-want +got):\n%s", w.Path, diff)
		}
	}
}

func jsonResult(r result) ([]byte, error) { return json.Marshal(r) }

// FuzzAssembler feeds arbitrary chunk headers and data: the assembler
// never panics, never completes with another length than the total it
// accepted, and reassembles any payload split by split.
func FuzzAssembler(f *testing.F) {
	f.Add([]byte("hello, relay"), uint8(5), []byte{0, 1, 2})
	f.Add([]byte{}, uint8(1), []byte{})
	f.Add(bytes.Repeat([]byte("x"), 300), uint8(7), []byte{9, 200, 3, 3})
	f.Fuzz(func(t *testing.T, payload []byte, size uint8, noise []byte) {
		// Round trip.
		chunks := split(payload, int(size)+1)
		a := newAssembler(len(payload))
		for i, c := range chunks {
			done, err := a.add(header(strconv.Itoa(i), strconv.Itoa(len(payload))), c)
			if err != nil {
				t.Fatalf("chunk %d: %v", i, err)
			}
			if done != (i == len(chunks)-1) {
				t.Fatalf("chunk %d of %d: done %v", i, len(chunks), done)
			}
		}
		if !bytes.Equal(a.payload(), payload) {
			t.Fatalf("reassembled %d bytes, want %d", len(a.payload()), len(payload))
		}
		// Arbitrary chunks: every 4 bytes of noise make one (seq, total,
		// length), cut from payload.
		b := newAssembler(200)
		for len(noise) >= 4 {
			seq, total, n := int(noise[0])%4, int(binary.BigEndian.Uint16(noise[1:3]))%256, int(noise[3])
			noise = noise[4:]
			data := payload[:min(n, len(payload))]
			done, err := b.add(header(strconv.Itoa(seq), strconv.Itoa(total)), data)
			if err != nil {
				return
			}
			if len(b.payload()) > b.total || b.total > 200 {
				t.Fatalf("holds %d bytes of %d (limit 200)", len(b.payload()), b.total)
			}
			if done && len(b.payload()) != b.total {
				t.Fatalf("done with %d bytes of %d", len(b.payload()), b.total)
			}
		}
	})
}

// FuzzDecodeWrite checks that any payload decodes to an error or to a
// request that encodes back to a payload decoding the same.
func FuzzDecodeWrite(f *testing.F) {
	f.Add(encodeWrite(events.WriteRequest{Path: "a.md", Content: []byte("x\ny"), Actor: "api:ci", FencingToken: 3}))
	f.Add(encodeWrite(events.WriteRequest{Path: "a.md", Delete: true}))
	f.Add([]byte(`{"path":"a","size":2}` + "\nab"))
	f.Add([]byte(`{"size":-1}` + "\n"))
	f.Add([]byte("no newline"))
	f.Fuzz(func(t *testing.T, payload []byte) {
		w, err := decodeWrite("docs", payload)
		if err != nil {
			if !errors.Is(err, errProtocol) {
				t.Fatalf("error %v is not errProtocol", err)
			}
			return
		}
		again, err := decodeWrite("docs", encodeWrite(w))
		if err != nil {
			t.Fatalf("re-decode: %v", err)
		}
		if diff := cmp.Diff(w, again, cmpopts.EquateEmpty()); diff != "" {
			t.Fatalf("round trip (-first +second):\n%s", diff)
		}
	})
}

// FuzzDecodeResult checks that any answer decodes to an error or to
// exactly one of event, listing and error, and that an error rebuilds.
func FuzzDecodeResult(f *testing.F) {
	f.Add([]byte(`{"event":{"event_id":"01J","seq":3,"type":"file.created","path":"a","size":1}}`))
	f.Add([]byte(`{"listing":{"workspace":"docs","files":[],"cursor":4}}`))
	f.Add([]byte(`{"error":{"code":"locked","message":"m","path":"a","holder":"h","expires_at":"2026-11-27T10:00:00Z"}}`))
	f.Add([]byte(`{"error":{"code":"bad_path","message":"m","input":{"value":"../a"},"cause":"canceled"}}`))
	f.Add([]byte(`{"event":{},"error":{}}`))
	f.Add([]byte(`null`))
	f.Fuzz(func(t *testing.T, payload []byte) {
		r, err := decodeResult(payload)
		if err != nil {
			if !errors.Is(err, errProtocol) {
				t.Fatalf("error %v is not errProtocol", err)
			}
			return
		}
		if r.Error != nil {
			e := r.Error.err()
			if e == nil || e.Error() == "" {
				t.Fatalf("error %+v rebuilt as %v", r.Error, e)
			}
			if r.Error.Message != "" && e.Error() != r.Error.Message {
				t.Fatalf("text %q, want %q", e, r.Error.Message)
			}
		}
	})
}
