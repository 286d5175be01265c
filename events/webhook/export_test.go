package webhook

import (
	"net/netip"
	"time"
)

// ClassifyAddr exposes the address classification to the tests: what kind
// of forbidden address s is, or "".
func ClassifyAddr(s string) string { return classify(netip.MustParseAddr(s)) }

// VerifyAt exposes Verify with a chosen "now" to the tests.
var VerifyAt = verify

// LiveConsumer exposes the name of a webhook's consumer on the journal.
var LiveConsumer = liveConsumer

// LiveBody exposes the body of a live delivery to the tests.
var LiveBody = liveBody

// SetAckMargin sets the margin added to Timeout for the ack wait and
// returns a function that restores it. Call it before Open.
func SetAckMargin(d time.Duration) (restore func()) {
	old := ackMargin
	ackMargin = d
	return func() { ackMargin = old }
}

// Signer exposes the delivery signer: secrets with their expiry (zero:
// never); the function returned signs with one reused signer.
func Signer(secrets []string, expires []time.Time) (func(id string, ts time.Time, body []byte) string, error) {
	es := make([]secretEntry, len(secrets))
	for i, s := range secrets {
		es[i] = secretEntry{Secret: s, ExpiresAt: expires[i]}
	}
	s, err := newSigner(es)
	if err != nil {
		return nil, err
	}
	return s.header, nil
}
