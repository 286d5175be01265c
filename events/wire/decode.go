package wire

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"unicode/utf8"
)

// DecodeOptions tune [DecodeJSON].
type DecodeOptions struct {
	// Strict refuses object members v has no field for.
	Strict bool
}

// DecodeJSON reads a request body holding one JSON value into v, the way
// every JSON route of the hub reads its body. It refuses, with an error
// wrapping ErrBadRequest: a body that is not valid UTF-8 (encoding/json
// would turn such bytes into U+FFFD without a word), a \u escape of a
// lone UTF-16 surrogate (the same), anything but white space after the
// value, and a value that does not fit v. A body of white space only gives
// io.EOF, for the caller to accept or refuse; a body over an
// http.MaxBytesReader limit gives its *http.MaxBytesError.
func DecodeJSON(body io.Reader, v any, opts DecodeOptions) error {
	data, err := io.ReadAll(body)
	if err != nil {
		if _, ok := errors.AsType[*http.MaxBytesError](err); ok {
			return err
		}
		return fmt.Errorf("read the body: %w", err)
	}
	if len(bytes.TrimSpace(data)) == 0 {
		return io.EOF
	}
	if !utf8.Valid(data) {
		return badBody("the body is not valid UTF-8: send JSON text in UTF-8")
	}
	if at, ok := loneSurrogate(data); ok {
		return badBody(fmt.Sprintf("the body escapes a lone UTF-16 surrogate (%s), which stands for no character", data[at:at+6]))
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	if opts.Strict {
		dec.DisallowUnknownFields()
	}
	if err := dec.Decode(v); err != nil {
		return badBody(fmt.Sprintf("the body is not the JSON this route expects: %v", err))
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return badBody(fmt.Sprintf("the body must hold one JSON value and nothing after it; found more at byte %d", dec.InputOffset()))
	}
	return nil
}

func badBody(why string) error {
	return fmt.Errorf("%w: %s", ErrBadRequest, why)
}

// loneSurrogate finds a \uXXXX escape inside a JSON string that names a
// UTF-16 surrogate without its other half, and returns its offset. It
// does not validate the JSON otherwise.
func loneSurrogate(data []byte) (int, bool) {
	inString := false
	for i := 0; i < len(data); i++ {
		c := data[i]
		switch {
		case !inString:
			inString = c == '"'
		case c == '"':
			inString = false
		case c == '\\' && i+1 < len(data):
			if data[i+1] != 'u' {
				i++ // an escaped character, '"' or '\\' included
				continue
			}
			r, ok := hex4(data, i+2)
			if !ok {
				return 0, false // not JSON: the decoder says why
			}
			switch {
			case r >= 0xdc00 && r <= 0xdfff:
				return i, true
			case r >= 0xd800 && r <= 0xdbff:
				lo, ok := hex4(data, i+8)
				if i+7 >= len(data) || data[i+6] != '\\' || data[i+7] != 'u' || !ok || lo < 0xdc00 || lo > 0xdfff {
					return i, true
				}
				i += 11
			default:
				i += 5
			}
		}
	}
	return 0, false
}

// hex4 reads the four hexadecimal digits at data[i:].
func hex4(data []byte, i int) (rune, bool) {
	if i < 0 || i+4 > len(data) {
		return 0, false
	}
	var r rune
	for _, c := range data[i : i+4] {
		switch {
		case c >= '0' && c <= '9':
			r = r<<4 | rune(c-'0')
		case c >= 'a' && c <= 'f':
			r = r<<4 | rune(c-'a'+10)
		case c >= 'A' && c <= 'F':
			r = r<<4 | rune(c-'A'+10)
		default:
			return 0, false
		}
	}
	return r, true
}
