package main_test

import (
	"encoding/json"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"testing"

	"github.com/filecast/filecast/events/eventstest"
)

// TestHub_WatchPoll: a hub run with --watch poll finds changes by walking
// the workspace every --poll-interval, and says so: one log line at start,
// /metrics (filecast_watcher_info, the rounds) and the dashboard's stats.
func TestHub_WatchPoll(t *testing.T) {
	root := t.TempDir()
	addr := freeAddr(t)
	p := startProc(t, "hub", "--root", "w="+root, "--listen", addr, "--data", t.TempDir(), "--watch", "poll", "--poll-interval", "100ms")
	base := "http://" + addr
	waitHTTP(t, base+"/healthz")
	var lines []string
	for line := range strings.SplitSeq(p.stderr.String(), "\n") {
		if strings.Contains(line, "watching") && strings.Contains(line, "workspace=w") {
			lines = append(lines, line)
		}
	}
	if len(lines) != 1 || !strings.Contains(lines[0], "watching by polling") || !strings.Contains(lines[0], "watcher=poll") ||
		!strings.Contains(lines[0], "interval=100ms") || !strings.Contains(lines[0], "--watch poll") {
		t.Errorf("start-up lines about the watcher of w: %q, want one saying it polls every 100ms, as asked", lines)
	}
	writeFile(t, filepath.Join(root, "a.txt"), "x")
	eventstest.Eventually(t, "the file created, found by polling, in the metrics", func() bool {
		b := get(t, base+"/metrics")
		return strings.Contains(b, `filecast_events_appended_total{type="file.created"} 1`) &&
			strings.Contains(b, `filecast_watcher_info{watcher="poll",workspace="w"} 1`) &&
			!strings.Contains(b, "filecast_watch_poll_rounds_total 0")
	})
	var stats struct {
		Watchers []map[string]any `json:"watchers"`
	}
	if err := json.Unmarshal([]byte(get(t, base+"/dashboard/stats")), &stats); err != nil {
		t.Fatal(err)
	}
	if len(stats.Watchers) != 1 || stats.Watchers[0]["workspace"] != "w" || stats.Watchers[0]["watcher"] != "poll" ||
		stats.Watchers[0]["poll_interval_ms"] != 100.0 || stats.Watchers[0]["reason"] != "asked for (--watch poll)" {
		t.Errorf("dashboard watchers = %v, want w polled every 100 ms, as asked", stats.Watchers)
	}
}

func get(t *testing.T, url string) string {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
