package lock

// KeyFor, ParseKey and MaxKeyPathLen expose the key encoding to the tests.
var (
	KeyFor   = keyFor
	ParseKey = parseKey
)

const MaxKeyPathLen = maxKeyPathLen
