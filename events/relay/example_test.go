package relay_test

import (
	"context"
	"log/slog"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/filecast/filecast/events/hub"
	"github.com/filecast/filecast/events/relay"
	"github.com/filecast/filecast/events/watch"
)

// Every hub sets a relay on each workspace; the one elected to watch a
// workspace also serves the relay while it leads.
func ExampleServe() {
	var (
		nc      *nats.Conn     // the hub's connection to the shared cluster
		h       *hub.Hub       // this hub
		watcher *watch.Watcher // the watcher of "docs", run by the lead function
		log     = slog.Default()
	)
	h.SetRelay("docs", relay.New(nc, relay.Options{Timeout: 30 * time.Second, Logger: log}))

	lead := func(ctx context.Context) error { // run while this hub leads "docs"
		h.SetIndex("docs", watcher)
		defer h.SetIndex("docs", nil) // after Serve has returned
		return relay.Serve(ctx, nc, "docs", h, relay.Options{Logger: log})
	}
	_ = lead
}
