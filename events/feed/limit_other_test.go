//go:build !unix

package feed_test

// raiseFileLimit returns the number of descriptors the benchmarks assume
// where there is no RLIMIT_NOFILE to raise.
func raiseFileLimit() int { return 1024 }
