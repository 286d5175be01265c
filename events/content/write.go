package content

import (
	"context"
	"crypto/sha256"
	"errors"
	"time"

	"github.com/klauspost/compress/s2"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/filecast/filecast/events/diff"
	"github.com/filecast/filecast/events/natsd"
)

// write runs one writer until ctx is done.
func (s *Store) write(ctx context.Context, ch <-chan op) {
	for {
		select {
		case <-ctx.Done():
			return
		case o := <-ch:
			if o.retire {
				s.retire(ctx, o)
			} else {
				s.put(ctx, o)
			}
		}
	}
}

func (s *Store) put(ctx context.Context, o op) {
	if o.notKept == "" && !diff.IsText(o.data) {
		o.notKept, o.data = notBinary, nil
	}
	recentKey := o.subject
	if o.notKept != "" {
		recentKey += "#" + o.notKept
	}
	if s.recent.has(recentKey) {
		s.stats.skipped.Add(1)
		s.finish(o, o.size)
		return
	}
	if s.opts.Room != nil {
		if err := s.opts.Room(); err != nil {
			s.stats.noRoom.Add(1)
			s.warn("content not stored: the store has no room", "err", err)
			s.finish(o, o.size)
			return
		}
	}
	msg := &nats.Msg{Subject: o.subject, Data: o.data}
	if o.notKept == "" {
		if c := s2.Encode(nil, o.data); len(c) < len(o.data) {
			msg.Header = nats.Header{hdrEncoding: []string{encS2}}
			msg.Data = c
		}
		if int64(len(msg.Data)) > s.maxPayload {
			s.stats.tooLarge.Add(1)
			msg.Header, msg.Data, o.notKept = nil, nil, notTooLarge
		}
	}
	if o.notKept != "" {
		msg.Header = nats.Header{hdrNotKept: []string{o.notKept}}
		msg.Data = nil
		if o.notKept == notBinary {
			s.stats.binary.Add(1)
		}
	}
	o.raw, o.data = len(o.data), nil
	s.publish(ctx, o, msg, recentKey)
}

func (s *Store) retire(ctx context.Context, o op) {
	s.recent.remove(o.subject)
	s.recent.remove(o.subject + "#" + notBinary)
	s.recent.remove(o.subject + "#" + notTooLarge)
	gctx, cancel := context.WithTimeout(ctx, apiTimeout)
	old, err := s.get.GetLastMsgForSubject(gctx, o.subject)
	cancel()
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		s.finish(o, o.size)
		return // nothing to retire
	}
	if err != nil {
		s.stats.failed.Add(1)
		s.warn("content not retired", "sha256", o.sha, "err", err)
		s.finish(o, o.size)
		return
	}
	if !s.grow(int64(len(old.Data))) {
		s.stats.dropped.Add(1)
		s.finish(o, o.size)
		return // the content stays current until the size cap drops it
	}
	o.size += int64(len(old.Data))
	msg := &nats.Msg{Subject: old.Subject, Header: nats.Header{}, Data: old.Data}
	for _, h := range []string{hdrEncoding, hdrNotKept} {
		if v := old.Header.Get(h); v != "" {
			msg.Header.Set(h, v)
		}
	}
	// Written again with a TTL, unless something wrote it since it was read.
	s.publish(ctx, o, msg, "", jetstream.WithMsgTTL(s.opts.MaxAge), jetstream.WithExpectLastSequencePerSubject(old.Sequence))
}

func (s *Store) publish(ctx context.Context, o op, msg *nats.Msg, recentKey string, opts ...jetstream.PublishOpt) {
	fut, err := s.pub.PublishMsgAsync(msg, opts...)
	if err != nil {
		s.stats.failed.Add(1)
		s.warn("content not stored", "sha256", o.sha, "err", err)
		s.finish(o, o.size)
		return
	}
	if recentKey != "" {
		s.recent.add(recentKey)
	}
	select {
	case s.acks <- inflight{op: o, stored: len(msg.Data), fut: fut}:
	case <-ctx.Done():
	}
}

// collect counts JetStream's acknowledgements until ctx is done.
func (s *Store) collect(ctx context.Context) {
	for {
		var w inflight
		select {
		case <-ctx.Done():
			return
		case w = <-s.acks:
		}
		select {
		case <-ctx.Done():
			return
		case <-w.fut.Ok():
			switch {
			case w.op.retire:
				s.stats.retired.Add(1)
			case w.op.notKept != "":
			default:
				s.stats.stored.Add(1)
				s.stats.bytesIn.Add(int64(w.op.raw))
				s.stats.bytesStored.Add(int64(w.stored))
			}
		case err := <-w.fut.Err():
			s.failed(w.op, err)
		}
		s.finish(w.op, w.op.size)
	}
}

func (s *Store) failed(o op, err error) {
	if !o.retire {
		s.recent.remove(o.subject)
		s.recent.remove(o.subject + "#" + o.notKept)
	}
	if apiErr, ok := errors.AsType[*jetstream.APIError](err); ok && o.retire &&
		(apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequence || apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequenceConstant) {
		return // written again since it was read: that write wins
	}
	if natsd.NoRoom(err) {
		s.stats.noRoom.Add(1)
		s.warn("content not stored: the store has no room", "err", err)
		return
	}
	s.stats.failed.Add(1)
	s.warn("content not stored", "sha256", o.sha, "err", err)
}

// warn logs a failure, at most once every logEvery.
func (s *Store) warn(msg string, args ...any) {
	now := time.Now().UnixNano()
	last := s.warned.Load()
	if now-last < int64(logEvery) || !s.warned.CompareAndSwap(last, now) {
		return
	}
	s.log.Warn(msg, args...)
}

func validKey(sha string) bool {
	if len(sha) != sha256.Size*2 {
		return false
	}
	for i := range len(sha) {
		if c := sha[i]; (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

// truncate shortens a malformed key for an error message.
func truncate(s string) string {
	if len(s) > 80 {
		return s[:80] + "…"
	}
	return s
}
