package resources_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/filecast/filecast/events"
	"github.com/filecast/filecast/events/feed/feedtest"
	"github.com/filecast/filecast/resources"
)

// TestReadFile reads files and parts of files as resources/read and
// read_file serve them: text as text with its MIME type, anything else as
// binary, a part of a text file cut to whole characters (and served as
// binary when nothing whole is left), the cursor as given.
func TestReadFile(t *testing.T) {
	src := feedtest.New()
	dir := t.TempDir()
	src.AddWorkspace("docs", dir)
	files := map[string]string{
		"a.md":      "héllo wörld\n",
		"emoji":     "😀😀",
		"pic.png":   "\x89PNG\r\n\x1a\n",
		"data.json": `{"a":"\u00e9"}`,
		"nul.txt":   "a\x00b",
	}
	for name, data := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	ctx := context.Background()
	for _, tc := range []struct {
		name   string
		r      events.Range
		data   string
		text   bool
		mime   string
		offset int64
	}{
		{"a.md", events.Range{}, "héllo wörld\n", true, "text/markdown", 0},
		{"a.md", events.Range{Offset: 2, Length: 6}, "llo w", true, "text/markdown", 3},
		{"a.md", events.Range{Offset: 0, Length: 2}, "h", true, "text/markdown", 0},
		{"a.md", events.Range{Offset: 9, Length: 100}, "rld\n", true, "text/markdown", 10},
		{"a.md", events.Range{Offset: 50, Length: 10}, "", true, "text/markdown", 14},
		{"emoji", events.Range{Offset: 1, Length: 6}, "😀"[1:] + "😀"[:3], false, "application/octet-stream", 1},
		{"emoji", events.Range{Offset: 4, Length: 4}, "😀", true, "text/plain", 4},
		{"pic.png", events.Range{}, files["pic.png"], false, "image/png", 0},
		{"data.json", events.Range{}, files["data.json"], true, "application/json", 0},
		{"nul.txt", events.Range{}, "a\x00b", false, "application/octet-stream", 0},
	} {
		f, err := resources.ReadFile(ctx, src, "docs", tc.name, tc.r, 42)
		if err != nil {
			t.Fatalf("%s %+v: %v", tc.name, tc.r, err)
		}
		if string(f.Data) != tc.data || f.Text != tc.text || f.MIMEType != tc.mime || f.Offset != tc.offset || f.Cursor != 42 {
			t.Errorf("%s %+v = %q text %v %s offset %d cursor %d; want %q text %v %s offset %d cursor 42",
				tc.name, tc.r, f.Data, f.Text, f.MIMEType, f.Offset, f.Cursor, tc.data, tc.text, tc.mime, tc.offset)
		}
		if f.Info.Size != int64(len(files[tc.name])) {
			t.Errorf("%s %+v: size %d, want the whole file's %d", tc.name, tc.r, f.Info.Size, len(files[tc.name]))
		}
	}
}
