package relay

import (
	"context"
	"fmt"
	"sync"

	"github.com/nats-io/nats.go"
)

// mailbox collects the messages of one subscription to an inbox for a
// reader that takes them one at a time. It uses a callback subscription:
// a synchronous one allocates a channel of the connection's SubChanLen
// (64k messages, 512 KiB) per request. Messages wait in the mailbox up
// to limit bytes; beyond that the reader gets an error.
type mailbox struct {
	sub   *nats.Subscription
	limit int
	ready chan struct{} // a token when msgs may have grown

	mu    sync.Mutex
	msgs  []*nats.Msg
	bytes int
	over  bool
}

// listen subscribes to subject for the messages of one exchange.
func listen(nc *nats.Conn, subject string, limit int) (*mailbox, error) {
	b := &mailbox{limit: limit, ready: make(chan struct{}, 1)}
	sub, err := nc.Subscribe(subject, b.put)
	if err != nil {
		return nil, fmt.Errorf("subscribe to %s: %w", subject, err)
	}
	b.sub = sub
	return b, nil
}

func (b *mailbox) put(m *nats.Msg) {
	b.mu.Lock()
	if b.bytes+len(m.Data) > b.limit {
		b.over = true
	} else {
		b.msgs = append(b.msgs, m)
		b.bytes += len(m.Data)
	}
	b.mu.Unlock()
	select {
	case b.ready <- struct{}{}:
	default:
	}
}

// next returns the next message, waiting until one comes or ctx is done.
// A no-responders status is nats.ErrNoResponders.
func (b *mailbox) next(ctx context.Context) (*nats.Msg, error) {
	for {
		b.mu.Lock()
		if len(b.msgs) > 0 {
			m := b.msgs[0]
			b.msgs[0] = nil
			b.msgs = b.msgs[1:]
			b.bytes -= len(m.Data)
			b.mu.Unlock()
			if len(m.Data) == 0 && m.Header.Get("Status") == "503" {
				return nil, nats.ErrNoResponders
			}
			return m, nil
		}
		over := b.over
		b.mu.Unlock()
		if over {
			return nil, fmt.Errorf("%w: more than %d bytes waiting", errProtocol, b.limit)
		}
		select {
		case <-b.ready:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

// close unsubscribes.
func (b *mailbox) close() { _ = b.sub.Unsubscribe() }
