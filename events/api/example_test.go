package api_test

import (
	"fmt"
	"log"
	"net/http"

	"github.com/filecast/filecast/events/api"
	"github.com/filecast/filecast/events/feed"
	"github.com/filecast/filecast/events/feed/feedtest"
)

func ExampleNew() {
	src := feedtest.New() // the hub in a real program
	addr := "127.0.0.1:8080"
	tokens := []api.Token{{Name: "ci", Secret: "0123456789abcdef0123"}}
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

func ExampleParseToken() {
	tok, err := api.ParseToken("ci=0123456789abcdef0123,ws=docs+src,ro,rate=20")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(tok.Name, tok.Workspaces, tok.ReadOnly, tok.Rate)
	fmt.Println(tok) // never the secret

	_, err = api.ParseToken("ci=short")
	fmt.Println(err)
	// Output:
	// ci [docs src] true 20
	// ci,ws=docs+src,ro,rate=20
	// api: bad token: token "ci": use a secret of at least 16 characters (e.g. openssl rand -hex 32)
}
