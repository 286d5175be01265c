package journal_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/filecast/filecast/events"
	"github.com/filecast/filecast/events/journal"
	"github.com/filecast/filecast/events/natsd"
	"github.com/filecast/filecast/events/natsd/natstest"
)

// TestJournal_RoomOption refuses appends at once, before anything is
// sent, while Options.Room says the store has no room.
func TestJournal_RoomOption(t *testing.T) {
	var full atomic.Bool
	errFull := errors.New("the disk is full")
	j := open(t, t.TempDir(), journal.Options{Room: func() error {
		if full.Load() {
			return errFull
		}
		return nil
	}})
	ctx := context.Background()
	if _, err := j.Append(ctx, event("docs", 1)); err != nil {
		t.Fatal(err)
	}
	full.Store(true)
	_, err := j.Append(ctx, event("docs", 2))
	if !errors.Is(err, events.ErrInsufficientStorage) || !journal.IsStorageRefusal(err) {
		t.Fatalf("Append while full = %v, want ErrInsufficientStorage", err)
	}
	if _, _, err := j.AppendStoredBatch(ctx, []events.Event{event("docs", 3), event("docs", 4)}); !errors.Is(err, events.ErrInsufficientStorage) {
		t.Errorf("AppendStoredBatch while full = %v, want ErrInsufficientStorage", err)
	}
	if err := j.Room(); !errors.Is(err, events.ErrInsufficientStorage) {
		t.Errorf("Room() = %v", err)
	}
	if since, reason, isFull := j.Full(); !isFull || since.IsZero() || reason != errFull.Error() {
		t.Errorf("Full() = %v, %q, %v", since, reason, isFull)
	}
	if head, _ := j.Head(ctx, "docs"); head != 1 {
		t.Errorf("head %d while full, want 1: nothing may be sent", head)
	}
	full.Store(false)
	if _, _, isFull := j.Full(); isFull {
		t.Error("Full() once Room says there is room")
	}
	if _, err := j.Append(ctx, event("docs", 2)); err != nil {
		t.Errorf("Append once there is room: %v", err)
	}
}

// TestJournal_StorageRefusal has JetStream itself refuse appends (its
// storage limit reached): the error is ErrInsufficientStorage, a batch
// returns the events it stored, and without Options.Room the journal
// counts as full until a backoff has passed.
func TestJournal_StorageRefusal(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	srv := natstest.StartWith(t, natsd.Options{MaxStore: 1 << 20})
	j, err := journal.Open(ctx, srv.Conn(), journal.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = j.Close() })
	if err := j.Ensure(ctx, "docs"); err != nil {
		t.Fatal(err)
	}
	js, err := jetstream.New(srv.Conn())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "FILLER", Subjects: []string{"filler"}}); err != nil {
		t.Fatal(err)
	}
	chunk := make([]byte, 32<<10)
	for i := 0; ; i++ {
		if _, err := js.Publish(ctx, "filler", chunk); err != nil {
			break
		}
		if i > 200 {
			t.Fatal("the store took 6 MiB past its limit")
		}
	}
	out, stored, err := j.AppendStoredBatch(ctx, []events.Event{event("docs", 1), event("docs", 2)})
	if !errors.Is(err, events.ErrInsufficientStorage) {
		t.Fatalf("AppendStoredBatch on a full store = %v, want ErrInsufficientStorage", err)
	}
	if len(out) != 0 || len(stored) != 0 {
		t.Errorf("AppendStoredBatch returned %d events as stored on a full store", len(out))
	}
	if _, err := j.Append(ctx, event("docs", 3)); !errors.Is(err, events.ErrInsufficientStorage) {
		t.Errorf("Append on a full store = %v, want ErrInsufficientStorage", err)
	}
	if err := j.Room(); !errors.Is(err, events.ErrInsufficientStorage) {
		t.Errorf("Room() right after a refusal = %v, want ErrInsufficientStorage", err)
	}
	if err := js.DeleteStream(ctx, "FILLER"); err != nil {
		t.Fatal(err)
	}
	// An append that succeeds ends it (the backoff in between is
	// TestRoom_Backoff's).
	if _, err := j.Append(ctx, event("docs", 3)); err != nil {
		t.Fatalf("Append once there is room: %v", err)
	}
	if _, _, full := j.Full(); full {
		t.Error("Full() after an append succeeded")
	}
	if err := j.Room(); err != nil {
		t.Errorf("Room() after an append succeeded = %v", err)
	}
}
