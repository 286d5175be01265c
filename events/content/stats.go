package content

import "sync/atomic"

// Stats counts what a Store did since Open.
type Stats struct {
	Stored   int64 // contents written and acknowledged
	Skipped  int64 // puts of a content this Store had just written
	Retired  int64 // contents retired
	Dropped  int64 // writes given up because the queue was full
	TooLarge int64 // contents over MaxFileSize or, compressed, the server's max payload: marked, not stored
	Binary   int64 // contents that are not text: marked, not stored
	NoRoom   int64 // writes skipped or refused for want of room
	Failed   int64 // writes that failed otherwise (logged)
	// BytesIn and BytesStored are the sizes of the contents stored, before
	// and after compression.
	BytesIn, BytesStored int64
}

type counters struct {
	stored, skipped, retired, dropped, tooLarge, binary, noRoom, failed atomic.Int64
	bytesIn, bytesStored                                                atomic.Int64
}

// Stats returns the counts so far. It is safe to call at any time.
func (s *Store) Stats() Stats {
	c := &s.stats
	return Stats{
		Stored:      c.stored.Load(),
		Skipped:     c.skipped.Load(),
		Retired:     c.retired.Load(),
		Dropped:     c.dropped.Load(),
		TooLarge:    c.tooLarge.Load(),
		Binary:      c.binary.Load(),
		NoRoom:      c.noRoom.Load(),
		Failed:      c.failed.Load(),
		BytesIn:     c.bytesIn.Load(),
		BytesStored: c.bytesStored.Load(),
	}
}
