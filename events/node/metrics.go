package node

import (
	"context"
	"time"

	"github.com/filecast/filecast/events"
	"github.com/filecast/filecast/events/feed"
	"github.com/filecast/filecast/events/metrics"
)

// newMetrics registers the node's metrics, read when scraped.
func (s *Node) newMetrics(f *feed.Feed) *metrics.Registry {
	m := metrics.New()
	m.CounterVec("filecast_events_appended_total", "Events appended to the log by this hub, by type.", "type", func() map[string]float64 {
		out := map[string]float64{}
		for t, n := range s.hub.Stats().Appended {
			out[string(t)] = float64(n)
		}
		return out
	})
	m.Counter("filecast_events_delivered_total", "Events queued to live subscribers (SSE streams and MCP routers).", func() float64 { return float64(s.hub.Stats().FannedOut) })
	m.Counter("filecast_subscriber_overflows_total", "Times a subscriber fell behind and caught up from the log.", func() float64 { return float64(s.hub.Stats().Overflows) })
	m.Gauge("filecast_hub_subscribers", "Subscriptions open on the hub.", func() float64 { return float64(s.hub.Stats().Subscribers) })
	m.Gauge("filecast_mcp_sessions", "MCP sessions of the MCP server in this process.", func() float64 { return float64(s.cfg.MCPSessions()) })
	m.Gauge("filecast_sse_subscribers", "Open SSE streams.", func() float64 { return float64(f.Subscribers()) })
	if lim := s.cfg.Streams; lim != nil {
		total, perClient := lim.Caps()
		m.Gauge("filecast_sse_streams_max", "The cap of event streams open at once (--max-streams, lowered to fit the open file limit); 0: none.", func() float64 { return float64(total) })
		m.Gauge("filecast_sse_streams_per_client_max", "The cap of event streams open at once per token or client address; 0: none.", func() float64 { return float64(perClient) })
		m.CounterVec("filecast_sse_streams_refused_total", "Event streams refused by a cap: hub (503) or client (429).", "cap", func() map[string]float64 {
			st := lim.Stats()
			return map[string]float64{"hub": float64(st.RefusedTotal), "client": float64(st.RefusedClient)}
		})
	}
	m.CounterVec("filecast_watch_read_retries_total", "Reads of a changed file or folder that failed and were scheduled again, by reason: descriptors (out of file descriptors) or other.", "reason", func() map[string]float64 {
		fds := s.counters.DescriptorRetries.Load()
		return map[string]float64{"descriptors": float64(fds), "other": float64(s.counters.ReadRetries.Load() - fds)}
	})
	m.Gauge("filecast_watch_retrying_paths", "Changed files or folders waiting to be read again.", func() float64 { return float64(s.counters.Retrying.Load()) })
	m.Counter("filecast_watch_failures_total", "Times a folder could not be watched (the inotify watch limit, mostly); it is rescanned every 2s instead.", func() float64 {
		return float64(s.counters.WatchFailures.Load())
	})
	m.Gauge("filecast_watch_unwatched_folders", "Folders rescanned every 2s because they could not be watched.", func() float64 { return float64(s.counters.Unwatched.Load()) })
	m.Info("filecast_watcher_info", "How each workspace this hub watches learns of changes: watcher is notify (kernel notifications), poll (walking the tree every --poll-interval), or notify+poll (folders on network or FUSE file systems polled).", []string{"workspace", "watcher"}, func() [][]string {
		var out [][]string
		for _, x := range s.watching() {
			out = append(out, []string{x.name, x.Label()})
		}
		return out
	})
	m.Counter("filecast_watch_poll_rounds_total", "Rounds of polling: walks of the polled folders.", func() float64 { return float64(s.counters.PollRounds.Load()) })
	m.Counter("filecast_watch_poll_seconds_total", "Time spent in rounds of polling, in seconds.", func() float64 { return float64(s.counters.PollNanos.Load()) / 1e9 })
	m.Counter("filecast_lock_conflicts_total", "Lock requests refused because another holder had the lock.", func() float64 { return float64(s.hub.Stats().LockConflicts) })
	m.GaugeVec("filecast_log_head", "Sequence number of the newest event in each workspace's log.", "workspace", func() map[string]float64 {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		out := map[string]float64{}
		infos, err := s.hub.Workspaces(ctx)
		if err != nil {
			return out
		}
		for _, w := range infos {
			out[w.Name] = float64(w.Head)
		}
		return out
	})
	m.GaugeVec("filecast_workspace_available", "1 while the workspace's folder is there, 0 while it is missing (removed or moved away).", "workspace", func() map[string]float64 {
		out := map[string]float64{}
		for _, name := range s.names() {
			out[name] = 1
		}
		for _, p := range s.hub.Problems() {
			if p.Code == events.ProblemWorkspaceUnavailable {
				out[p.Workspace] = 0
			}
		}
		return out
	})
	m.Gauge("filecast_log_full", "1 while the event log cannot take more events (its disk full or its storage limit reached): writes are refused and changes on disk held.", func() float64 {
		for _, p := range s.hub.Problems() {
			if p.Code == events.ProblemInsufficientStorage {
				return 1
			}
		}
		return 0
	})
	m.GaugeVec("filecast_held_changes", "Changed paths a watcher holds until the event log has room; -1 when it will compare the whole workspace instead.", "workspace", func() map[string]float64 {
		out := map[string]float64{}
		for ws, n := range s.hub.Held() {
			out[ws] = float64(n)
		}
		return out
	})
	m.Gauge("filecast_store_free_bytes", "Bytes free on the disk of the embedded event store (-1 when unknown or external).", func() float64 {
		if sp, ok := s.nats.Space(); ok {
			return float64(sp.Free)
		}
		return -1
	})
	m.CounterVec("filecast_webhook_deliveries_total", "Events a webhook endpoint accepted.", "webhook", func() map[string]float64 {
		out := map[string]float64{}
		for id, st := range s.webhooks.Stats() {
			out[id] = float64(st.Delivered)
		}
		return out
	})
	m.CounterVec("filecast_webhook_failures_total", "Webhook deliveries that exhausted their retry schedule.", "webhook", func() map[string]float64 {
		out := map[string]float64{}
		for id, st := range s.webhooks.Stats() {
			out[id] = float64(st.Failed)
		}
		return out
	})
	m.CounterVec("filecast_webhook_attempts_total", "HTTP requests made to webhook endpoints, verification included.", "webhook", func() map[string]float64 {
		out := map[string]float64{}
		for id, st := range s.webhooks.Stats() {
			out[id] = float64(st.Attempts)
		}
		return out
	})
	m.SummaryVec("filecast_webhook_latency_seconds", "Latency of webhook attempts (quantiles over the last 1024).", "webhook", func() map[string]metrics.Summary {
		out := map[string]metrics.Summary{}
		for id, st := range s.webhooks.Stats() {
			out[id] = metrics.Summary{
				Count: st.LatencyCount,
				Sum:   st.LatencySum.Seconds(),
				Quantiles: map[float64]float64{
					0.5: st.LatencyP50.Seconds(), 0.95: st.LatencyP95.Seconds(), 0.99: st.LatencyP99.Seconds(),
				},
			}
		}
		return out
	})
	return m
}
