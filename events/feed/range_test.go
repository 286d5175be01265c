package feed_test

import (
	"crypto/sha256"
	"encoding/hex"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/filecast/filecast/events"
	"github.com/filecast/filecast/events/feed"
	"github.com/filecast/filecast/events/wire"
)

// TestFeed_FileRange reads parts of files with a Range header of one
// range: 206 with Content-Range and the whole file's sha256, 416 at or
// past the end, the whole file for ranges it does not serve, and parts of
// a file too large to read whole.
func TestFeed_FileRange(t *testing.T) {
	fx := newFixture(t, feed.Options{})
	if err := os.WriteFile(filepath.Join(fx.dir, "d.txt"), []byte("0123456789"), 0o644); err != nil {
		t.Fatal(err)
	}
	huge := filepath.Join(fx.dir, "huge.bin")
	if err := os.WriteFile(huge, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(huge, events.MaxReadSize+5); err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256([]byte("0123456789"))
	digits := hex.EncodeToString(sum[:])
	get := func(path, rng string) (*http.Response, string) {
		t.Helper()
		req, _ := http.NewRequest(http.MethodGet, fx.srv.URL+"/v1/workspaces/docs/files/"+path, nil)
		if rng != "" {
			req.Header.Set("Range", rng)
		}
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		body, _ := io.ReadAll(res.Body)
		return res, string(body)
	}
	for _, tc := range []struct {
		rng    string
		status int
		body   string
		cr     string // Content-Range
	}{
		{"", 200, "0123456789", ""},
		{"bytes=2-4", 206, "234", "bytes 2-4/10"},
		{"bytes=8-", 206, "89", "bytes 8-9/10"},
		{"bytes=8-100", 206, "89", "bytes 8-9/10"},
		{"bytes=10-", 416, "", "bytes */10"},
		{"bytes=-3", 200, "0123456789", ""},      // a suffix: served whole
		{"bytes=1-2,4-5", 200, "0123456789", ""}, // several: served whole
		{"bytes=5-2", 200, "0123456789", ""},     // malformed: served whole
		{"lines=1-2", 200, "0123456789", ""},     // another unit: served whole
		{"bytes= 3-3", 206, "3", "bytes 3-3/10"}, // spaces around the range
	} {
		res, body := get("d.txt", tc.rng)
		if res.StatusCode != tc.status || body != tc.body || res.Header.Get("Content-Range") != tc.cr {
			t.Errorf("Range %q: %d %q Content-Range %q, want %d %q %q", tc.rng, res.StatusCode, body, res.Header.Get("Content-Range"), tc.status, tc.body, tc.cr)
		}
		if res.Header.Get(wire.HeaderSHA256) != digits || res.Header.Get("Accept-Ranges") != "bytes" {
			t.Errorf("Range %q: sha256 %q Accept-Ranges %q, want the whole file's and bytes", tc.rng, res.Header.Get(wire.HeaderSHA256), res.Header.Get("Accept-Ranges"))
		}
	}

	if res, _ := get("huge.bin", ""); res.StatusCode != http.StatusRequestEntityTooLarge {
		t.Errorf("whole read of a file over the limit: %d, want 413", res.StatusCode)
	}
	res, body := get("huge.bin", "bytes="+strconv.Itoa(events.MaxReadSize)+"-")
	want := "bytes " + strconv.Itoa(events.MaxReadSize) + "-" + strconv.Itoa(events.MaxReadSize+4) + "/" + strconv.Itoa(events.MaxReadSize+5)
	if res.StatusCode != 206 || len(body) != 5 || res.Header.Get("Content-Range") != want {
		t.Errorf("the end of a file over the limit: %d, %d bytes, Content-Range %q, want 206, 5 bytes, %q", res.StatusCode, len(body), res.Header.Get("Content-Range"), want)
	}
	res, body = get("huge.bin", "bytes=0-")
	if res.StatusCode != 206 || len(body) != events.MaxReadSize {
		t.Errorf("an open range of a file over the limit: %d, %d bytes, want 206 and the limit", res.StatusCode, len(body))
	}
	if res, _ := get("missing", "bytes=0-1"); res.StatusCode != 404 {
		t.Errorf("a part of a missing file: %d, want 404", res.StatusCode)
	}
}
