package leader

import (
	"fmt"
	"testing"
)

// view is a hub's members list without a bucket behind it.
func view(self string, live ...string) *Members { return &Members{self: self, live: live} }

// TestMembers_Mine checks the rendezvous spread of webhooks: every webhook
// belongs to exactly one of the hubs that share a view, the hubs get
// about a third each, and a hub leaving moves only its own webhooks.
func TestMembers_Mine(t *testing.T) {
	hubs := []string{"hub-a", "hub-b", "hub-c"}
	owner := map[string]string{}
	count := map[string]int{}
	for i := range 600 {
		id := fmt.Sprintf("wh_%04d", i)
		n := 0
		for _, h := range hubs {
			if view(h, hubs...).Mine(id) {
				owner[id] = h
				n++
			}
		}
		if n != 1 {
			t.Fatalf("%s belongs to %d hubs, want 1", id, n)
		}
		count[owner[id]]++
	}
	for _, h := range hubs {
		if count[h] < 120 || count[h] > 280 {
			t.Errorf("%s owns %d of 600 webhooks, want about 200", h, count[h])
		}
	}
	left := []string{"hub-a", "hub-c"} // hub-b leaves
	for id, was := range owner {
		now := ""
		for _, h := range left {
			if view(h, left...).Mine(id) {
				now = h
			}
		}
		if was != "hub-b" && now != was {
			t.Fatalf("%s moved from %s to %s although %s is still there", id, was, now, was)
		}
		if now == "" {
			t.Fatalf("%s belongs to no hub after hub-b left", id)
		}
	}
	if !view("solo", "solo").Mine("wh_x") {
		t.Error("a hub alone does not own a webhook")
	}
}
