package natstest_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/filecast/filecast/events/eventstest"
	"github.com/filecast/filecast/events/natsd/natstest"
)

// TestCluster_SurvivesNodeLoss writes to an R3 stream through a node
// kill and restart: every acknowledged message is read back, in order.
func TestCluster_SurvivesNodeLoss(t *testing.T) {
	start := time.Now()
	c := natstest.Cluster(t, 3)
	t.Logf("3-node cluster ready in %v", time.Since(start).Round(time.Millisecond))
	if got := len(strings.Split(c.URLs(), ",")); got != 3 {
		t.Fatalf("URLs() has %d URLs, want 3: %s", got, c.URLs())
	}
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()

	nc, err := nats.Connect(c.URLs(), nats.MaxReconnects(-1), nats.ReconnectWait(100*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	st, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "R3", Subjects: []string{"r3.>"}, Replicas: 3})
	if err != nil {
		t.Fatalf("create R3 stream: %v", err)
	}
	info, err := st.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if got := len(info.Cluster.Replicas) + 1; got != 3 {
		t.Fatalf("stream has %d copies, want 3", got)
	}

	var acked []uint64
	publish := func(i int) {
		t.Helper()
		for {
			pctx, pcancel := context.WithTimeout(ctx, 2*time.Second)
			ack, err := js.Publish(pctx, "r3.x", []byte(fmt.Sprint(i)), jetstream.WithMsgID(fmt.Sprint("m", i)))
			pcancel()
			if err == nil {
				if ack.Duplicate && len(acked) > 0 && acked[len(acked)-1] == ack.Sequence {
					return
				}
				acked = append(acked, ack.Sequence)
				return
			}
			if ctx.Err() != nil {
				t.Fatalf("publish %d: %v", i, err)
			}
		}
	}
	readAll := func() {
		t.Helper()
		eventstest.Within(t, time.Minute, "the stream read back (its leader elected)", func() bool {
			return checkStream(ctx, js, len(acked)) == nil
		})
	}

	for i := range 10 {
		publish(i)
	}
	// Kill the stream's leader, the harder case.
	victim := 0
	for i := range c.N() {
		if s := c.Server(i); s != nil && s.JetStreamIsStreamLeader("$G", "R3") {
			victim = i
		}
	}
	killed := time.Now()
	c.Kill(victim)
	for i := 10; i < 20; i++ {
		publish(i)
	}
	t.Logf("killed node %d (stream leader); 10 more messages stored within %v", victim, time.Since(killed).Round(time.Millisecond))
	readAll()

	c.Restart(victim)
	for i := 20; i < 30; i++ {
		publish(i)
	}
	readAll()
	if len(acked) != 30 {
		t.Fatalf("%d messages acknowledged, want 30", len(acked))
	}
	// The restarted node catches up: wait until it is current for the stream.
	eventstest.Within(t, 30*time.Second, fmt.Sprintf("restarted node %d to be current for the stream", victim), func() bool {
		return c.Server(victim).JetStreamIsStreamCurrent("$G", "R3")
	})
}

// checkStream reads the stream and checks it holds messages 0..n-1 in order.
func checkStream(ctx context.Context, js jetstream.JetStream, n int) error {
	rctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	st, err := js.Stream(rctx, "R3")
	if err != nil {
		return err
	}
	for seq := uint64(1); seq <= uint64(n); seq++ {
		m, err := st.GetMsg(rctx, seq)
		if err != nil {
			return fmt.Errorf("get %d: %w", seq, err)
		}
		if want := fmt.Sprint(seq - 1); string(m.Data) != want {
			return fmt.Errorf("message %d = %q, want %q", seq, m.Data, want)
		}
	}
	if _, err := st.GetMsg(rctx, uint64(n)+1); !errors.Is(err, jetstream.ErrMsgNotFound) {
		return fmt.Errorf("message after %d: %v, want not found", n, err)
	}
	return nil
}

func TestCluster_Single(t *testing.T) {
	c := natstest.Cluster(t, 1)
	nc, err := nats.Connect(c.URLs())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := js.AccountInfo(t.Context()); err != nil {
		t.Fatalf("JetStream on a one-node cluster: %v", err)
	}
	if got := c.MetaLeader(); got != 0 {
		t.Errorf("MetaLeader() = %d, want 0", got)
	}
	c.Kill(0)
	if got := c.Running(); len(got) != 0 {
		t.Errorf("Running() = %v after Kill, want none", got)
	}
	c.Restart(0)
	if got := c.Running(); len(got) != 1 {
		t.Errorf("Running() = %v after Restart, want [0]", got)
	}
}
