package remote_test

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"

	"github.com/filecast/filecast/events"
	"github.com/filecast/filecast/events/api"
	"github.com/filecast/filecast/events/feed"
	"github.com/filecast/filecast/events/remote"
)

// TestClient_ReadFileParts reads parts of a file through a hub: the bytes
// asked for (none past the end) with the whole file's size and sha256, as
// the hub's own Source gives them; also from a hub that ignores Range and
// sends the whole file.
func TestClient_ReadFileParts(t *testing.T) {
	src, dir := newSource(t)
	data := bytes.Repeat([]byte("abcdefghij"), 100)
	if err := os.WriteFile(filepath.Join(dir, "d.txt"), data, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "empty"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	h := startHub(t, src, "")
	// A hub of before ranges: it drops the header.
	f := feed.New(src, feed.Options{})
	t.Cleanup(f.Close)
	plain := api.New(src, f, api.Options{})
	old := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r.Header.Del("Range")
		plain.ServeHTTP(w, r)
	}))
	t.Cleanup(old.Close)
	ctx := context.Background()
	_, whole, err := src.ReadFile(ctx, "docs", "d.txt", events.Range{})
	if err != nil {
		t.Fatal(err)
	}
	for name, url := range map[string]string{"hub": h.srv.URL, "hub without ranges": old.URL} {
		c := newClient(t, url, remote.Options{})
		for _, tc := range []struct {
			r    events.Range
			want []byte
		}{
			{events.Range{Offset: 10, Length: 5}, data[10:15]},
			{events.Range{Offset: 995, Length: 100}, data[995:]},
			{events.Range{Offset: 3}, data[3:]},
			{events.Range{Offset: 1000, Length: 10}, nil},
			{events.Range{Offset: 5000, Length: 10}, nil},
		} {
			got, info, err := c.ReadFile(ctx, "docs", "d.txt", tc.r)
			if err != nil {
				t.Fatalf("%s: ReadFile(%+v): %v", name, tc.r, err)
			}
			if !bytes.Equal(got, tc.want) || info.Size != 1000 || info.SHA256 != whole.SHA256 || info.Path != "d.txt" {
				t.Errorf("%s: ReadFile(%+v) = %q, size %d sha256 %s; want %q of a file of 1000 bytes, %s",
					name, tc.r, got, info.Size, info.SHA256, tc.want, whole.SHA256)
			}
		}
		got, info, err := c.ReadFile(ctx, "docs", "empty", events.Range{Offset: 0, Length: 10})
		if err != nil || len(got) != 0 || info.Size != 0 || info.SHA256 == "" {
			t.Errorf("%s: a part of an empty file = %q, %+v, %v", name, got, info, err)
		}
		if _, _, err := c.ReadFile(ctx, "docs", "missing", events.Range{Offset: 0, Length: 10}); !errors.Is(err, events.ErrNotFound) {
			t.Errorf("%s: a part of a missing file: %v, want ErrNotFound", name, err)
		}
	}
}
