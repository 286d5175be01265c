package watch

import (
	"context"
	"sync/atomic"
	"time"
)

// state is everything Run's goroutine owns besides the index.
type state struct {
	settling // paths waiting for quiet or for their pair; see pending.go

	kern       notifier                   // the folders watched and what happens in them; see notify.go
	poll       *poller                    // the folders polled instead, if any; see poll.go
	dirs       map[string]fileID          // watched folders ("" is the root)
	unwatched  map[string]bool            // folders whose watch could not be added
	links      map[string]map[string]bool // link target → links to it
	dirty      bool                       // the index changed since it was saved
	saves      chan<- *indexFile          // to the saver goroutine
	saveFailed atomic.Bool                // set by the saver
	saved      time.Time                  // when save last ran
	retries    map[string]*retry          // paths that could not be read, to read again (see retryLater)

	shortWarned  bool // the lack of descriptors was logged and has not ended
	watchWarned  bool // a folder that could not be watched was logged, and some still cannot be
	pubRetrying  int  // what publishCounts last added to Counters
	pubUnwatched int

	// Events handed to Appender.AppendBatch at the next flush, and the
	// paths they touch: the index learns of them (and their seqs) then.
	ctx    context.Context
	queued []queuedEvent
	busy   map[string]bool
	err    error // a flush that failed outside emit; Run returns it

	// quietDue is set when a read left something to settle once the
	// kernel is quiet (settleQuiet): a rename waiting for its pair, a
	// new file its writer closed, a removal.
	quietDue bool
	quietAt  time.Time // when a quiet longer than maxBlockingQuiet is due

	// rm decides whether a removal may be reported once the kernel is
	// quiet; see removal.go.
	rm removalState

	// Contents read to hash a change, by sha256, until the change is
	// reported (offer) or the loop's iteration ends; see keep.go.
	captured map[string][]byte

	root  rootState // the workspace folder itself; see vanish.go
	held  heldState // changes the log had no room for; see hold.go
	sweep bool      // the first walk removes leftover temporary files (Options.Leftover)
}

func newState(ctx context.Context, kern notifier) *state {
	return &state{
		settling:  newSettling(),
		kern:      kern,
		dirs:      map[string]fileID{},
		unwatched: map[string]bool{},
		links:     map[string]map[string]bool{},
		ctx:       ctx,
		busy:      map[string]bool{},
		retries:   map[string]*retry{},
		rm:        newRemovalState(),
	}
}

// awaitQuiet notes that something waits for the kernel to be quiet (see
// settleQuiet), where the kernel can tell; elsewhere the settle time
// alone bounds it.
func (st *state) awaitQuiet() {
	if st.kern.quiet != nil {
		st.quietDue = true
	}
}

// nothingDue reports whether no path waits for a deadline.
func (st *state) nothingDue() bool {
	return len(st.creates)+len(st.updates)+len(st.deletes)+len(st.renames)+len(st.retries) == 0 && !st.quietDue
}
