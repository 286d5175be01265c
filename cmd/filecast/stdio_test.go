package main_test

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/mark3labs/mcp-go/mcp"
)

// TestMCPStdio_SubscribeAndListChanges drives the embedded hub over stdio
// as an agent would: subscribe with globs, edit files, read the changes.
func TestMCPStdio_SubscribeAndListChanges(t *testing.T) {
	root, data := t.TempDir(), t.TempDir()
	writeFile(t, filepath.Join(root, "existing.md"), "already here")
	a := startStdio(t, legacyVersion, "--root", "docs="+root, "--data", data)

	var sub struct {
		ID     string `json:"subscription_id"`
		Cursor string `json:"cursor"`
	}
	a.mustCall("subscribe", map[string]any{"paths": []string{"*.md", "notes/"}}, &sub)
	if !strings.HasPrefix(sub.ID, "sub_") && sub.ID == "" {
		t.Fatalf("subscription_id = %q", sub.ID)
	}

	writeFile(t, filepath.Join(root, "a.md"), "one")
	writeFile(t, filepath.Join(root, "ignored.txt"), "not matched")
	writeFile(t, filepath.Join(root, "notes", "n1.txt"), "in a folder")
	got, _ := a.collect(nil, 2)
	if diff := cmp.Diff([]string{"file.created a.md", "file.created notes/n1.txt"}, kinds(got)); diff != "" {
		t.Fatalf("first changes (-want +got):\n%s", diff)
	}
	if got[0].Workspace != "docs" || got[0].Actor != "fs" || got[0].Size == nil || *got[0].Size != 3 || len(got[0].SHA256) != 64 || got[0].Seq == 0 || got[0].ID == "" {
		t.Fatalf("event fields wrong: %+v", got[0])
	}

	// An unchanged rewrite emits nothing; the next real change is next.
	writeFile(t, filepath.Join(root, "a.md"), "one")
	writeFile(t, filepath.Join(root, "a.md"), "two")
	got, _ = a.collect(nil, 1)
	if diff := cmp.Diff([]string{"file.updated a.md"}, kinds(got)); diff != "" {
		t.Fatalf("after no-op rewrite (-want +got):\n%s", diff)
	}

	// Save by rename is one update; a rename is one move; then a delete.
	tmp := filepath.Join(root, ".a.md.tmp")
	writeFile(t, tmp, "three")
	if err := os.Rename(tmp, filepath.Join(root, "a.md")); err != nil {
		t.Fatal(err)
	}
	got, _ = a.collect(nil, 1)
	if diff := cmp.Diff([]string{"file.updated a.md"}, kinds(got)); diff != "" {
		t.Fatalf("atomic save (-want +got):\n%s", diff)
	}
	if err := os.Rename(filepath.Join(root, "a.md"), filepath.Join(root, "b.md")); err != nil {
		t.Fatal(err)
	}
	got, _ = a.collect(nil, 1)
	if diff := cmp.Diff([]string{"file.moved a.md->b.md"}, kinds(got)); diff != "" {
		t.Fatalf("rename (-want +got):\n%s", diff)
	}
	if err := os.Remove(filepath.Join(root, "b.md")); err != nil {
		t.Fatal(err)
	}
	got, cursor := a.collect(nil, 1)
	if diff := cmp.Diff([]string{"file.deleted b.md"}, kinds(got)); diff != "" {
		t.Fatalf("delete (-want +got):\n%s", diff)
	}
	if cursor == "" {
		t.Fatal("list_changes returned no cursor")
	}

	// Nothing is pending: a short long-poll returns empty, with a cursor.
	var empty changes
	a.mustCall("list_changes", map[string]any{"wait_ms": 50}, &empty)
	if len(empty.Events) != 0 || empty.Cursor == "" {
		t.Fatalf("idle list_changes = %+v", empty)
	}

	// Unsubscribe: removed once, then not found.
	var un struct {
		Removed bool `json:"removed"`
	}
	a.mustCall("unsubscribe", map[string]any{"subscription_id": sub.ID}, &un)
	if !un.Removed {
		t.Fatal("unsubscribe did not remove")
	}
}

// TestMCPStdio_CursorSurvivesRestart keeps a cursor, quits, changes files
// while filecast is down and in a new process, and reads exactly what
// happened after the cursor.
func TestMCPStdio_CursorSurvivesRestart(t *testing.T) {
	root, data := t.TempDir(), t.TempDir()
	a := startStdio(t, legacyVersion, "--root", "w="+root, "--data", data)
	writeFile(t, filepath.Join(root, "before.txt"), "1")
	got, cursor := a.collect(nil, 1)
	if diff := cmp.Diff([]string{"file.created before.txt"}, kinds(got)); diff != "" {
		t.Fatalf("(-want +got):\n%s", diff)
	}
	writeFile(t, filepath.Join(root, "after1.txt"), "2")
	got, _ = a.collect(nil, 1)
	if len(got) != 1 {
		t.Fatalf("after1: %v", kinds(got))
	}
	_ = a.c.Close()

	// Changed while filecast was not running.
	writeFile(t, filepath.Join(root, "offline.txt"), "3")
	if err := os.Remove(filepath.Join(root, "before.txt")); err != nil {
		t.Fatal(err)
	}

	b := startStdio(t, legacyVersion, "--root", "w="+root, "--data", data)
	writeFile(t, filepath.Join(root, "after2.txt"), "4")
	got, _ = b.collect(map[string]any{"cursor": cursor}, 4)
	want := []string{"file.created after1.txt", "file.created offline.txt", "file.deleted before.txt", "file.created after2.txt"}
	gotK := kinds(got)
	// Offline changes are reported in the order the scan found them.
	slices.Sort(gotK[1:3])
	slices.Sort(want[1:3])
	if diff := cmp.Diff(want, gotK); diff != "" {
		t.Fatalf("resume by cursor (-want +got):\n%s", diff)
	}
	seen := map[string]bool{}
	for _, e := range got {
		if seen[e.ID] {
			t.Fatalf("duplicate event %s", e.ID)
		}
		seen[e.ID] = true
	}
}

// TestMCPStdio_BadInput checks that bad arguments are tool errors that
// say what to do, and the server keeps working.
func TestMCPStdio_BadInput(t *testing.T) {
	root := t.TempDir()
	outside := t.TempDir()
	writeFile(t, filepath.Join(outside, "secret.txt"), "secret")
	if err := os.Symlink(filepath.Join(outside, "secret.txt"), filepath.Join(root, "link.txt")); err != nil {
		t.Fatal(err)
	}
	a := startStdio(t, legacyVersion, "--root", "w="+root, "--data", t.TempDir())
	cases := []struct {
		tool string
		args map[string]any
		want string
	}{
		{"subscribe", map[string]any{"paths": []string{"src/[a-"}}, "glob"},
		{"subscribe", map[string]any{"paths": []string{"../*"}}, "glob"},
		{"subscribe", map[string]any{"workspace": "nope"}, "workspace"},
		{"subscribe", map[string]any{"events": []string{"renamed"}}, "not one of"},
		{"list_changes", map[string]any{"cursor": "not a cursor"}, "cursor"},
		{"list_changes", map[string]any{"cursor": "nope:3"}, "workspace"},
		{"list_changes", map[string]any{"subscription_id": "sub_missing"}, "subscription"},
		{"unsubscribe", map[string]any{"subscription_id": "sub_missing"}, "subscription"},
	}
	for _, c := range cases {
		msg := a.call(c.tool, c.args, &map[string]any{})
		if msg == "" {
			// unsubscribe of an unknown id may answer removed:false instead.
			if c.tool == "unsubscribe" {
				continue
			}
			t.Errorf("%s(%v) succeeded, want an error about %s", c.tool, c.args, c.want)
			continue
		}
		if !strings.Contains(strings.ToLower(msg), c.want) {
			t.Errorf("%s(%v) error %q does not mention %q", c.tool, c.args, msg, c.want)
		}
	}

	ctx := t.Context()
	for _, uri := range []string{"filecast://w/../etc/passwd", "filecast://w/link.txt", "filecast://nope/a", "file:///etc/passwd"} {
		req := mcp.ReadResourceRequest{}
		req.Params.URI = uri
		res, err := a.c.ReadResource(ctx, req)
		if err == nil {
			for _, c := range res.Contents {
				if tc, ok := c.(mcp.TextResourceContents); ok && strings.Contains(tc.Text, "secret") {
					t.Fatalf("read %s leaked the target outside the workspace", uri)
				}
			}
			t.Errorf("read %s succeeded, want an error", uri)
		}
	}
	// Still serving.
	var r changes
	a.mustCall("list_changes", map[string]any{"wait_ms": 10}, &r)
}
