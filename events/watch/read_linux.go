//go:build linux

package watch

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"syscall"
	"time"
)

// readFile opens path without following a symlink at its last component
// (and without blocking on a fifo swapped in for it), checks that it is a
// regular file, and writes its content to w through buf. It works on the
// raw descriptor: an *os.File would try to register a regular file with
// the network poller and read once more to see the end of the file, a
// third more system calls for the small files that change most often.
func readFile(path string, buf []byte, w io.Writer) (int64, fileMeta, error) {
	var fd int
	err := retryEINTR(func() (err error) {
		fd, err = syscall.Open(path, syscall.O_RDONLY|syscall.O_NOFOLLOW|syscall.O_NONBLOCK|syscall.O_CLOEXEC, 0)
		return err
	})
	if err != nil {
		return 0, fileMeta{}, fmt.Errorf("open file: %w", &fs.PathError{Op: "open", Path: path, Err: err})
	}
	defer syscall.Close(fd)
	var st syscall.Stat_t
	if err := retryEINTR(func() error { return syscall.Fstat(fd, &st) }); err != nil {
		return 0, fileMeta{}, fmt.Errorf("stat file: %w", &fs.PathError{Op: "fstat", Path: path, Err: err})
	}
	meta := fileMeta{
		regular: st.Mode&syscall.S_IFMT == syscall.S_IFREG,
		mtime:   time.Unix(int64(st.Mtim.Sec), int64(st.Mtim.Nsec)), //nolint:unconvert // widths differ by platform
		ctime:   time.Unix(int64(st.Ctim.Sec), int64(st.Ctim.Nsec)), //nolint:unconvert // widths differ by platform
		id:      fileID{dev: uint64(st.Dev), ino: uint64(st.Ino)},   //nolint:unconvert // widths differ by platform
	}
	if !meta.regular {
		return 0, meta, nil
	}
	size := int64(st.Size) //nolint:unconvert // widths differ by platform
	var n int64
	for {
		want := len(buf)
		if size-n >= 0 && size-n < int64(want) {
			// One byte more than the size fstat gave: a read that returns
			// exactly what is left has reached the end, with no extra read.
			want = int(size-n) + 1
		}
		var m int
		err := retryEINTR(func() (err error) {
			m, err = syscall.Read(fd, buf[:want])
			return err
		})
		if err != nil {
			return n, meta, fmt.Errorf("read file: %w", &fs.PathError{Op: "read", Path: path, Err: err})
		}
		if m > 0 {
			if _, err := w.Write(buf[:m]); err != nil {
				return n, meta, fmt.Errorf("read file: %w", err)
			}
			n += int64(m)
		}
		if m == 0 || n == size && m < want {
			return n, meta, nil
		}
	}
}

func retryEINTR(f func() error) error {
	for {
		if err := f(); !errors.Is(err, syscall.EINTR) {
			return err
		}
	}
}
