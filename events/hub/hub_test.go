package hub_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/oklog/ulid/v2"

	"github.com/filecast/filecast/events"
	"github.com/filecast/filecast/events/eventstest"
	"github.com/filecast/filecast/events/hub"
	"github.com/filecast/filecast/events/workspace"
)

func TestHub_UnknownWorkspace(t *testing.T) {
	h := startHub(t, newJournal(t), hub.Options{})
	ctx := context.Background()
	calls := map[string]func() error{
		"Changes": func() error { _, err := h.Changes(ctx, "nope", 0, 0, 0); return err },
		"Files":   func() error { _, err := h.Files(ctx, "nope", ""); return err },
		"ReadFile": func() error {
			_, _, err := h.ReadFile(ctx, "nope", "a.txt", events.Range{})
			return err
		},
		"Append": func() error {
			_, err := h.Append(ctx, fileEvent("nope", 1))
			return err
		},
		"Subscribe": func() error {
			return h.Subscribe(ctx, "nope", 0, func(events.Event) error { return nil })
		},
	}
	for name, call := range calls {
		err := call()
		var e *events.Error
		if !errors.Is(err, events.ErrUnknownWorkspace) || !errors.As(err, &e) || e.Value != "nope" {
			t.Errorf("%s = %v, want *events.Error of ErrUnknownWorkspace", name, err)
		}
	}
	if _, ok := h.Workspace("nope"); ok {
		t.Error(`Workspace("nope") found`)
	}
	if w, ok := h.Workspace("docs"); !ok || w.Name != "docs" {
		t.Errorf(`Workspace("docs") = %+v, %v`, w, ok)
	}
}

func TestHub_Append(t *testing.T) {
	log := newJournal(t)
	h := startHub(t, log, hub.Options{})
	ctx := context.Background()
	bad := []struct {
		name string
		ev   events.Event
		want error
	}{
		{"climbs out", events.Event{Workspace: "docs", Type: events.FileCreated, Path: "../x"}, events.ErrBadPath},
		{"absolute", events.Event{Workspace: "docs", Type: events.FileCreated, Path: "/etc/passwd"}, events.ErrBadPath},
		{"empty path", events.Event{Workspace: "docs", Type: events.FileCreated}, events.ErrBadPath},
		{"newline", events.Event{Workspace: "docs", Type: events.FileCreated, Path: "a\nb"}, events.ErrBadPath},
		{"bad old path", events.Event{Workspace: "docs", Type: events.FileMoved, Path: "a", OldPath: "../b"}, events.ErrBadPath},
		{"move without old path", events.Event{Workspace: "docs", Type: events.FileMoved, Path: "a"}, events.ErrBadPath},
		{"unknown workspace", events.Event{Workspace: "src", Type: events.FileCreated, Path: "a"}, events.ErrUnknownWorkspace},
		{"invalid type", events.Event{Workspace: "docs", Type: "file.exploded", Path: "a"}, events.ErrBadType},
		{"no type", events.Event{Workspace: "docs", Path: "a"}, events.ErrBadType},
	}
	for _, tc := range bad {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := h.Append(ctx, tc.ev); !errors.Is(err, tc.want) {
				t.Errorf("Append = %v, want %v", err, tc.want)
			}
		})
	}
	if head, _ := log.Head(ctx, "docs"); head != 0 {
		t.Fatalf("rejected events reached the log: head %d", head)
	}

	before := time.Now()
	got, err := h.Append(ctx, events.Event{Workspace: "docs", Type: events.FileMoved, Path: "a/./b.txt", OldPath: "c//d.txt", Seq: 99})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ulid.ParseStrict(got.ID); err != nil {
		t.Errorf("ID %q is not a ULID: %v", got.ID, err)
	}
	if got.Time.Before(before.Add(-time.Second)) || got.Time.Location() != time.UTC {
		t.Errorf("Time = %v, want now in UTC", got.Time)
	}
	want := events.Event{Workspace: "docs", Type: events.FileMoved, Path: "a/b.txt", OldPath: "c/d.txt", Seq: 1}
	if diff := cmp.Diff(want, got, cmpopts.IgnoreFields(events.Event{}, "ID", "Time")); diff != "" {
		t.Errorf("Append (-want +got):\n%s", diff)
	}

	given := events.Event{ID: "fixed", Time: time.Unix(1, 0).UTC(), Workspace: "docs", Type: events.LockAcquired, Path: "x"}
	got, err = h.Append(ctx, given)
	if err != nil {
		t.Fatal(err)
	}
	if got.ID != "fixed" || !got.Time.Equal(given.Time) || got.Seq != 2 {
		t.Errorf("Append = %+v, want ID and Time kept, Seq 2", got)
	}
}

func TestHub_Workspaces(t *testing.T) {
	h := startHub(t, newJournal(t, "src", "docs", "art"), hub.Options{}, "src", "docs", "art")
	appendN(t, h, "docs", 2)
	appendN(t, h, "src", 5)
	ctx := context.Background()
	want := []events.WorkspaceInfo{{Name: "art", Head: 0}, {Name: "docs", Head: 2}, {Name: "src", Head: 5}}
	eventstest.Eventually(t, "heads", func() bool {
		got, err := h.Workspaces(ctx)
		return err == nil && cmp.Equal(want, got)
	})
}

func TestNew_Errors(t *testing.T) {
	log := newMemLog()
	for _, tc := range []struct {
		name string
		opts hub.Options
	}{
		{"no log", hub.Options{Workspaces: []workspace.Workspace{{Name: "a", Dir: "/"}}}},
		{"duplicate", hub.Options{Log: log, Workspaces: []workspace.Workspace{{Name: "a", Dir: "/"}, {Name: "a", Dir: "/tmp"}}}},
		{"bad name", hub.Options{Log: log, Workspaces: []workspace.Workspace{{Name: "../a", Dir: "/"}}}},
	} {
		if _, err := hub.New(tc.opts); !errors.Is(err, hub.ErrConfig) {
			t.Errorf("%s: New = %v, want ErrConfig", tc.name, err)
		}
	}
}
