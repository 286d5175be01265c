package webhook

import "net/netip"

// ClassifyAddr exposes the address classification to the tests: what kind
// of forbidden address s is, or "".
func ClassifyAddr(s string) string { return classify(netip.MustParseAddr(s)) }

// VerifyAt exposes Verify with a chosen "now" to the tests.
var VerifyAt = verify
