package webhook

import (
	"errors"
	"fmt"
)

// Sentinel errors of the package; match them with errors.Is. The error text
// is written for a person or an agent and says what to do next.
var (
	// ErrBadURL means a webhook URL is not an absolute http or https URL
	// without credentials.
	ErrBadURL = errors.New("webhook: invalid url")
	// ErrForbiddenAddress means a webhook URL names or resolves to an
	// address filecast does not call (loopback, private, link-local,
	// metadata…) while AllowPrivate is off. The error is an *AddressError.
	ErrForbiddenAddress = errors.New("webhook: address not allowed")
	// ErrBadRequest means a request field is missing or invalid.
	ErrBadRequest = errors.New("webhook: invalid request")
	// ErrNotFound means there is no webhook, or no failed delivery, with
	// the given id.
	ErrNotFound = errors.New("webhook: not found")
	// ErrNotActive means the webhook cannot take the request in its state
	// (a replay of a failed or disabled webhook).
	ErrNotActive = errors.New("webhook: webhook is not active")
	// ErrBadOptions means Open was given options it cannot honour.
	ErrBadOptions = errors.New("webhook: invalid options")
	// ErrBadSchedule means a retry schedule cannot be parsed.
	ErrBadSchedule = errors.New("webhook: invalid schedule")
	// ErrBadSecret means a signing secret is not "whsec_" followed by
	// base64.
	ErrBadSecret = errors.New("webhook: invalid secret")
	// ErrMissingHeaders means a request lacks webhook-id,
	// webhook-timestamp or webhook-signature.
	ErrMissingHeaders = errors.New("webhook: missing webhook-id, webhook-timestamp or webhook-signature header")
	// ErrTimestamp means webhook-timestamp is not a number or lies outside
	// the tolerance.
	ErrTimestamp = errors.New("webhook: webhook-timestamp outside the tolerance")
	// ErrNoMatch means no signature in webhook-signature matches any of the
	// secrets.
	ErrNoMatch = errors.New("webhook: no matching signature")
	// ErrRunning means Run was called while it is already running.
	ErrRunning = errors.New("webhook: Run is already running")
)

// AddressError reports an address filecast refuses to call. It wraps
// ErrForbiddenAddress.
type AddressError struct {
	Host string // the host as given in the URL, or the address dialled
	IP   string // the offending address
	Kind string // what the address is: "loopback", "private", "cloud metadata", …
}

func (e *AddressError) Error() string {
	where := e.IP
	if e.Host != "" && e.Host != e.IP {
		where = fmt.Sprintf("%s (%s)", e.Host, e.IP)
	}
	return fmt.Sprintf("%v: %s is a %s address; filecast only calls public addresses unless private webhooks are allowed (--allow-private-webhooks)",
		ErrForbiddenAddress, where, e.Kind)
}

// Unwrap returns ErrForbiddenAddress.
func (e *AddressError) Unwrap() error { return ErrForbiddenAddress }

func badRequest(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrBadRequest, fmt.Sprintf(format, args...))
}

func badURL(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrBadURL, fmt.Sprintf(format, args...))
}
