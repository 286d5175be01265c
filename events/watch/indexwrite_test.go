package watch

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// writeIndex writes the document encoding/json would, less the order of
// the files and its HTML escaping: both decode to the same value.
func TestWriteIndex_AsEncodingJSON(t *testing.T) {
	zone := time.FixedZone("x", 2*3600)
	idx := &indexFile{
		Format: indexFormat, Workspace: "docs", Root: `/srv/a "b"\c`, Seq: 42,
		Saved: time.Date(2026, 11, 27, 10, 0, 0, 123456789, time.UTC),
		Files: map[string]*entry{
			"plain.md":     {Size: 3, SHA256: "ab", ModTime: time.Date(2026, 1, 2, 3, 4, 5, 6, zone), Version: 7, Dev: 8, Ino: 9, Hashed: time.Date(2026, 1, 2, 3, 4, 7, 0, time.UTC)},
			"ü/ñ.md":       {Size: 0, SHA256: "cd"},
			`q"uote\.md`:   {Size: 1, SHA256: "ef", Link: "plain.md"},
			"<html>&x.md":  {Size: 2, SHA256: "01", Version: 1},
			"line\u2028.x": {Size: 5},
			"nil.md":       nil,
		},
	}
	var got bytes.Buffer
	if err := writeIndex(&got, idx); err != nil {
		t.Fatal(err)
	}
	want, err := json.Marshal(idx)
	if err != nil {
		t.Fatal(err)
	}
	var g, w any
	if err := json.Unmarshal(got.Bytes(), &g); err != nil {
		t.Fatalf("writeIndex wrote invalid JSON: %v\n%s", err, got.Bytes())
	}
	if err := json.Unmarshal(want, &w); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(w, g); diff != "" {
		t.Errorf("writeIndex differs from encoding/json (-json +writeIndex):\n%s", diff)
	}
	if !bytes.HasSuffix(got.Bytes(), []byte("}}\n")) {
		t.Errorf("document does not end with a newline: %q", got.Bytes()[got.Len()-5:])
	}
}

// A time encoding/json refuses is written as the zero time, so that a
// save never fails because of one file's mtime.
func TestWriteIndex_YearOutOfRange(t *testing.T) {
	idx := &indexFile{Format: indexFormat, Files: map[string]*entry{"far.md": {ModTime: time.Date(12000, 1, 1, 0, 0, 0, 0, time.UTC)}}}
	var b bytes.Buffer
	if err := writeIndex(&b, idx); err != nil {
		t.Fatal(err)
	}
	var back indexFile
	if err := json.Unmarshal(b.Bytes(), &back); err != nil {
		t.Fatalf("unreadable: %v\n%s", err, b.Bytes())
	}
	if mt := back.Files["far.md"].ModTime; !mt.IsZero() {
		t.Errorf("mtime = %v, want the zero time", mt)
	}
}

// BenchmarkWriteIndex encodes an index of 100,000 files, as a save of a
// big workspace does.
func BenchmarkWriteIndex(b *testing.B) {
	idx := &indexFile{Format: indexFormat, Workspace: "docs", Root: "/srv/docs", Files: map[string]*entry{}}
	now := time.Now()
	for i := range 100_000 {
		idx.Files[fmt.Sprintf("d%03d/f%04d.md", i/1000, i%1000)] = &entry{Size: int64(i), SHA256: "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855", ModTime: now, Version: uint64(i), Dev: 1, Ino: uint64(i), Hashed: now}
	}
	b.ReportAllocs()
	for b.Loop() {
		if err := writeIndex(io.Discard, idx); err != nil {
			b.Fatal(err)
		}
	}
}
