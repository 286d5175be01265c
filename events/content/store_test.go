package content_test

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/filecast/filecast/events/content"
	"github.com/filecast/filecast/events/eventstest"
	"github.com/filecast/filecast/events/natsd"
	"github.com/filecast/filecast/events/natsd/natstest"
)

// ws is the workspace the tests store contents in.
const ws = "docs"

func key(data []byte) string {
	sum := sha256.Sum256(data)
	return hex.EncodeToString(sum[:])
}

// open opens a store on nc and closes it when the test ends.
func open(t testing.TB, nc *nats.Conn, opts content.Options) *content.Store {
	t.Helper()
	s, err := content.Open(t.Context(), nc, opts)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// text returns n bytes of text that compresses like source code.
func text(seed uint64, n int) []byte {
	r := rand.New(rand.NewPCG(seed, seed))
	words := []string{"func", "return", "err", "if", "nil", "{", "}", "ctx", "string", "int", ":=", "for", "range", "\n\t", "\n"}
	var b strings.Builder
	fmt.Fprintf(&b, "// file %d\n", seed)
	for b.Len() < n {
		b.WriteString(words[r.IntN(len(words))])
		b.WriteByte(' ')
	}
	return []byte(b.String()[:n])
}

// random returns n bytes of text that do not compress: printable ASCII
// at random (S2 finds no repeats in it).
func random(seed uint64, n int) []byte {
	r := rand.New(rand.NewPCG(seed, seed+1))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(' ' + r.IntN(95))
	}
	return b
}

// binary returns n random bytes, NULs included: not text.
func binary(seed uint64, n int) []byte {
	r := rand.New(rand.NewPCG(seed, seed+2))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	b[0] = 0
	return b
}

func put(t testing.TB, s *content.Store, data []byte) string {
	t.Helper()
	k := key(data)
	if err := s.Put(t.Context(), ws, k, data); err != nil {
		t.Fatalf("Put(%.12s, %d bytes): %v", k, len(data), err)
	}
	return k
}

func flush(t testing.TB, s *content.Store) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	if err := s.Flush(ctx); err != nil {
		t.Fatalf("Flush: %v", err)
	}
}

func mustGet(t testing.TB, s *content.Store, k string, want []byte) {
	t.Helper()
	got, err := s.Get(t.Context(), ws, k)
	if err != nil {
		t.Fatalf("Get(%.12s): %v", k, err)
	}
	if string(got) != string(want) {
		t.Fatalf("Get(%.12s) = %d bytes, not the %d put", k, len(got), len(want))
	}
}

func notStored(t testing.TB, s *content.Store, k string) {
	t.Helper()
	if _, err := s.Get(t.Context(), ws, k); !errors.Is(err, content.ErrNotStored) {
		t.Fatalf("Get(%.12s) = %v, want ErrNotStored", k, err)
	}
}

func streamState(t testing.TB, nc *nats.Conn) *jetstream.StreamInfo {
	t.Helper()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	st, err := js.Stream(t.Context(), content.StreamName)
	if err != nil {
		t.Fatal(err)
	}
	info, err := st.Info(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	return info
}

func TestStore_PutGet(t *testing.T) {
	srv := natstest.Start(t)
	s := open(t, srv.Conn(), content.Options{})
	contents := map[string][]byte{
		"one line":             []byte("hello\n"),
		"source of 40 KiB":     text(1, 40<<10),
		"crlf":                 []byte("a\r\nb\r\n"),
		"Latin text":           []byte("Grüße, ça va?\n"),
		"1 MiB of source text": text(3, content.DefaultMaxFileSize),
	}
	keys := map[string]string{}
	for name, data := range contents {
		keys[name] = put(t, s, data)
	}
	flush(t, s)
	for name, data := range contents {
		t.Run(name, func(t *testing.T) { mustGet(t, s, keys[name], data) })
	}
	st := s.Stats()
	if st.Stored != int64(len(contents)) || st.Failed != 0 || st.Dropped != 0 {
		t.Errorf("Stats = %+v, want %d stored and no failure", st, len(contents))
	}
	if st.BytesStored >= st.BytesIn {
		t.Errorf("%d bytes stored for %d put: not compressed", st.BytesStored, st.BytesIn)
	}
	t.Logf("%d bytes stored for %d", st.BytesStored, st.BytesIn)
}

func TestStore_Get(t *testing.T) {
	srv := natstest.Start(t)
	s := open(t, srv.Conn(), content.Options{})
	notStored(t, s, key([]byte("never put")))
	got, err := s.Get(t.Context(), ws, content.EmptySHA256)
	if err != nil || len(got) != 0 {
		t.Errorf("Get(empty) = %q, %v; want empty content", got, err)
	}
	if content.EmptySHA256 != key(nil) {
		t.Errorf("EmptySHA256 is not the sha256 of nothing")
	}
}

func TestStore_BadKey(t *testing.T) {
	srv := natstest.Start(t)
	s := open(t, srv.Conn(), content.Options{})
	good := key([]byte("x"))
	for _, k := range []string{"", "abc", strings.ToUpper(good), good[:63], good + "0", good[:63] + "g", "../" + good[3:]} {
		if err := s.Put(t.Context(), ws, k, []byte("x")); !errors.Is(err, content.ErrBadKey) {
			t.Errorf("Put(%q) = %v, want ErrBadKey", k, err)
		}
		if _, err := s.Get(t.Context(), ws, k); !errors.Is(err, content.ErrBadKey) {
			t.Errorf("Get(%q) = %v, want ErrBadKey", k, err)
		}
		if s.Offer(ws, k, []byte("x")) || s.Retire(ws, k) {
			t.Errorf("Offer or Retire(%q) accepted a bad key", k)
		}
	}
}

// TestStore_PutTwice writes a content put twice once, and a second store
// on the same stream (another process) replaces it rather than adding a
// copy.
func TestStore_PutTwice(t *testing.T) {
	srv := natstest.Start(t)
	s := open(t, srv.Conn(), content.Options{})
	data := text(1, 5000)
	k := put(t, s, data)
	put(t, s, data)
	flush(t, s)
	if st := s.Stats(); st.Stored != 1 || st.Skipped != 1 {
		t.Errorf("Stats = %+v, want 1 stored and 1 skipped", st)
	}
	other := open(t, srv.Conn(), content.Options{})
	put(t, other, data)
	flush(t, other)
	if n := streamState(t, srv.Conn()).State.Msgs; n != 1 {
		t.Errorf("the stream holds %d messages, want 1", n)
	}
	mustGet(t, s, k, data)
}

func TestStore_TooLarge(t *testing.T) {
	srv := natstest.Start(t)
	t.Run("over MaxFileSize", func(t *testing.T) {
		s := open(t, srv.Conn(), content.Options{MaxFileSize: 1000})
		data := text(1, 1001)
		if err := s.Put(t.Context(), ws, key(data), data); !errors.Is(err, content.ErrTooLarge) {
			t.Fatalf("Put of 1001 bytes = %v, want ErrTooLarge", err)
		}
		if s.Offer(ws, key(data), data) {
			t.Fatal("Offer of 1001 bytes accepted")
		}
		ok := text(2, 1000)
		put(t, s, ok)
		other := key(text(3, 5000))
		if !s.MarkTooLarge(ws, other) {
			t.Fatal("MarkTooLarge refused")
		}
		flush(t, s)
		for _, k := range []string{key(data), other} {
			if _, err := s.Get(t.Context(), ws, k); !errors.Is(err, content.ErrTooLarge) {
				t.Errorf("Get(%.12s) of a content over the limit = %v, want ErrTooLarge", k, err)
			}
		}
		mustGet(t, s, key(ok), ok)
		if st := s.Stats(); st.TooLarge != 3 || st.Stored != 1 {
			t.Errorf("Stats = %+v, want 3 too large and 1 stored", st)
		}
		// Stored once the limit allows it.
		larger := open(t, srv.Conn(), content.Options{MaxFileSize: 2000})
		put(t, larger, data)
		flush(t, larger)
		mustGet(t, s, key(data), data)
	})
	t.Run("over the server's max payload", func(t *testing.T) {
		s := open(t, srv.Conn(), content.Options{MaxFileSize: 2 << 20})
		big := random(3, int(srv.Conn().MaxPayload())*3/2) // incompressible
		k := put(t, s, big)
		flush(t, s)
		if _, err := s.Get(t.Context(), ws, k); !errors.Is(err, content.ErrTooLarge) {
			t.Errorf("Get of a content over the max payload = %v, want ErrTooLarge", err)
		}
		if st := s.Stats(); st.TooLarge != 1 || st.Failed != 0 {
			t.Errorf("Stats = %+v, want 1 too large and no failure", st)
		}
	})
}

// TestStore_Binary keeps of a content that is not text only that fact:
// a message without data.
func TestStore_Binary(t *testing.T) {
	srv := natstest.Start(t)
	s := open(t, srv.Conn(), content.Options{})
	bin := binary(1, 50<<10)
	k := put(t, s, bin)
	if !s.Offer(ws, key(binary(2, 10)), binary(2, 10)) {
		t.Fatal("Offer refused")
	}
	flush(t, s)
	for _, k := range []string{k, key(binary(2, 10))} {
		if _, err := s.Get(t.Context(), ws, k); !errors.Is(err, content.ErrBinary) {
			t.Errorf("Get(%.12s) of binary content = %v, want ErrBinary", k, err)
		}
	}
	if st := s.Stats(); st.Binary != 2 || st.Stored != 0 || st.BytesIn != 0 {
		t.Errorf("Stats = %+v, want 2 binary and nothing stored", st)
	}
	if b := streamState(t, srv.Conn()).State.Bytes; b > 1024 {
		t.Errorf("the stream holds %d bytes for two binary contents", b)
	}
	if !s.Retire(ws, k) {
		t.Fatal("Retire refused")
	}
	flush(t, s)
	if _, err := s.Get(t.Context(), ws, k); !errors.Is(err, content.ErrBinary) {
		t.Errorf("Get of retired binary content = %v, want ErrBinary until it expires", err)
	}
}

// TestStore_Workspaces keeps each workspace's contents apart: a sha256
// stored in one is not stored in another.
func TestStore_Workspaces(t *testing.T) {
	srv := natstest.Start(t)
	s := open(t, srv.Conn(), content.Options{})
	secret := text(1, 500)
	docs, other := s.Workspace("docs"), s.Workspace("Other.ws")
	if err := docs.Put(t.Context(), key(secret), secret); err != nil {
		t.Fatal(err)
	}
	flush(t, s)
	if got, err := docs.Get(t.Context(), key(secret)); err != nil || string(got) != string(secret) {
		t.Fatalf("Get in its workspace = %q, %v", got, err)
	}
	if _, err := other.Get(t.Context(), key(secret)); !errors.Is(err, content.ErrNotStored) {
		t.Fatalf("Get in another workspace = %v, want ErrNotStored", err)
	}
	if got := content.Subject("Other.ws", key(secret)); strings.Count(got, ".") != 3 {
		t.Errorf("Subject = %q: the workspace is not one token", got)
	}
}

// TestStore_GetWaitsForQueued reads a content at once after offering it:
// Get waits for the write rather than answering not stored.
func TestStore_GetWaitsForQueued(t *testing.T) {
	srv := natstest.Start(t)
	gate := make(chan struct{})
	var once sync.Once
	release := func() { once.Do(func() { close(gate) }) }
	s := open(t, srv.Conn(), content.Options{Room: func() error { <-gate; return nil }})
	t.Cleanup(release)
	d := text(1, 4000)
	if !s.Offer(ws, key(d), d) {
		t.Fatal("Offer refused")
	}
	got := make(chan error, 1)
	go func() {
		_, err := s.Get(t.Context(), ws, key(d))
		got <- err
	}()
	select {
	case err := <-got:
		t.Fatalf("Get returned %v while the content was still queued", err)
	case <-time.After(50 * time.Millisecond):
	}
	release()
	if err := <-got; err != nil {
		t.Fatalf("Get of a content queued before = %v", err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Millisecond)
	defer cancel()
	if _, err := s.Get(ctx, ws, key(text(2, 10))); !errors.Is(err, content.ErrNotStored) {
		t.Fatalf("Get of a content never offered = %v", err)
	}
}

// TestStore_EvictsOldest fills a small store: the first contents are
// dropped, the last kept, and the stream stays within its cap.
func TestStore_EvictsOldest(t *testing.T) {
	srv := natstest.Start(t)
	const capBytes = 256 << 10
	s := open(t, srv.Conn(), content.Options{MaxBytes: capBytes})
	var keys []string
	var datas [][]byte
	for i := range 40 {
		d := random(uint64(i), 16<<10)
		keys, datas = append(keys, put(t, s, d)), append(datas, d)
		flush(t, s) // in order
	}
	notStored(t, s, keys[0])
	notStored(t, s, keys[10])
	for i := 35; i < 40; i++ {
		mustGet(t, s, keys[i], datas[i])
	}
	if b := streamState(t, srv.Conn()).State.Bytes; b > capBytes {
		t.Errorf("the stream holds %d bytes, over its cap of %d", b, capBytes)
	}
}

// TestStore_Retire drops a retired content after MaxAge, keeps the others,
// and a retired content put again is current again.
func TestStore_Retire(t *testing.T) {
	srv := natstest.Start(t)
	s := open(t, srv.Conn(), content.Options{MaxAge: time.Second})
	a, b, c := text(1, 3000), text(2, 3000), text(3, 3000)
	ka, kb, kc := put(t, s, a), put(t, s, b), put(t, s, c)
	flush(t, s)
	if !s.Retire(ws, ka) || !s.Retire(ws, kc) || !s.Retire(ws, key([]byte("never stored"))) {
		t.Fatal("Retire refused")
	}
	flush(t, s)
	if got := ttlOf(t, srv.Conn(), kc); got == "" {
		t.Fatal("a retired content has no TTL")
	}
	put(t, s, c) // current again
	flush(t, s)
	if got := ttlOf(t, srv.Conn(), kc); got != "" {
		t.Fatalf("a content put again after Retire has TTL %q", got)
	}
	eventstest.Eventually(t, "the retired content dropped", func() bool {
		_, err := s.Get(t.Context(), ws, ka)
		return errors.Is(err, content.ErrNotStored)
	})
	mustGet(t, s, kb, b)
	mustGet(t, s, kc, c)
	if st := s.Stats(); st.Retired != 2 || st.Failed != 0 || st.Stored != 4 {
		t.Errorf("Stats = %+v, want 4 stored, 2 retired, no failure", st)
	}
}

// ttlOf returns the Nats-TTL header of the content stored under k.
func ttlOf(t *testing.T, nc *nats.Conn, k string) string {
	t.Helper()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	st, err := js.Stream(t.Context(), content.StreamName)
	if err != nil {
		t.Fatal(err)
	}
	m, err := st.GetLastMsgForSubject(t.Context(), content.Subject(ws, k))
	if err != nil {
		t.Fatalf("read %.12s: %v", k, err)
	}
	return m.Header.Get(jetstream.MsgTTLHeader)
}

func TestStore_SurvivesRestart(t *testing.T) {
	dir := t.TempDir()
	srv := natstest.StartWith(t, natsd.Options{StoreDir: dir})
	s := open(t, srv.Conn(), content.Options{})
	data := text(1, 20<<10)
	k := put(t, s, data)
	flush(t, s)
	_ = s.Close()
	_ = srv.Close()

	srv = natstest.StartWith(t, natsd.Options{StoreDir: dir})
	s = open(t, srv.Conn(), content.Options{})
	mustGet(t, s, k, data)
}

// killChildEnv makes the test binary run as the process that
// TestStore_SurvivesKill kills: the value is its store folder.
const killChildEnv = "FILECAST_CONTENT_KILL_CHILD"

// TestStore_SurvivesKill stores contents in a child process, kills it
// with SIGKILL, and reads them back from the same store folder.
func TestStore_SurvivesKill(t *testing.T) {
	if dir := os.Getenv(killChildEnv); dir != "" {
		srv := natstest.StartWith(t, natsd.Options{StoreDir: dir})
		s := open(t, srv.Conn(), content.Options{})
		for i := range 100 {
			put(t, s, text(uint64(i), 8<<10))
		}
		flush(t, s)
		fmt.Println("stored")
		time.Sleep(time.Minute) // until killed
		os.Exit(3)
	}
	dir := t.TempDir()
	cmd := exec.Command(os.Args[0], "-test.run=^TestStore_SurvivesKill$")
	cmd.Env = append(os.Environ(), killChildEnv+"="+dir)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	lines := bufio.NewScanner(out)
	stored := false
	for lines.Scan() {
		if lines.Text() == "stored" {
			stored = true
			break
		}
	}
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait()
	if !stored {
		t.Fatal("the child process did not store its contents")
	}

	srv := natstest.StartWith(t, natsd.Options{StoreDir: dir})
	s := open(t, srv.Conn(), content.Options{})
	for i := range 100 {
		d := text(uint64(i), 8<<10)
		mustGet(t, s, key(d), d)
	}
}

// TestStore_Concurrent puts overlapping contents from many goroutines.
func TestStore_Concurrent(t *testing.T) {
	srv := natstest.Start(t)
	s := open(t, srv.Conn(), content.Options{})
	const distinct = 50
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 100 {
				d := text(uint64((g*7+i)%distinct), 4<<10)
				if i%2 == 0 {
					if err := s.Put(t.Context(), ws, key(d), d); err != nil {
						t.Error(err)
					}
				} else if !s.Offer(ws, key(d), d) {
					t.Error("Offer dropped a content with the queue nearly empty")
				}
				if i%10 == 0 {
					_, _ = s.Get(t.Context(), ws, key(d))
				}
			}
		})
	}
	wg.Wait()
	flush(t, s)
	for i := range distinct {
		d := text(uint64(i), 4<<10)
		mustGet(t, s, key(d), d)
	}
	if st := s.Stats(); st.Stored != distinct || st.Stored+st.Skipped != 800 {
		t.Errorf("Stats = %+v, want %d stored and the rest skipped", st, distinct)
	}
}

// TestStore_QueueFull holds the writers (a Room check that blocks) until
// the queue is full: Offer then drops, Put gives up when its context
// ends, and what was queued is stored once the writers go on.
func TestStore_QueueFull(t *testing.T) {
	srv := natstest.Start(t)
	gate := make(chan struct{})
	var once sync.Once
	release := func() { once.Do(func() { close(gate) }) }
	s := open(t, srv.Conn(), content.Options{
		QueueBytes: 64 << 10,
		Room:       func() error { <-gate; return nil },
	})
	t.Cleanup(release) // before Close, which waits for the writers
	var queued []string
	dropped := false
	for i := range 100 {
		d := text(uint64(i), 10<<10)
		if !s.Offer(ws, key(d), d) {
			dropped = true
			break
		}
		queued = append(queued, key(d))
	}
	if !dropped {
		t.Fatal("Offer never found the queue full")
	}
	if n := len(queued); n < 5 || n > 7 {
		t.Errorf("%d contents of 10 KiB queued in 64 KiB", n)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel()
	late := text(1000, 10<<10)
	if err := s.Put(ctx, ws, key(late), late); !errors.Is(err, content.ErrBusy) {
		t.Fatalf("Put with the queue full = %v, want ErrBusy", err)
	}
	release()
	flush(t, s)
	for _, k := range queued {
		if _, err := s.Get(t.Context(), ws, k); err != nil {
			t.Errorf("Get(%.12s) of a queued content: %v", k, err)
		}
	}
	notStored(t, s, key(late))
	if st := s.Stats(); st.Stored != int64(len(queued)) || st.Dropped != 2 {
		t.Errorf("Stats = %+v, want %d stored, 2 dropped", st, len(queued))
	}
}

func TestStore_NoRoom(t *testing.T) {
	srv := natstest.Start(t)
	s := open(t, srv.Conn(), content.Options{Room: func() error { return natsd.ErrNoRoom }})
	k := put(t, s, text(1, 100))
	flush(t, s)
	notStored(t, s, k)
	if st := s.Stats(); st.NoRoom != 1 || st.Stored != 0 {
		t.Errorf("Stats = %+v, want 1 refused for want of room", st)
	}
}

// TestStore_Corrupt reads a message whose data is not the content of its
// key as not stored.
func TestStore_Corrupt(t *testing.T) {
	srv := natstest.Start(t)
	s := open(t, srv.Conn(), content.Options{})
	js, err := jetstream.New(srv.Conn())
	if err != nil {
		t.Fatal(err)
	}
	k := key([]byte("the real content"))
	if _, err := js.Publish(t.Context(), content.Subject(ws, k), []byte("something else")); err != nil {
		t.Fatal(err)
	}
	notStored(t, s, k)
	k2 := key([]byte("compressed"))
	if _, err := js.PublishMsg(t.Context(), &nats.Msg{Subject: content.Subject(ws, k2), Header: nats.Header{"Filecast-Encoding": []string{"s2"}}, Data: []byte("not s2")}); err != nil {
		t.Fatal(err)
	}
	notStored(t, s, k2)
}

func TestStore_Close(t *testing.T) {
	srv := natstest.Start(t)
	s := open(t, srv.Conn(), content.Options{})
	d := text(1, 100)
	put(t, s, d)
	flush(t, s)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if err := s.Put(t.Context(), ws, key(d), d); !errors.Is(err, content.ErrClosed) {
		t.Errorf("Put after Close = %v", err)
	}
	if _, err := s.Get(t.Context(), ws, key(d)); !errors.Is(err, content.ErrClosed) {
		t.Errorf("Get after Close = %v", err)
	}
	if err := s.Flush(t.Context()); !errors.Is(err, content.ErrClosed) {
		t.Errorf("Flush after Close = %v", err)
	}
	if s.Offer(ws, key(d), d) || s.Retire(ws, key(d)) {
		t.Error("Offer or Retire accepted after Close")
	}
}

func TestOpen_Options(t *testing.T) {
	srv := natstest.Start(t)
	for _, opts := range []content.Options{
		{MaxAge: 500 * time.Millisecond},
		{MaxBytes: -1},
		{MaxFileSize: -1},
		{Replicas: 6},
		{QueueBytes: -1},
	} {
		if _, err := content.Open(t.Context(), srv.Conn(), opts); !errors.Is(err, content.ErrBadOptions) {
			t.Errorf("Open(%+v) = %v, want ErrBadOptions", opts, err)
		}
	}
	open(t, srv.Conn(), content.Options{})
	cfg := streamState(t, srv.Conn()).Config
	want := []any{int64(content.DefaultMaxBytes), int64(1), jetstream.DiscardOld, true, true, 1}
	got := []any{cfg.MaxBytes, cfg.MaxMsgsPerSubject, cfg.Discard, cfg.AllowDirect, cfg.AllowMsgTTL, cfg.Replicas}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("stream config (-want +got):\n%s", d)
	}
	open(t, srv.Conn(), content.Options{MaxBytes: 64 << 20})
	if got := streamState(t, srv.Conn()).Config.MaxBytes; got != 64<<20 {
		t.Errorf("MaxBytes after a second Open = %d, want %d", got, 64<<20)
	}
}

// TestOpen_NoRoom opens a store whose cap the server cannot reserve.
func TestOpen_NoRoom(t *testing.T) {
	srv := natstest.StartWith(t, natsd.Options{MaxStore: 8 << 20, MinFree: -1})
	_, err := content.Open(t.Context(), srv.Conn(), content.Options{MaxBytes: 64 << 20})
	if err == nil || !strings.Contains(err.Error(), "no room to reserve 64 MiB") {
		t.Fatalf("Open with a cap over the server's storage = %v", err)
	}
}

// TestStore_Replicated keeps contents on three nodes of a cluster.
func TestStore_Replicated(t *testing.T) {
	c := natstest.Cluster(t, 3)
	srv := natstest.StartWith(t, natsd.Options{URL: c.URLs(), Replicas: 3})
	s := open(t, srv.Conn(), content.Options{Replicas: srv.Replicas()})
	info := streamState(t, srv.Conn())
	if info.Config.Replicas != 3 || info.Cluster == nil || len(info.Cluster.Replicas) != 2 {
		t.Fatalf("stream replicas = %d, cluster %+v; want 3 copies", info.Config.Replicas, info.Cluster)
	}
	d := text(1, 10<<10)
	k := put(t, s, d)
	flush(t, s)
	mustGet(t, s, k, d)
}
