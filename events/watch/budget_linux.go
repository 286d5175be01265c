//go:build linux

package watch

import (
	"os"
	"strconv"
	"strings"
)

// maxUserWatches is where Linux says how many inotify watches a user may
// hold; a variable for the tests.
var maxUserWatches = "/proc/sys/fs/inotify/max_user_watches"

// NewBudget returns the Budget of this platform's notifications for a
// process whose open file limit is openFiles (0: unknown). On Linux it is
// inotify's: fs.inotify.max_user_watches folders, whatever openFiles (an
// inotify instance is one descriptor); no limit when the value cannot be
// read.
func NewBudget(openFiles uint64) *Budget {
	b, err := os.ReadFile(maxUserWatches)
	if err != nil {
		return Unlimited()
	}
	n, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || n <= 0 {
		return Unlimited()
	}
	return inotifyBudget(n)
}
