//go:build !unix

package node

// raiseFileLimit does nothing where there is no RLIMIT_NOFILE; the limit
// is unknown (0).
func raiseFileLimit() (limit uint64, raised bool, err error) { return 0, false, nil }
