package leader_test

import (
	"context"
	"fmt"
	"os"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/filecast/filecast/events/leader"
	"github.com/filecast/filecast/events/natsd"
)

// One hub campaigns to watch the workspace "docs"; its lead function runs
// while it is the leader, and ends when leadership is lost or the hub stops.
func ExampleElector_Run() {
	dir, _ := os.MkdirTemp("", "leader-example")
	defer os.RemoveAll(dir)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	srv, err := natsd.Start(ctx, natsd.Options{StoreDir: dir})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer srv.Close()
	js, _ := jetstream.New(srv.Conn())
	e, err := leader.New(ctx, js, leader.Options{Replicas: srv.Replicas()})
	if err != nil {
		fmt.Println(err)
		return
	}
	err = e.Run(ctx, leader.Key("docs"), "hub-a", func(lctx context.Context) error {
		id, _ := e.Leader(lctx, leader.Key("docs"))
		fmt.Println("watching docs as", id)
		cancel() // the hub shuts down: Run releases the key and returns
		<-lctx.Done()
		return nil
	})
	fmt.Println("Run:", err)
	// Output:
	// watching docs as hub-a
	// Run: <nil>
}
