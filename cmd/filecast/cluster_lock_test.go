package main_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/filecast/filecast/events/eventstest"
	"github.com/filecast/filecast/events/natsd/natstest"
)

// lockBucketStream is the stream behind the lock bucket (lock.DefaultBucket).
const lockBucketStream = "KV_FILECAST_LOCKS"

// hubCall sends a request to a hub, and sends it again while the answer is
// a 5xx, as a client does while the cluster elects a new leader; it
// returns the last status, body and how many 5xx answers came first.
func hubCall(t *testing.T, method, url, body string, hdr map[string]string) (code int, text string, retried int) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		req, err := http.NewRequest(method, url, strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		for k, v := range hdr {
			req.Header.Set(k, v)
		}
		code, text = sendHubRequest(t, req)
		if code < 500 || time.Now().After(deadline) {
			return code, text, retried
		}
		retried++
		time.Sleep(100 * time.Millisecond) // a client's back-off, not synchronisation
	}
}

func sendHubRequest(t *testing.T, req *http.Request) (int, string) {
	t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(b)
}

// TestCluster_LockFencingAcrossFailures takes, releases and takes again one
// lock through two hubs on a three-node NATS cluster while the node that
// leads the lock bucket is killed, then kills the hub holding a 2 s lock:
// fencing tokens only grow, stale tokens are refused through either hub,
// and the dead hub's lock expires with its TTL.
func TestCluster_LockFencingAcrossFailures(t *testing.T) {
	cl := natstest.Cluster(t, 3)
	root := t.TempDir()
	hubs := startClusterHubs(t, cl.URLs(), root, 2)
	a, b := hubs[0], hubs[1]
	watching(t, hubs)
	locks := func(h *clusterHub) string { return h.base + "/v1/workspaces/w/locks" }
	file := func(h *clusterHub) string { return h.base + "/v1/workspaces/w/files/doc.txt" }
	acquire := func(h *clusterHub, holder string, ttl, waitMS int) (lockResult, time.Duration) {
		t.Helper()
		body, _ := json.Marshal(map[string]any{"path": "doc.txt", "ttl_seconds": ttl, "holder": holder, "wait_ms": waitMS})
		start := time.Now()
		code, text, retried := hubCall(t, "POST", locks(h), string(body), nil)
		took := time.Since(start)
		if code != http.StatusCreated {
			t.Fatalf("lock through %s: %d %s (after %d 5xx)", h.id, code, text, retried)
		}
		if retried > 0 {
			t.Logf("lock through %s: %d 5xx answers before the 201 (%s)", h.id, retried, took.Round(time.Millisecond))
		}
		var l lockResult
		if err := json.Unmarshal([]byte(text), &l); err != nil || l.LockToken == "" || l.FencingToken == 0 {
			t.Fatalf("lock through %s: %s (%v)", h.id, text, err)
		}
		return l, took
	}
	put := func(h *clusterHub, content string, l lockResult, fence uint64) (int, string) {
		t.Helper()
		hdr := map[string]string{}
		if l.LockToken != "" {
			hdr["X-Filecast-Lock-Token"] = l.LockToken
		}
		if fence != 0 {
			hdr["X-Filecast-Fencing-Token"] = strconv.FormatUint(fence, 10)
		}
		code, text, _ := hubCall(t, "PUT", file(h), content, hdr)
		return code, text
	}

	// A lock through A.
	l1, _ := acquire(a, "agent-a", 30, 0)
	if code, text := put(a, "by a", l1, l1.FencingToken); code != http.StatusOK {
		t.Fatalf("PUT by the holder through %s: %d %s", a.id, code, text)
	}

	// Kill the node that serves the watching hub's watch of the lock
	// bucket (its mirror checks the writes), else the node that leads the
	// bucket.
	w := watching(t, hubs)
	meta := cl.MetaLeader()
	leader := -1
	for _, i := range cl.Running() {
		if s := cl.Server(i); s != nil && s.JetStreamIsStreamLeader("$G", lockBucketStream) {
			leader = i
		}
	}
	found := lockWatchNode(t, cl, w)
	victim := found
	if victim < 0 {
		victim = leader
	}
	cl.Kill(victim)
	killed := time.Now()
	t.Logf("NATS node %d killed (serves the lock watch of %s, the watching hub: %v; leads the lock bucket: %v; meta leader: %v)",
		victim, w.id, found >= 0, victim == leader, victim == meta)

	// Release through B, by token alone.
	start := time.Now()
	code, text, retried := hubCall(t, "DELETE", locks(b)+"/"+l1.LockToken, "", nil)
	if code != http.StatusOK || !strings.Contains(text, `"released":true`) {
		t.Fatalf("release through %s of a lock taken through %s: %d %s (after %d 5xx)", b.id, a.id, code, text, retried)
	}
	t.Logf("released through %s %s after the node was killed (%d 5xx answers first)", b.id, time.Since(start).Round(time.Millisecond), retried)

	// Taken again through B: a larger fencing token.
	l2, _ := acquire(b, "agent-b", 30, 0)
	if l2.FencingToken <= l1.FencingToken {
		t.Fatalf("fencing token %d through %s after %d through %s: not larger", l2.FencingToken, b.id, l1.FencingToken, a.id)
	}

	// The old tokens are stale through either hub; no token is locked out;
	// the new holder writes through either hub.
	for _, h := range hubs {
		for _, c := range []struct {
			name string
			l    lockResult
			want []int
		}{
			// Someone else holds the lock now: locked or stale, never written.
			{"the released lock", l1, []int{http.StatusConflict, http.StatusLocked}},
			{"the new lock with the old fencing token", lockResult{LockToken: l2.LockToken, FencingToken: l1.FencingToken}, []int{http.StatusConflict}},
			{"no lock", lockResult{}, []int{http.StatusLocked}},
		} {
			code, text := put(h, "stale through "+h.id, c.l, c.l.FencingToken)
			if !slices.Contains(c.want, code) {
				t.Errorf("PUT with %s through %s: %d %s, want %v", c.name, h.id, code, text, c.want)
			}
			if code == http.StatusConflict && !strings.Contains(text, `"stale"`) {
				t.Errorf("PUT with %s through %s: %s, want the code stale", c.name, h.id, text)
			}
		}
		if code, text := put(h, "by b through "+h.id, l2, l2.FencingToken); code != http.StatusOK {
			t.Errorf("PUT by the new holder through %s: %d %s", h.id, code, text)
			// How long the hub goes on refusing the current holder.
			eventstest.Within(t, 40*time.Second, "the current holder's write through "+h.id, func() bool {
				code, _ := put(h, "by b through "+h.id, l2, l2.FencingToken)
				return code == http.StatusOK
			})
			t.Logf("%s accepted the current holder's write %s after the node was killed", h.id, time.Since(killed).Round(time.Millisecond))
		}
	}
	if code, text, _ := hubCall(t, "DELETE", locks(a)+"/"+l2.LockToken, "", nil); code != http.StatusOK {
		t.Errorf("release through %s of a lock taken through %s: %d %s", a.id, b.id, code, text)
		if code, text, _ := hubCall(t, "DELETE", locks(b)+"/"+l2.LockToken, "", nil); code != http.StatusOK {
			t.Fatalf("release through %s: %d %s", b.id, code, text)
		}
	}

	for _, h := range hubs {
		t.Logf("%s lost its NATS connection with the node: %v", h.id, strings.Contains(h.proc.stderr.String(), `msg="disconnected from NATS"`))
	}

	// The node comes back; tokens keep growing.
	cl.Restart(victim)
	l3, _ := acquire(a, "agent-a", 2, 0)
	if l3.FencingToken <= l2.FencingToken {
		t.Fatalf("fencing token %d after the node came back, %d before: not larger", l3.FencingToken, l2.FencingToken)
	}

	// Kill A while it holds a 2 s lock: B, waiting up to 15 s, gets it
	// when it expires.
	if err := a.proc.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-a.proc.done
	killed = time.Now()
	l4, waited := acquire(b, "agent-b", 30, 15000)
	if l4.FencingToken <= l3.FencingToken {
		t.Fatalf("fencing token %d after the dead hub's lock expired, %d before: not larger", l4.FencingToken, l3.FencingToken)
	}
	// The dead hub's lease is no more: locked (someone else holds the lock)
	// or stale, never written.
	if code, text := put(b, "stale after expiry", l3, l3.FencingToken); code != http.StatusConflict && code != http.StatusLocked {
		t.Errorf("PUT with the expired lock through %s: %d %s, want 409 or 423", b.id, code, text)
	}
	// The write through B lands on disk once B watches (it took the watch
	// over if A had it).
	if code, text := put(b, "final", l4, l4.FencingToken); code != http.StatusOK {
		t.Fatalf("PUT by the last holder through %s: %d %s", b.id, code, text)
	}
	eventstest.Eventually(t, "the last write in the log", func() bool {
		evs := eventsFor(logOf(t, b.base), "doc.txt")
		return len(evs) > 0 && evs[len(evs)-1].Actor != "" && evs[len(evs)-1].SHA256 == sha256Hex("final")
	})
	t.Logf("fencing tokens %d (A) < %d (B, node %d down) < %d (A, node back) < %d (B, A killed; lock free %s after the kill, waited %s)",
		l1.FencingToken, l2.FencingToken, victim, l3.FencingToken, l4.FencingToken, time.Since(killed).Round(time.Millisecond), waited.Round(time.Millisecond))
}

func sha256Hex(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}

// lockWatchNode returns the index of the NATS node that holds the consumer
// of h's watch of the lock bucket, or -1 if it cannot be told: h's
// connections are found by their ports (Linux /proc), their
// subscriptions in each node's connz, and the consumer delivering to one
// of them in the stream's consumer list.
func lockWatchNode(t *testing.T, cl *natstest.C, h *clusterHub) int {
	t.Helper()
	ports := processPorts(h.proc.cmd.Process.Pid)
	subs := map[string]bool{}
	for _, i := range cl.Running() {
		srv := cl.Server(i)
		if srv == nil {
			continue
		}
		cz, err := srv.Connz(&server.ConnzOptions{Subscriptions: true, Limit: 1024})
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range cz.Conns {
			if ports[c.Port] {
				for _, s := range c.Subs {
					subs[s] = true
				}
			}
		}
	}
	nc, err := nats.Connect(cl.URLs())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	st, err := js.Stream(ctx, lockBucketStream)
	if err != nil {
		t.Fatal(err)
	}
	node := -1
	lister := st.ListConsumers(ctx)
	for ci := range lister.Info() {
		if ci.Config.DeliverSubject == "" || !subs[ci.Config.DeliverSubject] || ci.Cluster == nil {
			continue
		}
		if _, err := fmt.Sscanf(ci.Cluster.Leader, "n%d", &node); err != nil {
			t.Fatalf("consumer %s on node %q", ci.Name, ci.Cluster.Leader)
		}
	}
	if err := lister.Err(); err != nil {
		t.Fatal(err)
	}
	return node
}

// processPorts returns the local TCP ports of the sockets process pid has
// open (Linux: its fds' socket inodes looked up in /proc/net/tcp{,6}).
func processPorts(pid int) map[int]bool {
	inodes := map[string]bool{}
	fds, _ := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	for _, fd := range fds {
		link, err := os.Readlink(fmt.Sprintf("/proc/%d/fd/%s", pid, fd.Name()))
		if err == nil && strings.HasPrefix(link, "socket:[") {
			inodes[strings.TrimSuffix(strings.TrimPrefix(link, "socket:["), "]")] = true
		}
	}
	ports := map[int]bool{}
	for _, table := range []string{"/proc/net/tcp", "/proc/net/tcp6"} {
		b, err := os.ReadFile(table)
		if err != nil {
			continue
		}
		for _, line := range strings.Split(string(b), "\n")[1:] {
			f := strings.Fields(line)
			if len(f) < 10 || !inodes[f[9]] {
				continue
			}
			_, port, _ := strings.Cut(f[1], ":")
			if p, err := strconv.ParseUint(port, 16, 16); err == nil {
				ports[int(p)] = true
			}
		}
	}
	return ports
}
