package watch

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/filecast/filecast/events"
	"github.com/filecast/filecast/events/jsonenc"
)

// entry is what the index knows of one file.
type entry struct {
	Size    int64     `json:"size"`
	SHA256  string    `json:"sha256"`
	ModTime time.Time `json:"mtime"`
	Version uint64    `json:"version,omitempty"`
	Dev     uint64    `json:"dev,omitempty"`
	Ino     uint64    `json:"ino,omitempty"`
	Hashed  time.Time `json:"hashed"`         // when SHA256 was computed; see stat.sameAs
	Link    string    `json:"link,omitempty"` // for a symlink: its target, relative to the root
}

func (e *entry) info(rel string) events.FileInfo {
	return events.FileInfo{Path: rel, Size: e.Size, SHA256: e.SHA256, ModTime: e.ModTime, Version: e.Version}
}

// indexFile is the persisted form of the index.
type indexFile struct {
	Format    int               `json:"format"`
	Workspace string            `json:"workspace"`
	Root      string            `json:"root"`
	Seq       uint64            `json:"seq"` // the last event the index reflects
	Saved     time.Time         `json:"saved"`
	Kept      string            `json:"kept,omitempty"` // the content store every file was kept in once (its Epoch); see keep.go
	Files     map[string]*entry `json:"files"`
}

const indexFormat = 1

// loadIndex reads the persisted index; ok is false when there is none.
func loadIndex(path string) (idx indexFile, ok bool, err error) {
	if path == "" {
		return indexFile{}, false, nil
	}
	// Read whole, then decoded: a json.Decoder would copy the document
	// into a buffer it grows step by step, which costs as much as the
	// decoding for a big index.
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return indexFile{}, false, nil
	}
	if err != nil {
		return indexFile{}, false, fmt.Errorf("open index: %w", err)
	}
	if err := json.Unmarshal(data, &idx); err != nil {
		return indexFile{}, false, fmt.Errorf("read index %s: %w", path, err)
	}
	if idx.Format != indexFormat {
		return indexFile{}, false, fmt.Errorf("read index %s: unknown format %d", path, idx.Format)
	}
	if idx.Files == nil {
		idx.Files = map[string]*entry{}
	}
	return idx, true, nil
}

// saveIndex writes the index atomically: a temporary file in the same
// folder, synced, then renamed over the old one.
func saveIndex(path string, idx *indexFile) (err error) {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("create index folder: %w", err)
	}
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".*.tmp")
	if err != nil {
		return fmt.Errorf("create index: %w", err)
	}
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(f.Name())
		}
	}()
	bw := bufio.NewWriterSize(f, 1<<16)
	if err := writeIndex(bw, idx); err != nil {
		return fmt.Errorf("write index: %w", err)
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("write index: %w", err)
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("sync index: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("close index: %w", err)
	}
	if err := os.Rename(f.Name(), path); err != nil {
		return fmt.Errorf("rename index: %w", err)
	}
	return nil
}

// writeIndex writes idx as encoding/json would (less the HTML escaping
// and the order of the files), one entry at a time: encoding/json builds
// the whole document in memory first, which for a big workspace costs
// more than the rest of a save.
func writeIndex(w io.Writer, idx *indexFile) error {
	b := make([]byte, 0, 1024)
	b = append(b, `{"format":`...)
	b = strconv.AppendInt(b, int64(idx.Format), 10)
	b = append(b, `,"workspace":`...)
	b = jsonenc.String(b, idx.Workspace, false)
	b = append(b, `,"root":`...)
	b = jsonenc.String(b, idx.Root, false)
	b = append(b, `,"seq":`...)
	b = strconv.AppendUint(b, idx.Seq, 10)
	b = append(b, `,"saved":`...)
	b = appendJSONTime(b, idx.Saved)
	if idx.Kept != "" {
		b = append(b, `,"kept":`...)
		b = jsonenc.String(b, idx.Kept, false)
	}
	b = append(b, `,"files":{`...)
	first := true
	for rel, e := range idx.Files {
		if !first {
			b = append(b, ',')
		}
		first = false
		b = jsonenc.String(b, rel, false)
		b = append(b, ':')
		b = appendEntry(b, e)
		if len(b) >= 32<<10 {
			if _, err := w.Write(b); err != nil {
				return err
			}
			b = b[:0]
		}
	}
	b = append(b, "}}\n"...)
	_, err := w.Write(b)
	return err
}

func appendEntry(b []byte, e *entry) []byte {
	if e == nil {
		return append(b, "null"...)
	}
	b = append(b, `{"size":`...)
	b = strconv.AppendInt(b, e.Size, 10)
	b = append(b, `,"sha256":`...)
	b = jsonenc.String(b, e.SHA256, false)
	b = append(b, `,"mtime":`...)
	b = appendJSONTime(b, e.ModTime)
	if e.Version != 0 {
		b = append(b, `,"version":`...)
		b = strconv.AppendUint(b, e.Version, 10)
	}
	if e.Dev != 0 {
		b = append(b, `,"dev":`...)
		b = strconv.AppendUint(b, e.Dev, 10)
	}
	if e.Ino != 0 {
		b = append(b, `,"ino":`...)
		b = strconv.AppendUint(b, e.Ino, 10)
	}
	b = append(b, `,"hashed":`...)
	b = appendJSONTime(b, e.Hashed)
	if e.Link != "" {
		b = append(b, `,"link":`...)
		b = jsonenc.String(b, e.Link, false)
	}
	return append(b, '}')
}

// appendJSONTime appends t as time.Time's MarshalJSON does. A time it
// would refuse (a year beyond 9999, which touch can set) is written as the
// zero time: the file is then hashed again at the next start, which is
// all that the index loses.
func appendJSONTime(b []byte, t time.Time) []byte {
	if out, ok := jsonenc.Time(b, t); ok {
		return out
	}
	out, _ := jsonenc.Time(b, time.Time{})
	return out
}
