package lock

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"strings"
)

// Keys. A lock lives under the key "<workspace>.<path>", each part encoded
// so that it is one token of the characters KV keys allow ([-/_=.a-zA-Z0-9])
// without '.': letters, digits, '-' and '_' (and '/' in paths) stay, every
// other byte becomes '=' and two lowercase hex digits. '=' never appears
// unescaped, so the encoding is injective. An encoded path longer than
// maxKeyPathLen is replaced by "=h" and the hex sha256 of the path, which the
// plain encoding can never produce ('=' is always followed by a hex digit),
// so that every key fits a NATS control line. Listing one workspace is the
// key filter "<workspace>.>".

const maxKeyPathLen = 1024

const hexDigits = "0123456789abcdef"

func encodeToken(b *strings.Builder, s string, slash bool) {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if keepByte(c, slash) {
			b.WriteByte(c)
			continue
		}
		b.WriteByte('=')
		b.WriteByte(hexDigits[c>>4])
		b.WriteByte(hexDigits[c&0xf])
	}
}

// wsToken encodes a workspace name as one key token.
func wsToken(ws string) string {
	var b strings.Builder
	b.Grow(len(ws) + 8)
	encodeToken(&b, ws, false)
	return b.String()
}

// keyFor returns the KV key of the lock on path in workspace ws.
func keyFor(ws, path string) string {
	var b strings.Builder
	b.Grow(len(ws) + len(path) + 16)
	encodeToken(&b, ws, false)
	b.WriteByte('.')
	start := b.Len()
	encodeToken(&b, path, true)
	if b.Len()-start <= maxKeyPathLen {
		return b.String()
	}
	sum := sha256.Sum256([]byte(path))
	return wsToken(ws) + ".=h" + hex.EncodeToString(sum[:])
}

// wsFilter returns the key filter that selects every lock of workspace ws.
func wsFilter(ws string) string { return wsToken(ws) + ".>" }

var errBadKey = errors.New("lock: not a lock key")

// parseKey inverts keyFor. For a hashed key it returns the workspace, an
// empty path and hashed true.
func parseKey(key string) (ws, path string, hashed bool, err error) {
	wt, pt, ok := strings.Cut(key, ".")
	if !ok || wt == "" || pt == "" {
		return "", "", false, errBadKey
	}
	if ws, err = decodeToken(wt, false); err != nil {
		return "", "", false, err
	}
	if h, ok := strings.CutPrefix(pt, "=h"); ok {
		if len(h) != 2*sha256.Size || strings.Trim(h, hexDigits) != "" {
			return "", "", false, errBadKey
		}
		return ws, "", true, nil
	}
	path, err = decodeToken(pt, true)
	return ws, path, false, err
}

func decodeToken(t string, slash bool) (string, error) {
	var b strings.Builder
	b.Grow(len(t))
	for i := 0; i < len(t); i++ {
		c := t[i]
		switch {
		case c == '=':
			if i+2 >= len(t) {
				return "", errBadKey
			}
			hi, lo := strings.IndexByte(hexDigits, t[i+1]), strings.IndexByte(hexDigits, t[i+2])
			if hi < 0 || lo < 0 {
				return "", errBadKey
			}
			v := byte(hi<<4 | lo)
			if keepByte(v, slash) {
				return "", errBadKey // not canonical
			}
			b.WriteByte(v)
			i += 2
		case keepByte(c, slash):
			b.WriteByte(c)
		default:
			return "", errBadKey
		}
	}
	return b.String(), nil
}

func keepByte(c byte, slash bool) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || (slash && c == '/')
}
