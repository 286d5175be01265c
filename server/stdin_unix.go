//go:build unix

package server

import (
	"io"
	"os"
	"sync"
	"syscall"
)

// pollable returns a reader of the same input as in that waits in the
// runtime's network poller rather than in a blocking read system call,
// and a function that undoes it; ServeStdio calls undo when it returns.
//
// A host hands an MCP server its stdin as a pipe in blocking mode, which
// os.Stdin then reads with one blocking read(2) per line: the goroutine
// holds a thread in the kernel between requests, and the scheduler's
// monitor keeps taking its processor back and handing it to another
// thread, several context switches per request. Reading a
// non-blocking duplicate through the poller avoids them, and closing the
// duplicate also ends a read still pending when the session ends.
//
// Only a pipe or a socket that is in blocking mode is changed: a terminal
// or a file is read as it is. O_NONBLOCK belongs to the open pipe, which
// the caller's descriptor shares, so undo sets blocking mode back.
func pollable(in io.Reader) (io.Reader, func()) {
	f, ok := in.(*os.File)
	if !ok {
		return in, func() {}
	}
	rc, err := f.SyscallConn()
	if err != nil {
		return in, func() {}
	}
	fd := -1
	if err := rc.Control(func(u uintptr) { fd = int(u) }); err != nil || fd < 0 {
		return in, func() {}
	}
	var st syscall.Stat_t
	if err := syscall.Fstat(fd, &st); err != nil {
		return in, func() {}
	}
	if m := st.Mode & syscall.S_IFMT; m != syscall.S_IFIFO && m != syscall.S_IFSOCK {
		return in, func() {}
	}
	if nonblocking(fd) {
		return in, func() {} // already read through the poller
	}
	dup, err := syscall.Dup(fd)
	if err != nil {
		return in, func() {}
	}
	syscall.CloseOnExec(dup)
	if err := syscall.SetNonblock(dup, true); err != nil {
		_ = syscall.Close(dup)
		return in, func() {}
	}
	pf := os.NewFile(uintptr(dup), f.Name()) // non-blocking: registered with the poller
	var once sync.Once
	return pf, func() {
		once.Do(func() {
			_ = pf.Close()
			_ = syscall.SetNonblock(fd, false)
		})
	}
}

// nonblocking reports whether fd's open file is in non-blocking mode.
func nonblocking(fd int) bool {
	flags, _, errno := syscall.Syscall(syscall.SYS_FCNTL, uintptr(fd), syscall.F_GETFL, 0)
	return errno == 0 && flags&syscall.O_NONBLOCK != 0
}
