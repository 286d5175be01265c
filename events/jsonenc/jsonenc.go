// Package jsonenc appends JSON values to byte slices exactly as
// encoding/json writes them, for the encoders of hot paths (every event
// is encoded when it is appended to the log and again for each result
// that carries it) that would otherwise pay for reflection and for
// encoding/json's second pass over a MarshalJSON's output.
//
//	b = append(b, `{"path":`...)
//	b = jsonenc.String(b, ev.Path, true)
//	b = append(b, '}')
//
// Every encoder built on it is tested against encoding/json's output.
package jsonenc

import (
	"strconv"
	"time"
	"unicode/utf8"
)

const hex = "0123456789abcdef"

// safe marks the ASCII bytes that need no escape in a JSON string; html
// marks those that need none when <, > and & are escaped too.
var safe, html [utf8.RuneSelf]bool

func init() {
	for c := 0x20; c < utf8.RuneSelf; c++ {
		safe[c] = c != '"' && c != '\\'
		html[c] = safe[c] && c != '<' && c != '>' && c != '&'
	}
}

// String appends s as a JSON string the way encoding/json does: invalid
// UTF-8 becomes U+FFFD, U+2028 and U+2029 are escaped, and so are <, >
// and & when escapeHTML is set (json.Marshal sets it, an Encoder may not).
func String(dst []byte, s string, escapeHTML bool) []byte {
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); {
		if b := s[i]; b < utf8.RuneSelf {
			if html[b] || (!escapeHTML && safe[b]) {
				i++
				continue
			}
			dst = append(dst, s[start:i]...)
			switch b {
			case '\\', '"':
				dst = append(dst, '\\', b)
			case '\b':
				dst = append(dst, '\\', 'b')
			case '\f':
				dst = append(dst, '\\', 'f')
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			default:
				dst = append(dst, '\\', 'u', '0', '0', hex[b>>4], hex[b&0xF])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			dst = append(dst, s[start:i]...)
			dst = append(dst, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			dst = append(dst, s[start:i]...)
			dst = append(dst, '\\', 'u', '2', '0', '2', hex[r&0xF])
			i += size
			start = i
			continue
		}
		i += size
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}

// Uint appends v.
func Uint(dst []byte, v uint64) []byte { return strconv.AppendUint(dst, v, 10) }

// Int appends v.
func Int(dst []byte, v int64) []byte { return strconv.AppendInt(dst, v, 10) }

// Bool appends true or false.
func Bool(dst []byte, v bool) []byte { return strconv.AppendBool(dst, v) }

// Time appends t as time.Time's MarshalJSON writes it (RFC 3339 with as
// many fractional digits as needed). ok is false for a year outside
// 0–9999, which MarshalJSON refuses; dst is then returned unchanged.
func Time(dst []byte, t time.Time) (_ []byte, ok bool) {
	if y := t.Year(); y < 0 || y > 9999 {
		return dst, false
	}
	dst = append(dst, '"')
	dst = t.AppendFormat(dst, time.RFC3339Nano)
	return append(dst, '"'), true
}
