package hub_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/filecast/filecast/events"
	"github.com/filecast/filecast/events/eventstest"
	"github.com/filecast/filecast/events/hub"
	"github.com/filecast/filecast/events/workspace"
)

// stubIndex lists fixed files.
type stubIndex struct {
	files []events.FileInfo
	seq   uint64
}

func (s stubIndex) Files(prefix string) ([]events.FileInfo, uint64) {
	var out []events.FileInfo
	for _, f := range s.files {
		if prefix == "" || f.Path == prefix || strings.HasPrefix(f.Path, prefix+"/") {
			out = append(out, f)
		}
	}
	return out, s.seq
}

func TestHub_FilesAndReadFile(t *testing.T) {
	root := t.TempDir()
	dir := filepath.Join(root, "docs")
	outside := filepath.Join(root, "outside")
	for _, d := range []string{filepath.Join(dir, "sub"), outside} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	write := func(p, s string) {
		if err := os.WriteFile(p, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write(filepath.Join(dir, "a.txt"), "alpha\n")
	write(filepath.Join(dir, "sub", "b.txt"), "beta\n")
	write(filepath.Join(outside, "secret.txt"), "secret\n")
	if err := os.Symlink(filepath.Join(outside, "secret.txt"), filepath.Join(dir, "escape")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("a.txt", filepath.Join(dir, "inner")); err != nil {
		t.Fatal(err)
	}
	w, err := workspace.Parse("docs=" + dir)
	if err != nil {
		t.Fatal(err)
	}
	log := newJournal(t)
	h, err := hub.New(hub.Options{Workspaces: []workspace.Workspace{w}, Log: log})
	if err != nil {
		t.Fatal(err)
	}
	runHub(t, h)
	appendN(t, h, "docs", 2)
	ctx := context.Background()

	// No index yet: an empty listing at the head.
	eventstest.Eventually(t, "listing at head", func() bool {
		l, err := h.Files(ctx, "docs", "")
		return err == nil && l.Cursor == 2 && l.Files != nil && len(l.Files) == 0
	})

	idx := stubIndex{seq: 7, files: []events.FileInfo{
		{Path: "a.txt", Size: 6, Version: 5},
		{Path: "sub/b.txt", Size: 5, Version: 0},
	}}
	h.SetIndex("docs", idx)
	for _, tc := range []struct {
		prefix string
		want   []string
	}{
		{"", []string{"a.txt", "sub/b.txt"}},
		{"/", []string{"a.txt", "sub/b.txt"}},
		{"sub/", []string{"sub/b.txt"}},
		{"./sub", []string{"sub/b.txt"}},
		{"none", []string{}},
	} {
		l, err := h.Files(ctx, "docs", tc.prefix)
		if err != nil {
			t.Fatalf("Files(%q): %v", tc.prefix, err)
		}
		var got []string
		for _, f := range l.Files {
			got = append(got, f.Path)
		}
		if diff := cmp.Diff(tc.want, got, cmpopts.EquateEmpty()); diff != "" || l.Cursor != 7 || l.Workspace != "docs" {
			t.Errorf("Files(%q) cursor %d ws %q (-want +got):\n%s", tc.prefix, l.Cursor, l.Workspace, diff)
		}
	}
	if _, err := h.Files(ctx, "docs", "../x"); !errors.Is(err, events.ErrBadPath) {
		t.Errorf("Files(../x) = %v, want ErrBadPath", err)
	}

	sum := func(s string) string { b := sha256.Sum256([]byte(s)); return hex.EncodeToString(b[:]) }
	st, err := os.Stat(filepath.Join(dir, "a.txt"))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		path string
		data string
		info events.FileInfo
	}{
		{"a.txt", "alpha\n", events.FileInfo{Path: "a.txt", Size: 6, SHA256: sum("alpha\n"), ModTime: st.ModTime(), Version: 5}},
		{"./sub//b.txt", "beta\n", events.FileInfo{Path: "sub/b.txt", Size: 5, SHA256: sum("beta\n")}},
		{"inner", "alpha\n", events.FileInfo{Path: "inner", Size: 6, SHA256: sum("alpha\n")}},
	} {
		data, info, err := h.ReadFile(ctx, "docs", tc.path, events.Range{})
		if err != nil {
			t.Fatalf("ReadFile(%q): %v", tc.path, err)
		}
		if string(data) != tc.data {
			t.Errorf("ReadFile(%q) data %q, want %q", tc.path, data, tc.data)
		}
		ignoreTime := cmpopts.IgnoreFields(events.FileInfo{}, "ModTime")
		if tc.info.ModTime.IsZero() {
			if info.ModTime.IsZero() {
				t.Errorf("ReadFile(%q) no ModTime", tc.path)
			}
		} else {
			ignoreTime = cmp.Options{}
		}
		if diff := cmp.Diff(tc.info, info, ignoreTime); diff != "" {
			t.Errorf("ReadFile(%q) info (-want +got):\n%s", tc.path, diff)
		}
	}
	for _, tc := range []struct {
		path string
		want []error
	}{
		{"escape", []error{events.ErrBadPath, events.ErrNotFound}},
		{"../outside/secret.txt", []error{events.ErrBadPath}},
		{"/etc/passwd", []error{events.ErrBadPath}},
		{"missing.txt", []error{events.ErrNotFound}},
		{"sub", []error{events.ErrNotFound}},
	} {
		data, _, err := h.ReadFile(ctx, "docs", tc.path, events.Range{})
		ok := false
		for _, w := range tc.want {
			ok = ok || errors.Is(err, w)
		}
		if !ok || data != nil {
			t.Errorf("ReadFile(%q) = %q, %v; want one of %v", tc.path, data, err, tc.want)
		}
	}
	h.SetIndex("docs", nil)
	if l, err := h.Files(ctx, "docs", ""); err != nil || len(l.Files) != 0 || l.Cursor != 2 {
		t.Errorf("Files after removing the index = %+v, %v", l, err)
	}
}

// TestHub_ReadFileParts reads parts of a file larger than a whole read
// allows: any part, none past the end, always with the size and sha256 of
// the whole file — the index's when the file is as the index describes it
// and has not changed for a second, else computed; the checks of a whole
// read apply.
func TestHub_ReadFileParts(t *testing.T) {
	dir := t.TempDir()
	big := filepath.Join(dir, "big.bin")
	f, err := os.Create(big)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt([]byte("tail"), events.MaxReadSize+10); err != nil {
		t.Fatal(err)
	}
	f.Close()
	if err := os.WriteFile(filepath.Join(dir, "small.txt"), []byte("0123456789"), 0o644); err != nil {
		t.Fatal(err)
	}
	old := time.Now().Add(-time.Hour).Truncate(time.Second)
	if err := os.Chtimes(filepath.Join(dir, "small.txt"), old, old); err != nil {
		t.Fatal(err)
	}
	w, err := workspace.Parse("docs=" + dir)
	if err != nil {
		t.Fatal(err)
	}
	h, err := hub.New(hub.Options{Workspaces: []workspace.Workspace{w}, Log: newJournal(t)})
	if err != nil {
		t.Fatal(err)
	}
	runHub(t, h)
	ctx := context.Background()
	size := int64(events.MaxReadSize + 14)
	sum := func(b []byte) string { s := sha256.Sum256(b); return hex.EncodeToString(s[:]) }
	whole, err := os.ReadFile(big)
	if err != nil {
		t.Fatal(err)
	}

	if _, _, err := h.ReadFile(ctx, "docs", "big.bin", events.Range{}); !errors.Is(err, events.ErrTooLarge) {
		t.Fatalf("whole read of a file over the limit: %v, want ErrTooLarge", err)
	}
	for _, tc := range []struct {
		r    events.Range
		want []byte
	}{
		{events.Range{Offset: events.MaxReadSize + 8, Length: 100}, whole[events.MaxReadSize+8:]},
		{events.Range{Offset: 5, Length: 3}, whole[5:8]},
		{events.Range{Offset: 1}, whole[1 : 1+events.MaxReadSize]},
		{events.Range{Offset: size, Length: 10}, nil},
		{events.Range{Offset: size + 100, Length: 10}, nil},
	} {
		data, info, err := h.ReadFile(ctx, "docs", "big.bin", tc.r)
		if err != nil {
			t.Fatalf("ReadFile(%+v): %v", tc.r, err)
		}
		if !bytes.Equal(data, tc.want) || info.Size != size || info.SHA256 != sum(whole) {
			t.Errorf("ReadFile(%+v) = %d bytes, size %d, sha256 %s; want %d bytes of a file of %d with sha256 %s",
				tc.r, len(data), info.Size, info.SHA256, len(tc.want), size, sum(whole))
		}
	}

	// The index's sha256 stands for a file as it describes it, settled;
	// not for one it describes otherwise, nor one changed within the second.
	stale := "stale-sha256-of-the-index"
	h.SetIndex("docs", stubIndex{files: []events.FileInfo{{Path: "small.txt", Size: 10, SHA256: stale, ModTime: old}}})
	if _, info, err := h.ReadFile(ctx, "docs", "small.txt", events.Range{Offset: 2, Length: 3}); err != nil || info.SHA256 != stale {
		t.Errorf("a settled file as the index has it: sha256 %q, %v; want the index's", info.SHA256, err)
	}
	if _, info, err := h.ReadFile(ctx, "docs", "small.txt", events.Range{Offset: 0, Length: 20}); err != nil || info.SHA256 != sum([]byte("0123456789")) {
		t.Errorf("a part that is the whole file: sha256 %q, %v; want that of its bytes", info.SHA256, err)
	}
	h.SetIndex("docs", stubIndex{files: []events.FileInfo{{Path: "small.txt", Size: 9, SHA256: stale, ModTime: old}}})
	if _, info, _ := h.ReadFile(ctx, "docs", "small.txt", events.Range{Offset: 2, Length: 3}); info.SHA256 != sum([]byte("0123456789")) {
		t.Errorf("a file the index describes with another size: sha256 %q, want it computed", info.SHA256)
	}
	now := time.Now()
	if err := os.Chtimes(filepath.Join(dir, "small.txt"), now, now); err != nil {
		t.Fatal(err)
	}
	h.SetIndex("docs", stubIndex{files: []events.FileInfo{{Path: "small.txt", Size: 10, SHA256: stale, ModTime: now}}})
	if _, info, _ := h.ReadFile(ctx, "docs", "small.txt", events.Range{Offset: 2, Length: 3}); info.SHA256 != sum([]byte("0123456789")) {
		t.Errorf("a file changed within the second: sha256 %q, want it computed", info.SHA256)
	}

	for _, tc := range []struct {
		path string
		want error
	}{
		{"../x", events.ErrBadPath},
		{"missing", events.ErrNotFound},
		{".git/config", events.ErrVCSInternal},
	} {
		if _, _, err := h.ReadFile(ctx, "docs", tc.path, events.Range{Offset: 1, Length: 1}); !errors.Is(err, tc.want) {
			t.Errorf("part of %s: %v, want %v", tc.path, err, tc.want)
		}
	}
}
