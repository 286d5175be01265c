package node

import (
	"log/slog"

	"github.com/filecast/filecast/events/api"
)

// lowFileLimit is the open file limit below which a hub warns at start.
const lowFileLimit = 4096

// FileLimit raises this process's open file limit to the hard limit, so
// that event streams, the event log's files and the watchers' reads do not
// run out of descriptors at the usual soft limit of 1024, and logs it: at
// debug level when it is comfortable, as a warning when even the hard limit
// is low. It returns the limit, 0 when unknown.
func FileLimit(log *slog.Logger) uint64 {
	limit, raised, err := raiseFileLimit()
	switch {
	case err != nil:
		log.Warn("cannot raise the open file limit", "limit", limit, "err", err)
	case limit != 0 && limit < lowFileLimit:
		log.Warn("the open file limit is low: every event stream and connection takes a descriptor; raise the hard limit (ulimit -Hn, LimitNOFILE= in a systemd unit)",
			"limit", limit, "raised", raised)
	default:
		log.Debug("open file limit", "limit", limit, "raised", raised)
	}
	return limit
}

// StreamCaps returns the stream caps of a hub whose open file limit is
// limit: maxStreams lowered to what the limit affords (api.FitStreams),
// saying so when it had to; perClient no higher than that.
func StreamCaps(log *slog.Logger, maxStreams, perClient int, limit uint64) *api.StreamLimits {
	total := maxStreams
	if total > 0 {
		if fit := api.FitStreams(total, limit); fit < total {
			log.Info("event streams capped below --max-streams to keep descriptors for the watchers and the event log",
				"max_streams", fit, "open_file_limit", limit)
			total = fit
		}
	}
	if perClient > 0 && total > 0 {
		perClient = min(perClient, total)
	}
	return api.NewStreamLimits(total, perClient)
}
