package natsd_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/filecast/filecast/events/eventstest"
	"github.com/filecast/filecast/events/natsd"
)

// fillStore publishes into a stream of its own until the server refuses,
// and returns the refusal.
func fillStore(t *testing.T, js jetstream.JetStream) error {
	t.Helper()
	ctx := context.Background()
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "FILLER", Subjects: []string{"filler"}}); err != nil {
		t.Fatal(err)
	}
	chunk := make([]byte, 32<<10)
	for range 200 {
		if _, err := js.Publish(ctx, "filler", chunk); err != nil {
			return err
		}
	}
	t.Fatal("the store took 6 MiB past its limit")
	return nil
}

func TestServer_Room(t *testing.T) {
	t.Run("storage limit", func(t *testing.T) {
		s := start(t, natsd.Options{StoreDir: filepath.Join(t.TempDir(), "js"), MaxStore: 1 << 20})
		if err := s.Room(); err != nil {
			t.Fatalf("Room() on an empty store = %v", err)
		}
		js, err := jetstream.New(s.Conn())
		if err != nil {
			t.Fatal(err)
		}
		refusal := fillStore(t, js)
		if !natsd.NoRoom(refusal) {
			t.Errorf("NoRoom(%v) = false for the server's refusal", refusal)
		}
		eventstest.Eventually(t, "Room() to see the store full", func() bool { return s.Room() != nil })
		if err := s.Room(); !errors.Is(err, natsd.ErrNoRoom) || !strings.Contains(err.Error(), "storage limit") {
			t.Fatalf("Room() on a full store = %v, want ErrNoRoom about the storage limit", err)
		}
		sp, ok := s.Space()
		if !ok || sp.Used < sp.Limit || sp.Limit != 1<<20 {
			t.Errorf("Space() = %+v, %v", sp, ok)
		}
		if err := js.DeleteStream(context.Background(), "FILLER"); err != nil {
			t.Fatal(err)
		}
		eventstest.Eventually(t, "Room() once the store has room again", func() bool { return s.Room() == nil })
	})
	t.Run("disk reserve", func(t *testing.T) {
		s := start(t, natsd.Options{StoreDir: filepath.Join(t.TempDir(), "js"), MinFree: 1 << 60})
		err := s.Room()
		if sp, _ := s.Space(); sp.Free < 0 {
			t.Skipf("\n!! the free space of this platform's disks is unknown: Room relies on JetStream's limit alone (err %v)", err)
		}
		if !errors.Is(err, natsd.ErrNoRoom) || !strings.Contains(err.Error(), "keeps free") {
			t.Errorf("Room() with a reserve larger than the disk = %v, want ErrNoRoom about the reserve", err)
		}
	})
	t.Run("no reserve", func(t *testing.T) {
		s := start(t, natsd.Options{StoreDir: filepath.Join(t.TempDir(), "js"), MinFree: -1})
		if err := s.Room(); err != nil {
			t.Errorf("Room() without a reserve = %v", err)
		}
		// Without a reserve, JetStream's own default limit stays.
		if sp, _ := s.Space(); sp.Limit >= 1<<50 {
			t.Errorf("Space().Limit = %d without a reserve, want JetStream's default", sp.Limit)
		}
	})
	t.Run("the disk is the only limit", func(t *testing.T) {
		// With the reserve, the store is bounded by the disk alone: a limit
		// computed from the space free at start would keep a store started
		// on a full disk full after space is freed.
		s := start(t, natsd.Options{StoreDir: filepath.Join(t.TempDir(), "js")})
		if sp, _ := s.Space(); sp.Limit < 1<<50 || sp.MinFree != natsd.DefaultMinFree {
			t.Errorf("Space() = %+v, want no limit of JetStream's own and the default reserve", sp)
		}
	})
}

func TestNoRoom(t *testing.T) {
	api := func(code jetstream.ErrorCode, desc string) error {
		return fmt.Errorf("nats: %w", &jetstream.APIError{Code: 500, ErrorCode: code, Description: desc})
	}
	for _, tt := range []struct {
		err  error
		want bool
	}{
		{api(10023, "insufficient resources"), true},
		{api(10047, "insufficient storage resources available"), true},
		{api(10069, "write /x/meta.inf.tmp: no space left on device"), true},
		{api(10077, "maximum bytes exceeded"), true},
		{api(10077, "message too large"), false},
		{api(10059, "stream not found"), false},
		{fmt.Errorf("write index: %w", errors.New("no space left on device")), true},
		{context.DeadlineExceeded, false},
		{nil, false},
	} {
		if got := natsd.NoRoom(tt.err); got != tt.want {
			t.Errorf("NoRoom(%v) = %v, want %v", tt.err, got, tt.want)
		}
	}
}
