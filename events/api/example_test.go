package api_test

import (
	"log"
	"net/http"

	"github.com/filecast/filecast/events/api"
	"github.com/filecast/filecast/events/feed"
	"github.com/filecast/filecast/events/feed/feedtest"
)

func ExampleNew() {
	src := feedtest.New() // the hub in a real program
	addr := "127.0.0.1:8080"
	tokens := []api.Token{{Name: "ci", Secret: "s3cret"}}
	if err := api.CheckListen(addr, tokens); err != nil {
		log.Fatal(err)
	}
	fd := feed.New(src, feed.Options{})
	defer fd.Close()
	h := api.New(src, fd, api.Options{
		Tokens: tokens,
		Extra: func(mux *http.ServeMux) {
			mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) { /* dashboard */ })
		},
	})
	srv := &http.Server{Addr: addr, Handler: h}
	_ = srv // srv.ListenAndServe()
}
