package lock

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"time"

	"github.com/oklog/ulid/v2"

	"github.com/filecast/filecast/events"
)

// record is the value stored under a lock's key: the path it locks, its
// mode and its holders. A shared lock has one or more holders, an
// exclusive lock exactly one.
type record struct {
	Workspace  string    `json:"workspace"`
	Path       string    `json:"path"`
	Mode       string    `json:"mode"`
	KeyExpires time.Time `json:"key_expires"` // when the key's server-side TTL runs out, at the earliest
	Holders    []holder  `json:"holders"`
}

// holder is one lease in a record. Only the sha256 of its token is stored.
type holder struct {
	Holder    string `json:"holder"`
	TokenHash string `json:"token_sha256"`
	// Fencing is the revision that created the lease; 0 in a stored value
	// means "the revision of this value" and is filled in by decodeRecord.
	Fencing uint64        `json:"fencing_token,omitempty"`
	TTL     time.Duration `json:"ttl_ns"`
	Expires time.Time     `json:"expires_at"`
}

func decodeRecord(data []byte, rev uint64) (*record, error) {
	var r record
	if err := json.Unmarshal(data, &r); err != nil {
		return nil, fmt.Errorf("decode lock record at revision %d: %w", rev, err)
	}
	for i := range r.Holders {
		if r.Holders[i].Fencing == 0 {
			r.Holders[i].Fencing = rev
		}
	}
	return &r, nil
}

// split returns the holders whose lease is still running at now and those
// whose lease has run out.
func (r *record) split(now time.Time) (live, gone []holder) {
	if r == nil {
		return nil, nil
	}
	for _, h := range r.Holders {
		if now.Before(h.Expires) {
			live = append(live, h)
		} else {
			gone = append(gone, h)
		}
	}
	return live, gone
}

// latest returns the latest expiry of hs.
func latest(hs []holder) time.Time {
	var t time.Time
	for _, h := range hs {
		if h.Expires.After(t) {
			t = h.Expires
		}
	}
	return t
}

// keyTTL is the server-side TTL a value needs so that it outlives its last
// holder: whole seconds, at least one.
func keyTTL(expires, now time.Time) time.Duration {
	d := expires.Sub(now)
	if d < time.Second {
		return time.Second
	}
	return ((d + time.Second - 1) / time.Second) * time.Second
}

func find(hs []holder, hash string) int {
	for i, h := range hs {
		if h.TokenHash == hash {
			return i
		}
	}
	return -1
}

func (r *record) lease(h holder) events.Lease {
	return events.Lease{
		Workspace:    r.Workspace,
		Path:         r.Path,
		Holder:       h.Holder,
		Mode:         r.Mode,
		FencingToken: h.Fencing,
		ExpiresAt:    h.Expires,
	}
}

// newToken returns a fresh secret lock token: "lk_" and 24 characters of
// base64url from 18 random bytes.
func newToken() string {
	var b [18]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails
	return tokenPrefix + base64.RawURLEncoding.EncodeToString(b[:])
}

func hashToken(token string) string {
	sum := sha256.Sum256([]byte(token))
	return hex.EncodeToString(sum[:])
}

// eventID returns the ID of an event that every hub observing the same
// lease derives alike: a ULID whose time is the lease's expiry and whose
// entropy is a hash of the bucket, key, fencing token, expiry and type.
// The log's Nats-Msg-Id dedup then keeps one of them.
func eventID(typ events.Type, bucket, key string, h holder) string {
	s := sha256.New()
	var n [16]byte
	binary.BigEndian.PutUint64(n[:8], h.Fencing)
	binary.BigEndian.PutUint64(n[8:], uint64(h.Expires.UnixNano()))
	s.Write([]byte(typ))
	s.Write([]byte{0})
	s.Write([]byte(bucket))
	s.Write([]byte{0})
	s.Write([]byte(key))
	s.Write([]byte{0})
	s.Write(n[:])
	sum := s.Sum(nil)
	var id ulid.ULID
	_ = id.SetTime(uint64(max(h.Expires.UnixMilli(), 0)))
	_ = id.SetEntropy(sum[:10])
	return id.String()
}
