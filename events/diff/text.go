package diff

import (
	"bytes"
	"unicode/utf8"
)

// TextWindow is how much of a file IsText looks at.
const TextWindow = 8 << 10

// IsText reports whether data looks like text a diff can show: its first
// TextWindow bytes (8 KiB, as git looks at its first 8,000) hold no NUL
// byte and are valid UTF-8, but for a character cut by the end of the
// window. Empty data is text. Files in UTF-16, or in a legacy 8-bit
// encoding such as Latin-1, count as binary.
func IsText(data []byte) bool {
	w := data
	if len(w) > TextWindow {
		w = w[:TextWindow]
	}
	if bytes.IndexByte(w, 0) >= 0 {
		return false
	}
	if utf8.Valid(w) {
		return true
	}
	if len(w) == len(data) {
		return false
	}
	// The window may end inside a character: accept an incomplete but
	// well-started one at its end.
	for i := len(w) - 1; i >= 0 && i >= len(w)-utf8.UTFMax+1; i-- {
		if utf8.RuneStart(w[i]) {
			return !utf8.FullRune(w[i:]) && utf8.Valid(w[:i])
		}
	}
	return false
}
