//go:build unix

package server_test

import "syscall"

// raiseFileLimit raises the test process's soft limit of open files to
// its hard limit, for tests that open many connections.
func raiseFileLimit() {
	var rl syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl); err == nil && rl.Cur < rl.Max {
		raised := rl
		raised.Cur = rl.Max
		_ = syscall.Setrlimit(syscall.RLIMIT_NOFILE, &raised)
	}
}
