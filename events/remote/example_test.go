package remote_test

import (
	"context"
	"errors"
	"fmt"
	"log"

	"github.com/filecast/filecast/events"
	"github.com/filecast/filecast/events/remote"
)

// A subscriber that keeps its cursor follows the hub across restarts
// (events.Follow subscribes again after the last event it got) and
// restarts from a listing when the hub says the cursor expired.
func ExampleClient_Subscribe() {
	c, err := remote.New("http://127.0.0.1:8080", remote.Options{Token: "secret"})
	if err != nil {
		log.Fatal(err)
	}
	ctx := context.Background()
	var cursor uint64
	err = events.Follow(ctx, c, "docs", cursor, func(ev events.Event) error {
		fmt.Println(ev.Seq, ev.Type, ev.Path)
		cursor = ev.Seq
		return nil
	}, events.FollowOptions{Final: remote.Permanent})
	if errors.Is(err, events.ErrCursorExpired) {
		list, _ := c.Files(ctx, "docs", "")
		cursor = list.Cursor // resync from the listing, then follow again
	}
}
