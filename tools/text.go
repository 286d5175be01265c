package tools

import (
	"errors"
	"fmt"
	"regexp"
	"strings"

	"github.com/filecast/filecast/events"
)

// Errors reach the model as one plain sentence: what is wrong with which
// value, without the Go package prefixes of sentinels ("events: …") and
// without the chain of operations that wrapped the error on its way.

// plain renders err for the model, without a final period.
func plain(err error) string {
	var e *events.Error
	if errors.As(err, &e) {
		msg := scrub(e.Kind.Error())
		if e.Value != "" {
			msg += fmt.Sprintf(" %q", e.Value)
		}
		if e.Why != "" {
			msg += ": " + scrub(e.Why)
		}
		return strings.TrimSuffix(msg, ".")
	}
	return strings.TrimSuffix(scrub(err.Error()), ".")
}

// packagePrefix matches the "pkg: " prefix of the project's sentinel errors
// wherever a message has one (at its start or after another clause).
var packagePrefix = regexp.MustCompile(`(^|: |; |\()(events|inbox|lock|hub|journal|remote|daemon|relay|natsd|workspace|watch|feed|api|tools|server|resources|webhook|leader): `)

// after returns what follows the first "marker: " in msg, or msg.
func after(msg, marker string) string {
	if _, rest, ok := strings.Cut(msg, marker+": "); ok {
		return rest
	}
	return msg
}

// scrub removes package prefixes from a message.
func scrub(s string) string {
	for {
		t := packagePrefix.ReplaceAllString(s, "$1")
		if t == s {
			return s
		}
		s = t
	}
}
