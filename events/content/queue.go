package content

import (
	"context"
	"errors"
	"fmt"
)

// Put queues data to be stored under sha, its sha256 in lowercase hex,
// in workspace ws, and returns without waiting for it to be stored. It
// copies data. Data that is not text is not stored: only that it is
// binary. While the queue is full it waits for room until ctx is done,
// and then returns an error wrapping ErrBusy and stores nothing. Putting
// a content already stored stores it again (it becomes current if it was
// retired); one this Store put recently is skipped. It returns
// ErrTooLarge for data over MaxFileSize (and records that fact, as
// MarkTooLarge does), ErrBadKey for a malformed sha, ErrClosed after
// Close. A failure to store is logged and counted in Stats; Get then
// returns ErrNotStored.
func (s *Store) Put(ctx context.Context, ws, sha string, data []byte) error {
	if err := s.checkPut(ws, sha, data); err != nil {
		return fmt.Errorf("put content: %w", err)
	}
	if sha == EmptySHA256 {
		return nil
	}
	o := op{subject: Subject(ws, sha), sha: sha, size: int64(len(data))}
	if err := s.enqueue(ctx, o, data, true); err != nil {
		return fmt.Errorf("put content: %w", err)
	}
	return nil
}

// Offer is Put that never waits: it reports whether data was queued, and
// drops it when the queue is full (counted in Stats.Dropped), the key is
// malformed, the data too large (Stats.TooLarge; the fact is recorded
// as by MarkTooLarge) or the store closed.
func (s *Store) Offer(ws, sha string, data []byte) bool {
	if s.checkPut(ws, sha, data) != nil {
		return false
	}
	if sha == EmptySHA256 {
		return true
	}
	return s.enqueue(context.Background(), op{subject: Subject(ws, sha), sha: sha, size: int64(len(data))}, data, false) == nil
}

// MarkTooLarge records, without waiting, that the content under sha is
// over MaxFileSize, for a caller that does not read such files: Get then
// returns ErrTooLarge rather than ErrNotStored. It reports false when the
// queue is full, the key is malformed or the store closed.
func (s *Store) MarkTooLarge(ws, sha string) bool {
	if !validKey(sha) || sha == EmptySHA256 {
		return false
	}
	s.stats.tooLarge.Add(1)
	return s.mark(ws, sha, notTooLarge)
}

func (s *Store) mark(ws, sha, why string) bool {
	return s.enqueue(context.Background(), op{subject: Subject(ws, sha), sha: sha, notKept: why}, nil, false) == nil
}

// Retire queues the retirement of the content under sha in ws: it is
// kept for Options.MaxAge from now, then dropped, unless it is put again.
// Call it when no file of ws has the content any more. It never waits:
// it reports false, and retires nothing, when the queue is full or the
// key malformed (the content then stays until the size cap drops it).
func (s *Store) Retire(ws, sha string) bool {
	if !validKey(sha) {
		return false
	}
	if sha == EmptySHA256 {
		return true
	}
	return s.enqueue(context.Background(), op{subject: Subject(ws, sha), sha: sha, retire: true}, nil, false) == nil
}

func (s *Store) checkPut(ws, sha string, data []byte) error {
	switch {
	case !validKey(sha):
		return fmt.Errorf("%w: %q", ErrBadKey, truncate(sha))
	case int64(len(data)) > s.opts.MaxFileSize:
		s.stats.tooLarge.Add(1)
		if sha != EmptySHA256 {
			s.mark(ws, sha, notTooLarge)
		}
		return fmt.Errorf("%w: %d bytes, over the limit of %d", ErrTooLarge, len(data), s.opts.MaxFileSize)
	}
	return nil
}

// enqueue reserves o.size bytes, waiting for them while ctx allows when
// wait is set, and hands o (with a copy of data) to its writer.
func (s *Store) enqueue(ctx context.Context, o op, data []byte, wait bool) error {
	if err := s.reserve(ctx, o, wait); err != nil {
		if errors.Is(err, ErrBusy) {
			s.stats.dropped.Add(1)
		}
		return err
	}
	if data != nil {
		o.data = append([]byte(nil), data...)
	}
	ch := s.shards[shard(o.sha, len(s.shards))]
	select {
	case ch <- o:
		return nil
	default:
	}
	if wait {
		select {
		case ch <- o:
			return nil
		case <-ctx.Done():
		case <-s.done:
		}
	}
	s.finish(o, o.size)
	s.stats.dropped.Add(1)
	if s.isClosed() {
		return ErrClosed
	}
	return fmt.Errorf("%w: %d writes queued", ErrBusy, queueLen)
}

// shard picks the writer of a key, so that the writes of one key keep
// their order.
func shard(sha string, n int) int {
	return int(fromHex(sha[0])<<4|fromHex(sha[1])) % n
}

func fromHex(c byte) byte {
	if c >= 'a' {
		return c - 'a' + 10
	}
	return c - '0'
}

// reserve takes o.size bytes of the queue's room and counts one pending
// operation (and, for a put, one write of its subject). A write larger
// than the whole room goes when nothing else is reserved.
func (s *Store) reserve(ctx context.Context, o op, wait bool) error {
	n := o.size
	for {
		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			return ErrClosed
		}
		if s.used == 0 || s.used+n <= s.opts.QueueBytes {
			s.used += n
			s.pending++
			if !o.retire {
				w := s.writing[o.subject]
				if w == nil {
					w = &writing{done: make(chan struct{})}
					s.writing[o.subject] = w
				}
				w.n++
			}
			s.mu.Unlock()
			return nil
		}
		freed := s.freed
		s.mu.Unlock()
		if !wait {
			return fmt.Errorf("%w: %d of %d bytes queued", ErrBusy, s.queued(), s.opts.QueueBytes)
		}
		select {
		case <-freed:
		case <-ctx.Done():
			return fmt.Errorf("%w: %w", ErrBusy, ctx.Err())
		case <-s.done:
			return ErrClosed
		}
	}
}

func (s *Store) queued() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.used
}

// finish releases n bytes and ends the pending operation o.
func (s *Store) finish(o op, n int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.used -= n
	close(s.freed)
	s.freed = make(chan struct{})
	s.pending--
	if s.pending == 0 {
		close(s.idle)
		s.idle = make(chan struct{})
	}
	if o.retire {
		return
	}
	if w := s.writing[o.subject]; w != nil {
		if w.n--; w.n == 0 {
			close(w.done)
			delete(s.writing, o.subject)
		}
	}
}

// written returns a channel closed once no put of subject is queued or
// in flight (nil when none is).
func (s *Store) written(subject string) <-chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	if w := s.writing[subject]; w != nil {
		return w.done
	}
	return nil
}

// grow reserves n more bytes for an operation already pending, if the
// queue has room. It does not wait: the room may be held by operations
// queued behind the caller.
func (s *Store) grow(n int64) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.used+n > s.opts.QueueBytes {
		return false
	}
	s.used += n
	return true
}

func (s *Store) isClosed() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closed
}
