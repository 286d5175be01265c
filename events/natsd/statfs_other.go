//go:build !(linux || darwin || freebsd || dragonfly)

package natsd

// diskFree is unknown on this platform: Room then relies on JetStream's
// own storage limit.
func diskFree(string) (int64, bool) { return 0, false }
