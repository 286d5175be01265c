package webhook

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"hash"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// The Standard Webhooks headers every request carries.
const (
	HeaderID        = "webhook-id"
	HeaderTimestamp = "webhook-timestamp"
	HeaderSignature = "webhook-signature"
)

// SecretPrefix starts every signing secret; the rest is base64.
const SecretPrefix = "whsec_"

// DefaultTolerance is how far webhook-timestamp may be from now in Verify
// when no tolerance is given.
const DefaultTolerance = 5 * time.Minute

const (
	secretBytes = 32
	// maxSignatureHeader bounds the webhook-signature header Verify reads.
	maxSignatureHeader = 8 << 10
	maxSignatures      = 16
)

// NewSecret returns a fresh signing secret: SecretPrefix followed by the
// standard base64 of 32 random bytes.
func NewSecret() string {
	b := make([]byte, secretBytes)
	_, _ = rand.Read(b) // never fails (crypto/rand)
	return SecretPrefix + base64.StdEncoding.EncodeToString(b)
}

// decodeSecret returns the HMAC key of a secret: the base64 after the
// optional SecretPrefix.
func decodeSecret(secret string) ([]byte, error) {
	raw := strings.TrimPrefix(secret, SecretPrefix)
	key, err := base64.StdEncoding.DecodeString(raw)
	if err != nil || len(key) == 0 {
		return nil, fmt.Errorf("%w: expected %q followed by standard base64", ErrBadSecret, SecretPrefix)
	}
	return key, nil
}

func mac(key []byte, id string, ts int64, body []byte) []byte {
	h := hmac.New(sha256.New, key)
	h.Write([]byte(id))
	h.Write([]byte{'.'})
	h.Write(strconv.AppendInt(nil, ts, 10))
	h.Write([]byte{'.'})
	h.Write(body)
	return h.Sum(nil)
}

// Sign returns the Standard Webhooks signature of a message, "v1," followed
// by the base64 HMAC-SHA256 of "id.timestamp.body" keyed with the decoded
// secret. The timestamp is ts in whole unix seconds.
func Sign(secret string, id string, ts time.Time, body []byte) (string, error) {
	key, err := decodeSecret(secret)
	if err != nil {
		return "", fmt.Errorf("sign message: %w", err)
	}
	return "v1," + base64.StdEncoding.EncodeToString(mac(key, id, ts.Unix(), body)), nil
}

// signer makes the webhook-signature header of one webhook's deliveries
// with its secrets decoded once and their HMAC states and buffers reused:
// one keyed HMAC per secret and delivery, no other work. It is not safe for
// concurrent use.
type signer struct {
	keys []signKey // newest first, as the record lists the secrets
	pre  []byte    // "id.timestamp."
	out  []byte
}

type signKey struct {
	mac     hash.Hash
	expires time.Time // zero: never
}

// newSigner decodes secrets; it fails with ErrBadSecret.
func newSigner(secrets []secretEntry) (*signer, error) {
	s := &signer{keys: make([]signKey, 0, len(secrets))}
	for _, e := range secrets {
		key, err := decodeSecret(e.Secret)
		if err != nil {
			return nil, err
		}
		s.keys = append(s.keys, signKey{mac: hmac.New(sha256.New, key), expires: e.ExpiresAt})
	}
	return s, nil
}

// header returns the webhook-signature value at ts: a "v1,…" entry for
// every secret that still signs at ts, space separated, newest first.
func (s *signer) header(id string, ts time.Time, body []byte) string {
	s.pre = append(s.pre[:0], id...)
	s.pre = append(s.pre, '.')
	s.pre = strconv.AppendInt(s.pre, ts.Unix(), 10)
	s.pre = append(s.pre, '.')
	out := s.out[:0]
	var sum [sha256.Size]byte
	for _, k := range s.keys {
		if !k.expires.IsZero() && !ts.Before(k.expires) {
			continue
		}
		if len(out) > 0 {
			out = append(out, ' ')
		}
		k.mac.Reset()
		k.mac.Write(s.pre)
		k.mac.Write(body)
		out = append(out, "v1,"...)
		out = base64.StdEncoding.AppendEncode(out, k.mac.Sum(sum[:0]))
	}
	s.out = out
	return string(out)
}

// Verify checks a received webhook the way any Standard Webhooks library
// does: webhook-timestamp must be within tolerance of now (DefaultTolerance
// when tolerance <= 0) and one "v1,…" entry of the space-separated
// webhook-signature header must match the HMAC of "id.timestamp.body" under
// one of secrets. It returns nil, or an error matching ErrMissingHeaders,
// ErrTimestamp, ErrBadSecret or ErrNoMatch. It is safe for concurrent use.
func Verify(secrets []string, header http.Header, body []byte, tolerance time.Duration) error {
	if err := verify(secrets, header, body, tolerance, time.Now()); err != nil {
		return fmt.Errorf("verify webhook: %w", err)
	}
	return nil
}

func verify(secrets []string, header http.Header, body []byte, tolerance time.Duration, now time.Time) error {
	if tolerance <= 0 {
		tolerance = DefaultTolerance
	}
	id, tsText, sigText := header.Get(HeaderID), header.Get(HeaderTimestamp), header.Get(HeaderSignature)
	if id == "" || tsText == "" || sigText == "" {
		return ErrMissingHeaders
	}
	ts, err := strconv.ParseInt(tsText, 10, 64)
	if err != nil {
		return fmt.Errorf("%w: %q is not unix seconds", ErrTimestamp, tsText)
	}
	// Compare in seconds so that no timestamp can overflow a Duration.
	if skew := now.Unix() - ts; skew > int64(tolerance/time.Second) || -skew > int64(tolerance/time.Second) {
		return fmt.Errorf("%w: %s is %ds from now, more than %v", ErrTimestamp, tsText, skew, tolerance)
	}
	if len(sigText) > maxSignatureHeader {
		return fmt.Errorf("%w: header longer than %d bytes", ErrNoMatch, maxSignatureHeader)
	}
	var want [][]byte
	for i, f := range strings.Fields(sigText) {
		if i == maxSignatures {
			break
		}
		version, sig, ok := strings.Cut(f, ",")
		if !ok || version != "v1" {
			continue
		}
		b, err := base64.StdEncoding.DecodeString(sig)
		if err != nil || len(b) != sha256.Size {
			continue
		}
		want = append(want, b)
	}
	if len(want) == 0 {
		return fmt.Errorf("%w: no v1 signature in the header", ErrNoMatch)
	}
	for _, s := range secrets {
		key, err := decodeSecret(s)
		if err != nil {
			return err
		}
		got := mac(key, id, ts, body)
		for _, w := range want {
			if hmac.Equal(got, w) {
				return nil
			}
		}
	}
	return ErrNoMatch
}
