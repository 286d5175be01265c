package natsd

import (
	"context"
	"errors"
	"strings"

	"github.com/nats-io/nats.go/jetstream"
)

// JetStream error codes that mean the server has no room.
const (
	codeInsufficientResources = 10023 // the server's storage limit is reached
	codeMemoryExceeded        = 10028
	codeStorageExceeded       = 10047
	codeStreamCreate          = 10049 // creating a stream failed; only some causes are a lack of room
	codeStreamUpdate          = 10069 // updating a stream failed; likewise
	codeStoreFailed           = 10077 // storing a message failed; likewise
)

// NoRoom reports whether err says the server could not store something
// for want of room: its storage limit reached, a stream's byte limit, or
// a full disk. Such a refusal stored nothing.
func NoRoom(err error) bool {
	if err == nil {
		return false
	}
	if errors.Is(err, ErrNoRoom) {
		return true
	}
	if apiErr, ok := errors.AsType[*jetstream.APIError](err); ok {
		switch apiErr.ErrorCode {
		case codeInsufficientResources, codeMemoryExceeded, codeStorageExceeded:
			return true
		case codeStreamCreate, codeStreamUpdate, codeStoreFailed:
			return noRoomText(apiErr.Description)
		}
	}
	return noRoomText(err.Error())
}

func noRoomText(s string) bool {
	s = strings.ToLower(s)
	for _, m := range []string{"no space left", "disk quota exceeded", "insufficient resources", "insufficient storage", "maximum bytes exceeded", "resource limits exceeded"} {
		if strings.Contains(s, m) {
			return true
		}
	}
	return false
}

// CreateOrUpdateStream is js.CreateOrUpdateStream, except that when the
// server has no room to update an existing stream's configuration (a
// full disk: even an unchanged configuration is written again) the stream
// is used as it is, and kept reports so. A process can then start on a
// full disk and serve what the store holds.
func CreateOrUpdateStream(ctx context.Context, js jetstream.JetStream, cfg jetstream.StreamConfig) (s jetstream.Stream, kept bool, err error) {
	s, err = js.CreateOrUpdateStream(ctx, cfg)
	if err == nil || !NoRoom(err) {
		return s, false, err
	}
	if old, serr := js.Stream(ctx, cfg.Name); serr == nil {
		return old, true, nil
	}
	return nil, false, err
}

// CreateOrUpdateKeyValue is js.CreateOrUpdateKeyValue with the same
// fallback as CreateOrUpdateStream.
func CreateOrUpdateKeyValue(ctx context.Context, js jetstream.JetStream, cfg jetstream.KeyValueConfig) (kv jetstream.KeyValue, kept bool, err error) {
	kv, err = js.CreateOrUpdateKeyValue(ctx, cfg)
	if err == nil || !NoRoom(err) {
		return kv, false, err
	}
	if old, kerr := js.KeyValue(ctx, cfg.Bucket); kerr == nil {
		return old, true, nil
	}
	return nil, false, err
}
