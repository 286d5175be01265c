package leader

import (
	"context"
	"errors"
	"time"

	"github.com/filecast/filecast/events/internal/wait"
)

// TermPause is how long RunTerms waits after a term that failed before it
// campaigns again, so that a healthier candidate may win first.
const TermPause = 500 * time.Millisecond

// RunTerms is Run for a lead function that may fail: a term whose lead
// function returns an error by itself (the watch of a workspace whose log
// became unreachable, say) is logged as a warning, and after TermPause
// the candidate campaigns again; the next term starts afresh. It returns
// nil once ctx is done, or Run's error for a bad key, id or lead
// function (ErrBadKey, ErrBadOptions).
func (e *Elector) RunTerms(ctx context.Context, key, id string, lead func(ctx context.Context) error) error {
	for {
		err := e.Run(ctx, key, id, lead)
		if errors.Is(err, ErrBadKey) || errors.Is(err, ErrBadOptions) {
			return err
		}
		if ctx.Err() != nil {
			return nil
		}
		e.log.Warn("term ended; campaigning again", "key", key, "id", id, "err", err)
		if !wait.Sleep(ctx, TermPause) {
			return nil
		}
	}
}
