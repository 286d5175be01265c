package metrics_test

import (
	"io"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/filecast/filecast/events/metrics"
)

func TestRegistry_Handler(t *testing.T) {
	m := metrics.New()
	n := 0.0
	m.Counter("x_total", "A counter.", func() float64 { return n })
	m.Gauge("x_open", "A gauge.", func() float64 { return 3 })
	m.CounterVec("x_by_type_total", "By type.", "type", func() map[string]float64 { return map[string]float64{"a": 1, "b": 2} })
	m.SummaryVec("x_latency_seconds", "Latency.", "hook", func() map[string]metrics.Summary {
		return map[string]metrics.Summary{"h1": {Count: 4, Sum: 0.4, Quantiles: map[float64]float64{0.95: 0.2}}}
	})
	m.Info("x_info", "What is.", []string{"workspace", "watcher"}, func() [][]string {
		return [][]string{{"docs", "poll"}, {"src", "notify"}}
	})
	n = 7
	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	body, _ := io.ReadAll(rec.Body)
	for _, want := range []string{
		"x_total 7", "x_open 3", `x_by_type_total{type="a"} 1`, `x_by_type_total{type="b"} 2`,
		`x_latency_seconds{hook="h1",quantile="0.95"} 0.2`, `x_latency_seconds_count{hook="h1"} 4`, "go_goroutines",
		`x_info{watcher="poll",workspace="docs"} 1`, `x_info{watcher="notify",workspace="src"} 1`, "# TYPE x_info gauge",
	} {
		if !strings.Contains(string(body), want) {
			t.Errorf("metrics lack %q:\n%s", want, body)
		}
	}
}
