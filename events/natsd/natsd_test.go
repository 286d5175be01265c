package natsd_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/filecast/filecast/events/natsd"
)

func start(t *testing.T, opts natsd.Options) *natsd.Server {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 15*time.Second)
	defer cancel()
	s, err := natsd.Start(ctx, opts)
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// roundTrip publishes a message into a stream and reads it back.
func roundTrip(t *testing.T, nc *nats.Conn, stream string, payload string) uint64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{Name: stream, Subjects: []string{stream + ".>"}}); err != nil {
		t.Fatalf("create stream: %v", err)
	}
	ack, err := js.Publish(ctx, stream+".x", []byte(payload))
	if err != nil {
		t.Fatalf("publish: %v", err)
	}
	st, err := js.Stream(ctx, stream)
	if err != nil {
		t.Fatalf("stream: %v", err)
	}
	msg, err := st.GetMsg(ctx, ack.Sequence)
	if err != nil {
		t.Fatalf("get message: %v", err)
	}
	if string(msg.Data) != payload {
		t.Fatalf("got %q, want %q", msg.Data, payload)
	}
	return ack.Sequence
}

func TestStart_Embedded(t *testing.T) {
	var logs syncBuffer
	log := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	s := start(t, natsd.Options{StoreDir: t.TempDir(), Logger: log})
	if !s.Embedded() {
		t.Fatal("Embedded() = false, want true")
	}
	if !s.Conn().IsConnected() {
		t.Fatal("connection not connected")
	}
	if addr := s.NATSServer().Addr(); addr != nil {
		t.Fatalf("embedded server listens on %v, want no listener", addr)
	}
	if got := s.NATSServer().Name(); got != natsd.ServerName {
		t.Errorf("server name = %q, want %q", got, natsd.ServerName)
	}
	if got := s.Conn().Opts.Name; got != natsd.ServerName {
		t.Errorf("connection name = %q, want %q", got, natsd.ServerName)
	}
	roundTrip(t, s.Conn(), "T", "hello")
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if !s.Conn().IsClosed() {
		t.Error("connection still open after Close")
	}
	if s.NATSServer().Running() {
		t.Error("server still running after Close")
	}
	if err := s.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	// Notices (the startup banner) are not logged; only warnings and above.
	if strings.Contains(logs.String(), "level=INFO") || strings.Contains(logs.String(), "level=DEBUG") {
		t.Errorf("server logged below warning level:\n%s", logs.String())
	}
}

func TestStart_EmbeddedRestartKeepsState(t *testing.T) {
	dir := t.TempDir()
	s := start(t, natsd.Options{StoreDir: dir})
	first := roundTrip(t, s.Conn(), "KEEP", "one")
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = start(t, natsd.Options{StoreDir: dir})
	second := roundTrip(t, s.Conn(), "KEEP", "two")
	if second != first+1 {
		t.Fatalf("after restart seq = %d, want %d", second, first+1)
	}
}

func TestStart_NoStoreDir(t *testing.T) {
	_, err := natsd.Start(t.Context(), natsd.Options{})
	if !errors.Is(err, natsd.ErrNoStoreDir) {
		t.Fatalf("err = %v, want ErrNoStoreDir", err)
	}
}

// external runs a real nats-server listening on a random loopback port.
func external(t *testing.T, jetStream bool, storeDir string) *server.Server {
	t.Helper()
	ns, err := server.NewServer(&server.Options{
		Host: "127.0.0.1", Port: -1, JetStream: jetStream, StoreDir: storeDir, NoSigs: true, NoLog: true,
	})
	if err != nil {
		t.Fatal(err)
	}
	ns.Start()
	if !ns.ReadyForConnections(10 * time.Second) {
		t.Fatal("external server not ready")
	}
	t.Cleanup(func() { ns.Shutdown(); ns.WaitForShutdown() })
	return ns
}

func TestStart_External(t *testing.T) {
	ns := external(t, true, t.TempDir())
	s := start(t, natsd.Options{URL: ns.ClientURL(), StoreDir: filepath.Join(t.TempDir(), "unused")})
	if s.Embedded() {
		t.Fatal("Embedded() = true, want false")
	}
	if got, want := s.Conn().ConnectedUrl(), ns.ClientURL(); got != want {
		t.Errorf("connected to %q, want %q", got, want)
	}
	if got := s.Conn().Opts.MaxReconnect; got != -1 {
		t.Errorf("MaxReconnect = %d, want -1 (forever)", got)
	}
	roundTrip(t, s.Conn(), "EXT", "hello")
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if !ns.Running() {
		t.Error("Close shut down the external server")
	}
}

func TestStart_ExternalWithoutJetStream(t *testing.T) {
	ns := external(t, false, "")
	_, err := natsd.Start(t.Context(), natsd.Options{URL: ns.ClientURL()})
	if !errors.Is(err, natsd.ErrNoJetStream) {
		t.Fatalf("err = %v, want ErrNoJetStream", err)
	}
}

func TestStart_ExternalUnreachable(t *testing.T) {
	ns := external(t, false, "")
	url := ns.ClientURL()
	ns.Shutdown()
	ns.WaitForShutdown()
	_, err := natsd.Start(t.Context(), natsd.Options{URL: url})
	if err == nil || !strings.Contains(err.Error(), url) {
		t.Fatalf("err = %v, want an error naming %s", err, url)
	}
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}
