package watch

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/filecast/filecast/events"
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
	Files     map[string]*entry `json:"files"`
}

const indexFormat = 1

// loadIndex reads the persisted index; ok is false when there is none.
func loadIndex(path string) (idx indexFile, ok bool, err error) {
	if path == "" {
		return indexFile{}, false, nil
	}
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return indexFile{}, false, nil
	}
	if err != nil {
		return indexFile{}, false, fmt.Errorf("open index: %w", err)
	}
	defer f.Close()
	if err := json.NewDecoder(bufio.NewReader(f)).Decode(&idx); err != nil {
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
	if err := json.NewEncoder(bw).Encode(idx); err != nil {
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
