package lock_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/filecast/filecast/events"
	"github.com/filecast/filecast/events/lock"
	"github.com/filecast/filecast/events/natsd"
)

func Example() {
	dir, err := os.MkdirTemp("", "lock-example")
	if err != nil {
		panic(err)
	}
	defer os.RemoveAll(dir)
	ctx := context.Background()
	srv, err := natsd.Start(ctx, natsd.Options{StoreDir: dir})
	if err != nil {
		panic(err)
	}
	defer srv.Close()
	m, err := lock.Open(ctx, srv.Conn(), lock.Options{})
	if err != nil {
		panic(err)
	}
	defer m.Close()

	a, err := m.Acquire(ctx, events.LockRequest{Workspace: "docs", Path: "reports/q3.md", Holder: "claude#3f2a", TTL: time.Minute})
	if err != nil {
		panic(err)
	}
	fmt.Println("locked by", a.Holder, a.Mode)

	_, err = m.Acquire(ctx, events.LockRequest{Workspace: "docs", Path: "reports/q3.md", Holder: "cursor#77c1"})
	if c, ok := errors.AsType[*events.LockError](err); ok {
		fmt.Println("conflict with", c.Holder)
	}

	if _, err := m.Check("docs", "reports/q3.md", a.Token, a.FencingToken); err == nil {
		fmt.Println("the holder may write")
	}
	if err := m.Release(ctx, "docs", "reports/q3.md", a.Token); err == nil {
		fmt.Println("released")
	}
	b, err := m.Acquire(ctx, events.LockRequest{Workspace: "docs", Path: "reports/q3.md", Holder: "cursor#77c1"})
	if err != nil {
		panic(err)
	}
	fmt.Println("fencing token grew:", b.FencingToken > a.FencingToken)
	// Output:
	// locked by claude#3f2a exclusive
	// conflict with claude#3f2a
	// the holder may write
	// released
	// fencing token grew: true
}
