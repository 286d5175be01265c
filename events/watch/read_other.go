//go:build !linux

package watch

import (
	"fmt"
	"io"
)

// readFile opens path without following a symlink at its last component
// where the platform allows, checks that it is a regular file, and writes
// its content to w through buf.
func readFile(path string, buf []byte, w io.Writer) (int64, fileMeta, error) {
	f, err := openNoFollow(path)
	if err != nil {
		return 0, fileMeta{}, fmt.Errorf("open file: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return 0, fileMeta{}, fmt.Errorf("stat file: %w", err)
	}
	meta := fileMeta{regular: fi.Mode().IsRegular(), mtime: fi.ModTime(), id: idOf(fi)}
	if !meta.regular {
		return 0, meta, nil
	}
	n, err := io.CopyBuffer(w, struct{ io.Reader }{f}, buf) // hide File.WriteTo, which brings its own buffer
	if err != nil {
		return n, meta, fmt.Errorf("read file: %w", err)
	}
	return n, meta, nil
}
