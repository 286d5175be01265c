package hub_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/filecast/filecast/events"
	"github.com/filecast/filecast/events/hub/hubtest"
)

func TestHub_AppendBatchInOrder(t *testing.T) {
	st := hubtest.Start(t, hubtest.Options{NoLock: true})
	ctx := context.Background()
	before, err := st.Hub.Changes(ctx, "docs", 0, 1, 0)
	if err != nil {
		t.Fatal(err)
	}
	var in []events.Event
	var want []string
	for i := range 50 {
		p := fmt.Sprintf("a/%02d.txt", i)
		in = append(in, events.Event{Type: events.FileDeleted, Workspace: "docs", Path: "./" + p, Actor: "api:test"})
		want = append(want, p)
	}
	out, err := st.Hub.AppendBatch(ctx, in)
	if err != nil {
		t.Fatal(err)
	}
	for i, ev := range out {
		if ev.Seq != before.Next+uint64(i)+1 || ev.Path != want[i] {
			t.Fatalf("event %d stored as seq %d path %q", i, ev.Seq, ev.Path)
		}
	}
	page, err := st.Hub.Changes(ctx, "docs", before.Next, 100, hubtest.Timeout)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, ev := range page.Events {
		got = append(got, ev.Path)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Fatalf("subscribers saw (-want +got):\n%s", diff)
	}
	if _, err := st.Hub.AppendBatch(ctx, []events.Event{in[0], {Type: events.FileDeleted, Workspace: "nope", Path: "x"}}); err == nil {
		t.Fatal("a batch of two workspaces was accepted")
	}
}
