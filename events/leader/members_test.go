package leader_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/sourcegraph/conc"

	"github.com/filecast/filecast/events/eventstest"
	"github.com/filecast/filecast/events/leader"
	"github.com/filecast/filecast/events/natsd/natstest"
)

// TestMembers_SeeEachOther: two members of one bucket see each other and
// share items out, one owner each; when one stops, the other owns all.
func TestMembers_SeeEachOther(t *testing.T) {
	srv := natstest.Start(t)
	js, err := jetstream.New(srv.Conn())
	if err != nil {
		t.Fatal(err)
	}
	var ms []*leader.Members
	var cancels []context.CancelFunc
	var wg conc.WaitGroup
	defer wg.Wait()
	for _, id := range []string{"hub-a", "hub-b"} {
		m, err := leader.OpenMembers(t.Context(), js, "", id, 1)
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(t.Context())
		defer cancel()
		wg.Go(func() { _ = m.Run(ctx) })
		ms, cancels = append(ms, m), append(cancels, cancel)
	}
	both := []string{leader.Key("hub-a"), leader.Key("hub-b")}
	for i, m := range ms {
		eventstest.Eventually(t, fmt.Sprintf("member %d to see both", i), func() bool { return slices.Equal(m.Live(), both) })
	}
	mine := 0
	for i := range 100 {
		item := fmt.Sprint("wh_", i)
		a, b := ms[0].Mine(item), ms[1].Mine(item)
		if a == b {
			t.Fatalf("%s: mine to a %v, to b %v; want exactly one", item, a, b)
		}
		if a {
			mine++
		}
	}
	if mine == 0 || mine == 100 {
		t.Errorf("hub-a owns %d of 100 items, want a share", mine)
	}

	cancels[1]() // hub-b leaves
	eventstest.Eventually(t, "hub-a alone", func() bool { return slices.Equal(ms[0].Live(), both[:1]) })
	for i := range 100 {
		if !ms[0].Mine(fmt.Sprint("wh_", i)) {
			t.Fatalf("wh_%d is not hub-a's although hub-a is alone", i)
		}
	}
}

// TestElector_RunTerms: a term whose lead function fails is followed by
// another; a bad key ends RunTerms at once.
func TestElector_RunTerms(t *testing.T) {
	srv := natstest.Start(t)
	e := elector(t, srv.Conn(), 1, ttl)
	ctx, cancel := context.WithCancel(t.Context())
	terms := 0
	err := e.RunTerms(ctx, "ws", "hub0", func(ctx context.Context) error {
		terms++
		if terms < 3 {
			return errors.New("the log went away")
		}
		cancel() // the hub shuts down
		<-ctx.Done()
		return nil
	})
	if err != nil || terms != 3 {
		t.Errorf("RunTerms = %v after %d terms, want nil after 3", err, terms)
	}
	if err := e.RunTerms(t.Context(), "a b", "hub0", func(context.Context) error { return nil }); !errors.Is(err, leader.ErrBadKey) {
		t.Errorf("RunTerms with a bad key = %v, want ErrBadKey", err)
	}
}
