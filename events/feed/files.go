package feed

import (
	"fmt"
	"mime"
	"net/http"
	"path"
	"strconv"
	"strings"
	"time"

	"github.com/filecast/filecast/events"
	"github.com/filecast/filecast/events/wire"
	"github.com/filecast/filecast/events/workspace"
)

// Files answers GET /v1/workspaces/{ws}/files?prefix= with an
// [events.Listing] of the files under prefix (a folder; absent for all).
func (f *Feed) Files(w http.ResponseWriter, r *http.Request) {
	ws := r.PathValue("ws")
	prefix, err := workspace.CleanPrefix(r.URL.Query().Get("prefix"))
	if err != nil {
		f.fail(w, r, err)
		return
	}
	if err := events.ValidWorkspaceName(ws); err != nil {
		f.fail(w, r, err)
		return
	}
	list, err := f.src.Files(r.Context(), ws, prefix)
	if err != nil {
		f.fail(w, r, err)
		return
	}
	if list.Files == nil {
		list.Files = []events.FileInfo{}
	}
	wire.WriteJSON(w, http.StatusOK, list)
}

// File answers GET /v1/workspaces/{ws}/files/{path...} with the file's
// bytes. The Content-Type comes from the extension, else from the content;
// X-Filecast-Sha256, X-Filecast-Version, X-Filecast-Mtime and ETag (the
// quoted sha256) describe the whole file, and a matching If-None-Match
// gets 304. A Range header of one range, "bytes=FIRST-" or
// "bytes=FIRST-LAST", reads that part of a file of any size (at most
// events.MaxReadSize bytes of it): 206 with Content-Range, or 416 with
// "Content-Range: bytes */SIZE" when FIRST is at or past the end; any
// other Range is ignored and the whole file served. The answer is
// sandboxed so that a served HTML file cannot script the hub.
func (f *Feed) File(w http.ResponseWriter, r *http.Request) {
	ws := r.PathValue("ws")
	rel, err := workspace.Clean(r.PathValue("path"))
	if err != nil {
		f.fail(w, r, err)
		return
	}
	if err := events.ValidWorkspaceName(ws); err != nil {
		f.fail(w, r, err)
		return
	}
	rg, partial := byteRange(r.Header.Get("Range"))
	data, info, err := f.src.ReadFile(r.Context(), ws, rel, rg)
	if err != nil {
		f.fail(w, r, err)
		return
	}
	h := w.Header()
	etag := `"` + info.SHA256 + `"`
	h.Set("ETag", etag)
	h.Set("Accept-Ranges", "bytes")
	h.Set(wire.HeaderSHA256, info.SHA256)
	h.Set(wire.HeaderVersion, strconv.FormatUint(info.Version, 10))
	if !info.ModTime.IsZero() {
		h.Set(wire.HeaderMTime, info.ModTime.UTC().Format(time.RFC3339Nano))
		h.Set("Last-Modified", info.ModTime.UTC().Format(http.TimeFormat))
	}
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Content-Security-Policy", "sandbox; default-src 'none'")
	if info.SHA256 != "" && r.Header.Get("If-None-Match") == etag {
		w.WriteHeader(http.StatusNotModified)
		return
	}
	status := http.StatusOK
	if partial {
		if rg.Offset >= info.Size {
			h.Set("Content-Range", fmt.Sprintf("bytes */%d", info.Size))
			w.WriteHeader(http.StatusRequestedRangeNotSatisfiable)
			return
		}
		status = http.StatusPartialContent
		h.Set("Content-Range", fmt.Sprintf("bytes %d-%d/%d", rg.Offset, rg.Offset+int64(len(data))-1, info.Size))
	}
	ct := mime.TypeByExtension(path.Ext(rel))
	if ct == "" {
		ct = http.DetectContentType(data)
	}
	h.Set("Content-Type", ct)
	h.Set("Content-Length", strconv.Itoa(len(data)))
	w.WriteHeader(status)
	if r.Method != http.MethodHead {
		_, _ = w.Write(data)
	}
}

// Content answers GET /v1/workspaces/{ws}/content/{sha256} with an
// earlier content of a file of ws, by its sha256, from the hub's content
// store ([events.Source.Content]), as application/octet-stream with
// X-Filecast-Sha256 and the quoted sha256 as ETag (a matching
// If-None-Match gets 304). A content the store does not have answers 404
// not_stored, one it knows is not text 404 binary, one over its size
// limit 413 too_large; a sha that is not 64 lowercase hex digits 400
// bad_path.
func (f *Feed) Content(w http.ResponseWriter, r *http.Request) {
	ws, sha := r.PathValue("ws"), r.PathValue("sha256")
	if err := events.ValidWorkspaceName(ws); err != nil {
		f.fail(w, r, err)
		return
	}
	if !events.ValidSHA256(sha) {
		f.fail(w, r, &events.Error{Kind: events.ErrBadPath, Value: sha, Why: "a content is named by its sha256: 64 lowercase hex digits"})
		return
	}
	data, err := f.src.Content(r.Context(), ws, sha)
	if err != nil {
		f.fail(w, r, err)
		return
	}
	h := w.Header()
	etag := `"` + sha + `"`
	h.Set("ETag", etag)
	h.Set(wire.HeaderSHA256, sha)
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Content-Security-Policy", "sandbox; default-src 'none'")
	if r.Header.Get("If-None-Match") == etag {
		w.WriteHeader(http.StatusNotModified)
		return
	}
	h.Set("Content-Type", "application/octet-stream")
	h.Set("Content-Length", strconv.Itoa(len(data)))
	w.WriteHeader(http.StatusOK)
	if r.Method != http.MethodHead {
		_, _ = w.Write(data)
	}
}

// byteRange reads a Range header of one range of bytes with a first
// position, "bytes=FIRST-" or "bytes=FIRST-LAST"; ok is false for an
// absent header and for anything else (a suffix range, several ranges, a
// malformed one), which RFC 9110 lets a server ignore.
func byteRange(v string) (rg events.Range, ok bool) {
	spec, found := strings.CutPrefix(v, "bytes=")
	if !found {
		return events.Range{}, false
	}
	first, last, found := strings.Cut(strings.TrimSpace(spec), "-")
	if !found || first == "" || strings.ContainsAny(last, ",") {
		return events.Range{}, false
	}
	off, err := strconv.ParseInt(first, 10, 64)
	if err != nil || off < 0 {
		return events.Range{}, false
	}
	if last == "" {
		return events.Range{Offset: off, Length: events.MaxReadSize}, true
	}
	end, err := strconv.ParseInt(last, 10, 64)
	if err != nil || end < off {
		return events.Range{}, false
	}
	return events.Range{Offset: off, Length: min(end-off+1, events.MaxReadSize)}, true
}
