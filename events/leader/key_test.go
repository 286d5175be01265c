package leader_test

import (
	"context"
	"regexp"
	"strings"
	"testing"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/filecast/filecast/events/leader"
	"github.com/filecast/filecast/events/natsd"
)

func TestKey(t *testing.T) {
	tests := []struct{ in, want string }{
		{"docs", "docs"},
		{"my-repo", "my-repo"},
		{"a.b", "a_2eb"},
		{"a_b", "a_5fb"},
		{"a b/c", "a_20b_2fc"},
		{"été", "_c3_a9t_c3_a9"},
		{"*>", "_2a_3e"},
	}
	for _, tt := range tests {
		if got := leader.Key(tt.in); got != tt.want {
			t.Errorf("Key(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

var validKey = regexp.MustCompile(`^[-/_=.a-zA-Z0-9]+$`)

func FuzzKey(f *testing.F) {
	for _, s := range []string{"docs", "a.b", "a_2eb", "..", "é", "a b"} {
		f.Add(s, s+"x")
	}
	f.Fuzz(func(t *testing.T, a, b string) {
		ka, kb := leader.Key(a), leader.Key(b)
		if a != "" && (!validKey.MatchString(ka) || strings.HasPrefix(ka, ".") || strings.HasSuffix(ka, ".") || strings.Contains(ka, "..")) {
			t.Fatalf("Key(%q) = %q is not a valid key", a, ka)
		}
		if a != b && ka == kb {
			t.Fatalf("Key(%q) = Key(%q) = %q", a, b, ka)
		}
	})
}

func BenchmarkKey(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		_ = leader.Key("my workspace.v2")
	}
}

func BenchmarkElector_Leader(b *testing.B) {
	srv, err := natsd.Start(b.Context(), natsd.Options{StoreDir: b.TempDir()})
	if err != nil {
		b.Fatal(err)
	}
	defer srv.Close()
	js, err := jetstream.New(srv.Conn())
	if err != nil {
		b.Fatal(err)
	}
	e, err := leader.New(b.Context(), js, leader.Options{})
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(b.Context())
	running := make(chan struct{})
	done := make(chan error, 1)
	go func() {
		done <- e.Run(ctx, "ws", "hub0", func(ctx context.Context) error {
			close(running)
			<-ctx.Done()
			return nil
		})
	}()
	defer func() { cancel(); <-done }()
	<-running
	b.ReportAllocs()
	for b.Loop() {
		if id, err := e.Leader(b.Context(), "ws"); err != nil || id != "hub0" {
			b.Fatalf("Leader = %q, %v", id, err)
		}
	}
}
