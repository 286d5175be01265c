package webhook

import (
	"slices"
	"time"
)

// latencySamples is how many recent attempt latencies a webhook keeps for
// its percentiles.
const latencySamples = 1024

// WebhookStats are a webhook's delivery counters since the Dispatcher was
// opened, the shape a metrics exporter reads.
type WebhookStats struct {
	Delivered uint64 // events the endpoint accepted (2xx)
	Failed    uint64 // deliveries that exhausted the schedule
	Attempts  uint64 // HTTP requests made, verification included
	// LatencyCount and LatencySum cover every attempt, for a summary or
	// histogram's _count and _sum.
	LatencyCount uint64
	LatencySum   time.Duration
	// LatencyP50, LatencyP95 and LatencyP99 are over the last 1024
	// attempts.
	LatencyP50 time.Duration
	LatencyP95 time.Duration
	LatencyP99 time.Duration
}

type counters struct {
	WebhookStats
	ring []time.Duration
	next int
}

func (d *Dispatcher) counter(id string) *counters {
	c := d.stats[id]
	if c == nil {
		c = &counters{ring: make([]time.Duration, 0, 64)}
		d.stats[id] = c
	}
	return c
}

// count records one attempt.
func (d *Dispatcher) count(id string, latency time.Duration, delivered bool) {
	d.statsMu.Lock()
	defer d.statsMu.Unlock()
	c := d.counter(id)
	c.Attempts++
	if delivered {
		c.Delivered++
	}
	c.LatencyCount++
	c.LatencySum += latency
	if len(c.ring) < latencySamples {
		c.ring = append(c.ring, latency)
	} else {
		c.ring[c.next] = latency
		c.next = (c.next + 1) % latencySamples
	}
}

func (d *Dispatcher) countFailed(id string) {
	d.statsMu.Lock()
	defer d.statsMu.Unlock()
	d.counter(id).Failed++
}

// Stats returns the counters of every webhook this Dispatcher has
// attempted to deliver to, by webhook id. The map is the caller's.
func (d *Dispatcher) Stats() map[string]WebhookStats {
	d.statsMu.Lock()
	defer d.statsMu.Unlock()
	out := make(map[string]WebhookStats, len(d.stats))
	for id, c := range d.stats {
		s := c.WebhookStats
		sorted := slices.Clone(c.ring)
		slices.Sort(sorted)
		s.LatencyP50, s.LatencyP95, s.LatencyP99 = quantile(sorted, 0.50), quantile(sorted, 0.95), quantile(sorted, 0.99)
		out[id] = s
	}
	return out
}

// quantile returns the q-quantile of sorted samples (nearest rank).
func quantile(sorted []time.Duration, q float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(q*float64(len(sorted))+0.5) - 1
	return sorted[max(0, min(i, len(sorted)-1))]
}
