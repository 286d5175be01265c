package journal

import (
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// Sequence numbers without an event.
//
// A log's seqs normally follow one another, but two things leave some
// without an event: retention dropping the oldest events (by age or by
// count), and a write the store failed for want of space, whose seq
// nats-server may leave taken although nothing was stored (the store, once
// opened again, holds the next event at the seq after it: a log that
// failed its first write starts at 2). Only the first loses events a
// reader may have wanted, and only it expires a cursor.
//
// Retention drops from the head only, so a gap inside the log never
// expires a cursor. A gap at the head does only if retention could have
// dropped anything: the log is older than its age limit, or has numbered
// more events than its count limit, or did either under limits that were
// raised since — which Ensure records in the stream's metadata
// (metaDropped) before it changes them.

// metaDropped is the stream metadata key set once retention may have
// dropped events.
const metaDropped = "filecast_dropped"

// mayHaveDropped reports whether retention may have dropped events of the
// stream described by info.
func mayHaveDropped(info *jetstream.StreamInfo) bool {
	cfg, st := info.Config, info.State
	switch {
	case cfg.Metadata[metaDropped] != "",
		cfg.MaxMsgs > 0 && st.LastSeq > uint64(cfg.MaxMsgs),
		cfg.MaxAge > 0 && time.Since(info.Created) >= cfg.MaxAge,
		cfg.MaxBytes > 0, cfg.MaxMsgsPerSubject > 0:
		return true
	}
	return false
}

// dropped reports whether a reader after the cursor after has lost events:
// the ones right after it are no longer held although later ones were
// written, and retention may have dropped them.
func dropped(after uint64, info *jetstream.StreamInfo) bool {
	st := info.State
	return after+1 < st.FirstSeq && after < st.LastSeq && mayHaveDropped(info)
}
