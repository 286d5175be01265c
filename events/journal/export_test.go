package journal

import (
	"context"

	"github.com/filecast/filecast/events"
)

// ConsumerRead exposes the fallback read path (used when a server does not
// answer batched direct gets) to the tests.
func (j *Journal) ConsumerRead(ctx context.Context, ws string, after uint64, limit int) ([]events.Event, error) {
	return j.consumerRead(ctx, ws, after, limit)
}

// DirectRead exposes the batched direct-get read path to the tests.
func (j *Journal) DirectRead(ctx context.Context, ws string, after uint64, limit int) ([]events.Event, error) {
	return j.directRead(ctx, ws, after+1, limit)
}
