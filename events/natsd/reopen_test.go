package natsd_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/filecast/filecast/events/eventstest"
	"github.com/filecast/filecast/events/natsd"
	"github.com/filecast/filecast/events/natsd/natstest"
)

// received collects what a consumer is given.
type received struct {
	mu   sync.Mutex
	data []string
}

func (r *received) add(s string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.data = append(r.data, s)
}

func (r *received) has(s string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, d := range r.data {
		if d == s {
			return true
		}
	}
	return false
}

// TestServer_ReopensAfterAFailedWrite fills the disk of the embedded
// store (a small tmpfs) under JetStream, with no reserve, so that the
// store fails a write and then refuses every later one. Once space is
// freed the server opens the store again by itself: writes are taken
// again (the one that failed, sent again with its message ID, is stored
// once), and an ordered consumer, a key-value watcher and a durable
// consumer opened before all get what is written afterwards, on the same
// connection.
func TestServer_ReopensAfterAFailedWrite(t *testing.T) {
	disk := natstest.SmallDisk(t, "16m")
	s := start(t, natsd.Options{StoreDir: filepath.Join(disk, "js"), MinFree: -1})
	ctx := t.Context()
	js, err := jetstream.New(s.Conn())
	if err != nil {
		t.Fatal(err)
	}
	stream, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "S", Subjects: []string{"s"}, Duplicates: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := js.Publish(ctx, "s", []byte("before"), jetstream.WithMsgID("before")); err != nil {
		t.Fatal(err)
	}
	kv, err := js.CreateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: "KV"})
	if err != nil {
		t.Fatal(err)
	}

	// Three readers, opened before the disk fills.
	var ordered, watched, durable received
	oc, err := stream.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{})
	if err != nil {
		t.Fatal(err)
	}
	octx, err := oc.Consume(func(m jetstream.Msg) { ordered.add(string(m.Data())) }, jetstream.PullHeartbeat(time.Second), jetstream.PullExpiry(5*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	defer octx.Stop()
	w, err := kv.WatchAll(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = w.Stop() }()
	go func() {
		for e := range w.Updates() {
			if e != nil {
				watched.add(string(e.Value()))
			}
		}
	}()
	dc, err := stream.CreateConsumer(ctx, jetstream.ConsumerConfig{Durable: "D", AckPolicy: jetstream.AckExplicitPolicy})
	if err != nil {
		t.Fatal(err)
	}
	dctx, err := dc.Consume(func(m jetstream.Msg) { durable.add(string(m.Data())); _ = m.Ack() }, jetstream.PullHeartbeat(time.Second), jetstream.PullExpiry(5*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	defer dctx.Stop()
	eventstest.Eventually(t, "the readers to get the first message", func() bool { return ordered.has("before") && durable.has("before") })

	// The disk fills under the store, which knows nothing of it (no
	// reserve): a write fails.
	filler := natstest.Fill(t, disk)
	failed := ""
	for i := 0; failed == "" && i < 1000; i++ {
		id := fmt.Sprint("full-", i)
		pctx, cancel := context.WithTimeout(ctx, time.Second)
		_, err := js.Publish(pctx, "s", make([]byte, 4<<10), jetstream.WithMsgID(id))
		cancel()
		if err != nil {
			failed = id
		}
	}
	if failed == "" {
		t.Fatal("the store took 4 MiB on a full disk")
	}
	if err := s.Room(); !errors.Is(err, natsd.ErrNoRoom) || !strings.Contains(err.Error(), "failed a write") {
		t.Fatalf("Room() after a failed write = %v, want ErrNoRoom saying the store failed a write", err)
	}
	pctx, cancel := context.WithTimeout(ctx, time.Second)
	_, err = js.Publish(pctx, "s", []byte("refused"), jetstream.WithMsgID(failed))
	cancel()
	if err == nil {
		t.Fatal("the store took a write after it failed one")
	}
	if n := s.Reopened(); n != 0 {
		t.Fatalf("Reopened() = %d while the disk is full", n)
	}

	// Space comes back: the store is opened again, in process.
	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	eventstest.Eventually(t, "the store to be opened again", func() bool { return s.Reopened() == 1 && s.Room() == nil })
	var ack *jetstream.PubAck
	eventstest.Eventually(t, "the failed write to be taken", func() bool {
		pctx, cancel := context.WithTimeout(ctx, time.Second)
		defer cancel()
		ack, err = js.Publish(pctx, "s", []byte("after"), jetstream.WithMsgID(failed))
		return err == nil
	})
	again, err := js.Publish(ctx, "s", []byte("after"), jetstream.WithMsgID(failed))
	if err != nil || !again.Duplicate || again.Sequence != ack.Sequence {
		t.Errorf("the same write sent again = %+v, %v; want a duplicate of seq %d", again, err, ack.Sequence)
	}
	if _, err := kv.PutString(ctx, "k", "after"); err != nil {
		t.Fatalf("key-value put after the reopening: %v", err)
	}
	eventstest.Eventually(t, "the ordered consumer to resume", func() bool { return ordered.has("after") })
	eventstest.Eventually(t, "the key-value watcher to resume", func() bool { return watched.has("after") })
	eventstest.Eventually(t, "the durable consumer to resume", func() bool { return durable.has("after") })
	if n := s.Reopened(); n != 1 {
		t.Errorf("Reopened() = %d, want 1", n)
	}
	if !s.Conn().IsConnected() {
		t.Error("the in-process connection was lost")
	}
}

// TestServer_StaysBrokenWhileTheDiskIsFull checks that the store is not
// opened again while its disk has no room.
func TestServer_StaysBrokenWhileTheDiskIsFull(t *testing.T) {
	disk := natstest.SmallDisk(t, "16m")
	s := start(t, natsd.Options{StoreDir: filepath.Join(disk, "js"), MinFree: -1})
	js, err := jetstream.New(s.Conn())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := js.CreateStream(t.Context(), jetstream.StreamConfig{Name: "S", Subjects: []string{"s"}}); err != nil {
		t.Fatal(err)
	}
	natstest.Fill(t, disk)
	eventstest.Eventually(t, "a write to fail", func() bool {
		ctx, cancel := context.WithTimeout(t.Context(), time.Second)
		defer cancel()
		_, err := js.Publish(ctx, "s", make([]byte, 4<<10))
		return err != nil
	})
	eventstest.Eventually(t, "Room to say so", func() bool { return s.Room() != nil })
	// The server looks at the disk every half second; give it a few looks.
	if eventstest.Poll(3*time.Second, func() bool { return s.Reopened() > 0 }) {
		t.Error("the store was opened again on a full disk")
	}
}

// TestServer_RestartsStoppedJetStream stops JetStream the way the server
// does after some store errors: Room says so, and the server starts it
// again by itself, with what the store held.
func TestServer_RestartsStoppedJetStream(t *testing.T) {
	s := start(t, natsd.Options{StoreDir: t.TempDir(), MinFree: -1})
	seq := roundTrip(t, s.Conn(), "KEEP", "one")
	if err := s.NATSServer().ShutdownJetStream(); err != nil {
		t.Fatal(err)
	}
	if err := s.Room(); !errors.Is(err, natsd.ErrNoRoom) {
		t.Errorf("Room() with JetStream stopped = %v, want ErrNoRoom", err)
	}
	eventstest.Eventually(t, "JetStream to start again", func() bool { return s.Reopened() == 1 && s.Room() == nil })
	if got := roundTrip(t, s.Conn(), "KEEP", "two"); got != seq+1 {
		t.Errorf("seq after the restart = %d, want %d", got, seq+1)
	}
}
