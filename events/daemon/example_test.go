package daemon_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/signal"

	"github.com/sourcegraph/conc"

	"github.com/filecast/filecast/events"
	"github.com/filecast/filecast/events/daemon"
	"github.com/filecast/filecast/events/remote"
)

// startStack stands for the caller's embedded stack: NATS, journal, hub,
// locks, watchers and the hub API, opened without calling Acquire.
func startStack(context.Context) (*daemon.Owner, error) {
	return nil, errors.New("start the embedded stack here")
}

func ExampleShared() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	sh, err := daemon.NewShared(daemon.Options{
		Dir:    os.ExpandEnv("$HOME/.local/state/filecast"),
		Become: startStack,
		Connect: func(socket string) (daemon.Backend, error) {
			return remote.New("http://filecast", remote.Options{
				HTTPClient: &http.Client{Transport: daemon.Transport(socket)},
			})
		},
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return
	}
	var wg conc.WaitGroup
	defer wg.Wait()
	wg.Go(func() {
		if err := sh.Run(ctx); err != nil {
			fmt.Fprintln(os.Stderr, err)
			stop()
		}
	})
	select {
	case <-sh.Ready():
	case <-ctx.Done():
		return
	}
	// Followed across changes of owner, without a gap or a duplicate.
	_ = events.Follow(ctx, sh, "docs", 0, func(ev events.Event) error {
		fmt.Println(ev.Seq, ev.Type, ev.Path)
		return nil
	}, events.FollowOptions{})
}
