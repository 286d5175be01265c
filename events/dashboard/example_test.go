package dashboard_test

import (
	"net/http"

	"github.com/filecast/filecast/events/dashboard"
	"github.com/filecast/filecast/events/feed"
	"github.com/filecast/filecast/events/feed/feedtest"
)

func ExampleHandler() {
	src := feedtest.New() // the hub in a real program
	fd := feed.New(src, feed.Options{})
	defer fd.Close()
	h := dashboard.Handler(dashboard.Options{Stats: func() dashboard.Stats {
		return dashboard.Stats{SSESubscribers: fd.Subscribers(), Version: "v1.0.0"}
	}})
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/workspaces", fd.Workspaces)
	mux.HandleFunc("GET /v1/workspaces/{ws}/events", fd.Events)
	mux.Handle("GET /{$}", h)
	mux.Handle("GET /dashboard/", h)
	_ = &http.Server{Addr: "127.0.0.1:8080", Handler: mux} // ListenAndServe
}
