// Package metrics exposes filecast's counters in the Prometheus text format
// through the official client library. Values are read when scraped, from
// functions the rest of filecast already has (Stats methods), so the parts
// being measured do not depend on this package.
//
//	m := metrics.New()
//	m.Gauge("filecast_sse_subscribers", "Open SSE streams.", func() float64 { return float64(feed.Subscribers()) })
//	mux.Handle("GET /metrics", m.Handler())
package metrics

import (
	"maps"
	"net/http"
	"slices"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Summary is a latency summary read at scrape time: count and sum of all
// observations, and quantiles (0.5, 0.95, 0.99 → seconds) of recent ones.
type Summary struct {
	Count     uint64
	Sum       float64
	Quantiles map[float64]float64
}

// Registry holds filecast's metrics. Its methods are safe for concurrent
// use; a metric registered twice under one name panics, as in Prometheus.
type Registry struct {
	reg *prometheus.Registry
}

// New returns a registry with the Go runtime and process collectors.
func New() *Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return &Registry{reg: reg}
}

// Counter registers a monotonically increasing value read from f.
func (r *Registry) Counter(name, help string, f func() float64) {
	r.reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{Name: name, Help: help}, f))
}

// Gauge registers a value that goes up and down, read from f.
func (r *Registry) Gauge(name, help string, f func() float64) {
	r.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: name, Help: help}, f))
}

// CounterVec registers counters with one label, read from f as label
// value → count.
func (r *Registry) CounterVec(name, help, label string, f func() map[string]float64) {
	r.reg.MustRegister(&vec{desc: prometheus.NewDesc(name, help, []string{label}, nil), kind: prometheus.CounterValue, read: f})
}

// GaugeVec registers gauges with one label, read from f.
func (r *Registry) GaugeVec(name, help, label string, f func() map[string]float64) {
	r.reg.MustRegister(&vec{desc: prometheus.NewDesc(name, help, []string{label}, nil), kind: prometheus.GaugeValue, read: f})
}

// Info registers an info metric: a gauge of 1 for every row f returns,
// labelled with labels (the row's values, in the same order). It says what
// is, such as how each workspace is watched, rather than counting.
func (r *Registry) Info(name, help string, labels []string, f func() [][]string) {
	r.reg.MustRegister(&info{desc: prometheus.NewDesc(name, help, labels, nil), read: f})
}

// SummaryVec registers summaries with one label, read from f.
func (r *Registry) SummaryVec(name, help, label string, f func() map[string]Summary) {
	r.reg.MustRegister(&summaries{desc: prometheus.NewDesc(name, help, []string{label}, nil), read: f})
}

// Handler serves the metrics in the Prometheus text format.
func (r *Registry) Handler() http.Handler {
	return promhttp.HandlerFor(r.reg, promhttp.HandlerOpts{})
}

type vec struct {
	desc *prometheus.Desc
	kind prometheus.ValueType
	read func() map[string]float64
}

func (v *vec) Describe(ch chan<- *prometheus.Desc) { ch <- v.desc }

func (v *vec) Collect(ch chan<- prometheus.Metric) {
	m := v.read()
	for _, k := range slices.Sorted(maps.Keys(m)) {
		ch <- prometheus.MustNewConstMetric(v.desc, v.kind, m[k], k)
	}
}

type info struct {
	desc *prometheus.Desc
	read func() [][]string
}

func (i *info) Describe(ch chan<- *prometheus.Desc) { ch <- i.desc }

func (i *info) Collect(ch chan<- prometheus.Metric) {
	for _, row := range i.read() {
		m, err := prometheus.NewConstMetric(i.desc, prometheus.GaugeValue, 1, row...)
		if err != nil {
			ch <- prometheus.NewInvalidMetric(i.desc, err)
			continue
		}
		ch <- m
	}
}

type summaries struct {
	desc *prometheus.Desc
	read func() map[string]Summary
}

func (s *summaries) Describe(ch chan<- *prometheus.Desc) { ch <- s.desc }

func (s *summaries) Collect(ch chan<- prometheus.Metric) {
	m := s.read()
	for _, k := range slices.Sorted(maps.Keys(m)) {
		v := m[k]
		ch <- prometheus.MustNewConstSummary(s.desc, v.Count, v.Sum, v.Quantiles, k)
	}
}
