package server_test

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/mark3labs/mcp-go/client"

	"github.com/filecast/filecast/events"
	store "github.com/filecast/filecast/events/content"
	"github.com/filecast/filecast/events/delta"
	"github.com/filecast/filecast/events/eventstest"
	"github.com/filecast/filecast/events/hub/hubtest"
	"github.com/filecast/filecast/server"
	"github.com/filecast/filecast/tools"
)

// diffEvent is what the tests read of an event of a list_changes result
// with diff true.
type diffEvent struct {
	Seq             uint64 `json:"seq"`
	Type            string `json:"type"`
	Path            string `json:"path"`
	SHA256          string `json:"sha256"`
	Diff            string `json:"diff"`
	DiffTruncated   bool   `json:"diff_truncated"`
	DiffUnavailable string `json:"diff_unavailable"`
}

type diffResult struct {
	Events []diffEvent `json:"events"`
	Cursor string      `json:"cursor"`
}

// seeded starts a hub with a content store of files up to 4 KiB on a
// workspace that already holds files, and waits until the store has
// taken them in.
func seeded(t *testing.T, copts store.Options, before map[string]string) *hubtest.Stack {
	t.Helper()
	dir := t.TempDir()
	for rel, data := range before {
		p := filepath.Join(dir, filepath.FromSlash(rel))
		must(t, os.MkdirAll(filepath.Dir(p), 0o755))
		must(t, os.WriteFile(p, []byte(data), 0o644))
	}
	copts.MaxFileSize = 4096
	st := hubtest.Start(t, hubtest.Options{Dirs: []string{dir}, Contents: &copts})
	eventstest.Eventually(t, "the content of every file there at the first start kept or judged", func() bool {
		for _, data := range before {
			_, err := st.Hub.Content(t.Context(), "docs", hexSum([]byte(data)))
			if err != nil && !errors.Is(err, events.ErrBinary) && !errors.Is(err, events.ErrTooLarge) {
				return false
			}
		}
		return true
	})
	return st
}

var ten = func() string {
	var b strings.Builder
	for i := range 10 {
		fmt.Fprintf(&b, "line %c\n", 'a'+i)
	}
	return b.String()
}()

const (
	pngBefore = "\x89PNG\x00\x00\x00\x0dIHDR"
	pngAfter  = "\x89PNG\x00\x00\x00\x0dIHDR2"
)

var bigText = strings.Repeat("0123456789abcdef\n", 300) // 5100 bytes, over the 4 KiB the store keeps

// TestServer_ListChangesDiff reads the changes of a real hub with diff
// true over stdio and streamable HTTP: the first change of a file that
// was there at the first start has its diff, a created file the start of
// its content (cut at 2 KiB and said so), a binary file and one over the
// limit say why they have none, compact and full alike; the diffs of one
// result stay within their bound together; without diff there are none;
// and the session's buffer gives diffs too.
func TestServer_ListChangesDiff(t *testing.T) {
	st := seeded(t, store.Options{}, map[string]string{
		"src/old.go": ten,
		"logo.png":   pngBefore,
		"big.txt":    bigText,
	})
	srv := serve(t, st.Hub, server.Options{})
	from := st.Head(t, "docs")
	edit := writeDisk(t, st, "src/old.go", []byte(strings.Replace(ten, "line e", "line E", 1)))
	created := writeDisk(t, st, "new.md", []byte("# Title\n\nText.\n"))
	long := strings.Repeat("a line of a long new file, forty bytes\n", 100) // 3,900 bytes
	longEv := writeDisk(t, st, "long.txt", []byte(long))
	bin := writeDisk(t, st, "logo.png", []byte(pngAfter))
	big := writeDisk(t, st, "big.txt", []byte(bigText+"more\n"))
	cursor := fmt.Sprintf("docs:%d", from)

	want := []diffEvent{
		{Seq: edit.Seq, Type: "file.updated", Path: "src/old.go",
			Diff: "@@ -2,7 +2,7 @@\n line b\n line c\n line d\n-line e\n+line E\n line f\n line g\n line h\n"},
		{Seq: created.Seq, Type: "file.created", Path: "new.md", Diff: "@@ -0,0 +1,3 @@\n+# Title\n+\n+Text.\n"},
		{Seq: longEv.Seq, Type: "file.created", Path: "long.txt", DiffTruncated: true},
		{Seq: bin.Seq, Type: "file.updated", Path: "logo.png", DiffUnavailable: "binary"},
		{Seq: big.Seq, Type: "file.updated", Path: "big.txt", DiffUnavailable: "too_large"},
	}
	transports(t, srv, func(t *testing.T, c *client.Client) {
		for _, detail := range []string{"compact", "full"} {
			res := call(t, c, "list_changes", map[string]any{"cursor": cursor, "diff": true, "detail": detail, "limit": len(want)})
			got := decode[diffResult](t, res).Events
			if len(got) != len(want) {
				t.Fatalf("%s: %d events, want %d: %s", detail, len(got), len(want), text(res))
			}
			// The long file's diff: its first lines, within 2 KiB.
			if d := got[2].Diff; len(d) > delta.DefaultMaxBytes || len(d) < delta.DefaultMaxBytes/2 ||
				!strings.HasPrefix(d, "@@ -0,0 +1,") || !strings.Contains(d, "\n+a line of a long new file, forty bytes\n") {
				t.Errorf("%s: the diff of a long new file is %d bytes: %q", detail, len(d), d)
			}
			got[2].Diff = ""
			for i := range got {
				if detail == "full" && got[i].SHA256 == "" {
					t.Errorf("full event %d has no sha256", got[i].Seq)
				}
				got[i].SHA256 = ""
			}
			if d := cmp.Diff(want, got); d != "" {
				t.Errorf("%s events with diff (-want +got):\n%s", detail, d)
			}
		}

		res := call(t, c, "list_changes", map[string]any{"cursor": cursor, "limit": len(want)})
		if strings.Contains(text(res), `"diff`) {
			t.Errorf("diffs without diff true: %s", text(res))
		}

		// The session's buffer: a change heard by subscription.
		sub := decode[tools.SubscribeResult](t, call(t, c, "subscribe", map[string]any{"paths": []string{"src/"}}))
		before := decode[tools.ReadFileResult](t, call(t, c, "read_file", map[string]any{"path": "src/old.go"}))
		writeDisk(t, st, "src/old.go", []byte(before.Content+"line "+t.Name()+"\n"))
		var got []diffEvent
		eventstest.Eventually(t, "the change in the session's buffer", func() bool {
			got = append(got, decode[diffResult](t, call(t, c, "list_changes", map[string]any{"subscription_id": sub.SubscriptionID, "diff": true})).Events...)
			return len(got) > 0
		})
		if len(got) != 1 || !strings.HasPrefix(got[0].Diff, "@@ -") || !strings.HasSuffix(got[0].Diff, "\n line j\n+line "+t.Name()+"\n") && !strings.HasSuffix(got[0].Diff, "/stdio\n+line "+t.Name()+"\n") {
			t.Errorf("from the session's buffer: %+v, want one event with the line added as its diff", got)
		}
	})
}

// TestServer_ListChangesDiffBound: the diffs of one list_changes result
// stay within their bound together (16 KiB); the events past it say
// too_large, and the next page has them.
func TestServer_ListChangesDiffBound(t *testing.T) {
	st := seeded(t, store.Options{}, nil)
	srv := serve(t, st.Hub, server.Options{})
	from := st.Head(t, "docs")
	var evs []events.Event
	for i := range 12 {
		evs = append(evs, writeDisk(t, st, fmt.Sprintf("f%02d.txt", i), []byte(strings.Repeat(fmt.Sprintf("file %d, a line of about forty bytes\n", i), 80))))
	}
	transports(t, srv, func(t *testing.T, c *client.Client) {
		res := call(t, c, "list_changes", map[string]any{"cursor": fmt.Sprintf("docs:%d", from), "diff": true})
		got := decode[diffResult](t, res).Events
		if len(got) != len(evs) {
			t.Fatalf("%d events, want %d", len(got), len(evs))
		}
		total, with := 0, 0
		for i, ev := range got {
			total += len(ev.Diff)
			switch {
			case ev.Diff != "":
				with++
				if i >= with {
					t.Errorf("event %d has a diff after one that had none", i)
				}
			case ev.DiffUnavailable != "too_large":
				t.Errorf("event %d: no diff and diff_unavailable %q", i, ev.DiffUnavailable)
			}
		}
		if total > delta.DefaultMaxTotal || with < 5 || with == len(got) {
			t.Errorf("%d diffs of %d bytes together in a result of %d bytes; want some, within %d", with, total, len(text(res)), delta.DefaultMaxTotal)
		}
		// From the last event with a diff on, the rest have theirs.
		rest := decode[diffResult](t, call(t, c, "list_changes", map[string]any{"cursor": fmt.Sprintf("docs:%d", got[with-1].Seq), "diff": true})).Events
		if len(rest) != len(evs)-with || rest[0].Diff == "" {
			t.Errorf("the next page: %d events, the first with diff %q", len(rest), rest[0].Diff)
		}
	})
}

// readSince calls read_file with since.
func readSince(t *testing.T, c *client.Client, path, since string) tools.ReadFileResult {
	t.Helper()
	return decode[tools.ReadFileResult](t, call(t, c, "read_file", map[string]any{"path": path, "since": since}))
}

// TestServer_ReadFileSince reads files of a real hub with since over
// stdio and streamable HTTP: the diff from a version read before (a file
// there at the first start included), "" for the same version, and the
// content with the reason when no diff can be given: binary, over the
// limit, a version never kept; and the errors of since.
func TestServer_ReadFileSince(t *testing.T) {
	st := seeded(t, store.Options{}, map[string]string{
		"src/old.go": ten,
		"logo.png":   pngBefore,
		"big.txt":    bigText,
	})
	srv := serve(t, st.Hub, server.Options{})
	first := true
	transports(t, srv, func(t *testing.T, c *client.Client) {
		before := decode[tools.ReadFileResult](t, call(t, c, "read_file", map[string]any{"path": "src/old.go"}))
		if first && before.SHA256 != hexSum([]byte(ten)) {
			t.Fatalf("src/old.go read at first: %+v", before)
		}
		first = false
		now := strings.Replace(before.Content, "line e\n", "line e\n"+t.Name()+"\n", 1)
		writeDisk(t, st, "src/old.go", []byte(now))
		r := readSince(t, c, "src/old.go", before.SHA256)
		wantDiff := "@@ -3,6 +3,7 @@\n line c\n line d\n line e\n+" + t.Name() + "\n"
		if r.Diff == nil || !strings.HasPrefix(*r.Diff, wantDiff) || r.Content != "" || r.DiffUnavailable != "" || r.SHA256 != hexSum([]byte(now)) || r.Size != int64(len(now)) {
			t.Errorf("since the version read before: %+v (diff %v), want diff %q", r, deref(r.Diff), wantDiff)
		}
		if cur, err := events.ParseCursor(r.Cursor); err != nil || cur.For("docs") == 0 {
			t.Errorf("cursor %q", r.Cursor)
		}
		r = readSince(t, c, "src/old.go", r.SHA256)
		if r.Diff == nil || *r.Diff != "" || r.Content != "" {
			t.Errorf("since the version there is: %+v, want diff \"\"", r)
		}

		// A change of each, so that since names an earlier version.
		writeDisk(t, st, "logo.png", []byte(pngAfter+t.Name()))
		writeDisk(t, st, "big.txt", []byte(bigText+t.Name()+"\n"))
		for _, tc := range []struct {
			path, since, why string
		}{
			{"logo.png", hexSum([]byte(pngBefore)), "binary"},
			{"big.txt", hexSum([]byte(bigText)), "too_large"},
			{"src/old.go", hexSum([]byte("a version never seen\n")), "not_stored"},
		} {
			data, err := os.ReadFile(st.Path("docs", tc.path))
			must(t, err)
			r := readSince(t, c, tc.path, tc.since)
			if r.Diff != nil || r.DiffUnavailable != tc.why || !bytes.Equal(content(t, r), data) {
				t.Errorf("%s since %.12s: diff %v, diff_unavailable %q, %d bytes of content; want %s and the content", tc.path, tc.since, deref(r.Diff), r.DiffUnavailable, len(content(t, r)), tc.why)
			}
		}

		wantToolError(t, call(t, c, "read_file", map[string]any{"path": "src/old.go", "since": "abc"}), "invalid since", "sha256")
		wantToolError(t, call(t, c, "read_file", map[string]any{"path": "src/old.go", "since": before.SHA256, "offset": 4}), "since", "offset")
	})
}

func deref(s *string) any {
	if s == nil {
		return nil
	}
	return *s
}

// TestServer_DiffNotStored: a content that fell out of the store (here
// retired a second after no file has it) gives list_changes
// diff_unavailable not_stored, and read_file since it the content and
// not_stored, over stdio and streamable HTTP.
func TestServer_DiffNotStored(t *testing.T) {
	st := seeded(t, store.Options{MaxAge: time.Second}, map[string]string{"a.txt": "first version\n"})
	srv := serve(t, st.Hub, server.Options{})
	from := st.Head(t, "docs")
	ev := writeDisk(t, st, "a.txt", []byte("second version\n"))
	eventstest.Eventually(t, "the first version dropped from the store", func() bool {
		_, err := st.Hub.Content(t.Context(), "docs", ev.PrevSHA256)
		return errors.Is(err, events.ErrNotStored)
	})
	transports(t, srv, func(t *testing.T, c *client.Client) {
		got := decode[diffResult](t, call(t, c, "list_changes", map[string]any{"cursor": fmt.Sprintf("docs:%d", from), "diff": true})).Events
		if d := cmp.Diff([]diffEvent{{Seq: ev.Seq, Type: "file.updated", Path: "a.txt", DiffUnavailable: "not_stored"}}, got); d != "" {
			t.Errorf("list_changes (-want +got):\n%s", d)
		}
		r := readSince(t, c, "a.txt", hexSum([]byte("first version\n")))
		if r.Diff != nil || r.DiffUnavailable != "not_stored" || r.Content != "second version\n" {
			t.Errorf("read_file since the dropped version: %+v", r)
		}
	})
}
