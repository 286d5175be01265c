package server_test

import (
	"context"
	"fmt"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/sourcegraph/conc"

	"github.com/filecast/filecast/events"
	"github.com/filecast/filecast/events/eventstest"
	"github.com/filecast/filecast/resources"
	"github.com/filecast/filecast/server"
)

// BenchmarkServer_HTTPNotificationsDuringPosts measures a known loss in
// mcp-go v1.2.1's streamable HTTP transport: a session with its GET
// stream open keeps posting short requests while thousands of distinct
// files change. mcp-go reads the session's notification channel both from
// the GET stream and from every POST being handled, and drops a
// notification that a POST's forwarder took just as the POST ended. The
// metric "missed" counts changed files never notified (list_changes and
// resources/read still report them; stdio sessions are not affected).
// mcp-go's event store (WithEventStore) avoids the drop but keeps every
// such POST's stream for the life of the session, an unbounded cost.
func BenchmarkServer_HTTPNotificationsDuringPosts(b *testing.B) {
	const files = 3000
	var missed, total int
	for b.Loop() {
		missed += notifyDuringPosts(b, files)
		total += files
	}
	b.ReportMetric(float64(missed)/float64(b.N), "missed/op")
	b.ReportMetric(float64(missed)/float64(total)*1e6, "missed/Mfiles")
}

func notifyDuringPosts(t testing.TB, files int) (missed int) {
	h := start(t, server.Options{}, "docs")
	ts := httptest.NewServer(h.srv.HTTPHandler())
	t.Cleanup(ts.Close)
	c, n := httpClient(t, ts, clientOpts{name: "poster"})
	if err := subscribeURI(t, c, "filecast://docs/"); err != nil {
		t.Fatal(err)
	}

	ctx, cancel := context.WithCancel(context.Background())
	var wg conc.WaitGroup
	defer wg.Wait()
	defer cancel()
	for range 3 {
		wg.Go(func() {
			for ctx.Err() == nil {
				pctx, pcancel := context.WithTimeout(ctx, 5*time.Second)
				_ = c.Ping(pctx) // errors only when the run is ending
				pcancel()
			}
		})
	}

	want := map[string]bool{}
	for i := range files {
		p := fmt.Sprintf("d%02d/%04d.md", i%50, i)
		want[resources.URI("docs", p)] = true
		h.src.Append("docs", events.FileUpdated, p)
		if i%100 == 99 {
			time.Sleep(time.Millisecond) // let pings interleave with the flow
		}
	}
	eventstest.Eventually(t, "routing", func() bool { return h.srv.Heads().For("docs") == uint64(files) })
	eventstest.Eventually(t, "notifications written to the session", func() bool { return h.srv.Stats().Notified >= int64(files) })

	missing := func() int {
		got := map[string]bool{}
		for _, u := range n.updated() {
			got[u] = true
		}
		m := 0
		for u := range want {
			if !got[u] {
				m++
			}
		}
		return m
	}
	eventstest.Poll(2*time.Second, func() bool { return missing() == 0 })
	return missing()
}
