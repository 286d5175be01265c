//go:build !unix

package server_test

// raiseFileLimit does nothing where there is no RLIMIT_NOFILE.
func raiseFileLimit() {}
