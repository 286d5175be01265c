package content

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"

	"github.com/klauspost/compress/s2"
	"github.com/nats-io/nats.go/jetstream"
)

// Get returns the content stored under sha in ws. It returns ErrNotStored
// when the store does not have it — never stored, dropped by the size cap
// or the retention — or when what it has does not match sha; ErrBinary or
// ErrTooLarge when it knows the content but does not keep it; ErrBadKey
// for a malformed sha; other errors when JetStream does not answer. A
// content this Store has queued is waited for (bounded by ctx). The
// content of EmptySHA256 is always there.
func (s *Store) Get(ctx context.Context, ws, sha string) ([]byte, error) {
	if !validKey(sha) {
		return nil, fmt.Errorf("get content: %w: %q", ErrBadKey, truncate(sha))
	}
	if s.isClosed() {
		return nil, fmt.Errorf("get content: %w", ErrClosed)
	}
	if sha == EmptySHA256 {
		return []byte{}, nil
	}
	subject := Subject(ws, sha)
	if w := s.written(subject); w != nil {
		select {
		case <-w:
		case <-ctx.Done():
			return nil, fmt.Errorf("get content %.12s: %w", sha, ctx.Err())
		case <-s.done:
			return nil, fmt.Errorf("get content %.12s: %w", sha, ErrClosed)
		}
	}
	msg, err := s.get.GetLastMsgForSubject(ctx, subject)
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return nil, fmt.Errorf("get content %.12s: %w", sha, ErrNotStored)
	}
	if err != nil {
		return nil, fmt.Errorf("get content %.12s: %w", sha, err)
	}
	switch msg.Header.Get(hdrNotKept) {
	case "":
	case notBinary:
		return nil, fmt.Errorf("get content %.12s: %w", sha, ErrBinary)
	case notTooLarge:
		return nil, fmt.Errorf("get content %.12s: %w", sha, ErrTooLarge)
	default:
		return nil, fmt.Errorf("get content %.12s: %w", sha, ErrNotStored)
	}
	data, err := s.decode(msg)
	if err != nil {
		s.warn("stored content cannot be read; it counts as not stored", "sha256", sha, "err", err)
		return nil, fmt.Errorf("get content %.12s: %w", sha, ErrNotStored)
	}
	if sum := sha256.Sum256(data); hex.EncodeToString(sum[:]) != sha {
		s.warn("stored content does not match its sha256; it counts as not stored", "sha256", sha)
		return nil, fmt.Errorf("get content %.12s: %w", sha, ErrNotStored)
	}
	return data, nil
}

// maxDecoded bounds the size a stored content may claim when decoded.
const maxDecoded = 64 << 20

func (s *Store) decode(msg *jetstream.RawStreamMsg) ([]byte, error) {
	switch enc := msg.Header.Get(hdrEncoding); enc {
	case "":
		return msg.Data, nil
	case encS2:
		n, err := s2.DecodedLen(msg.Data)
		if err != nil {
			return nil, err
		}
		if n > max(maxDecoded, int(s.opts.MaxFileSize)) {
			return nil, fmt.Errorf("decoded size %d is over the limit", n)
		}
		return s2.Decode(nil, msg.Data)
	default:
		return nil, fmt.Errorf("unknown encoding %q", enc)
	}
}
