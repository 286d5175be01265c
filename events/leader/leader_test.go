package leader_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/sourcegraph/conc"

	"github.com/filecast/filecast/events/eventstest"
	"github.com/filecast/filecast/events/leader"
	"github.com/filecast/filecast/events/natsd"
	"github.com/filecast/filecast/events/natsd/natstest"
)

const (
	ttl     = 2 * time.Second
	waitFor = 30 * time.Second // generous: loaded machines, -race
	// longTTL is a lease that outlasts waitFor, even from a renewal a
	// third of it earlier: a successor that leads within waitFor under it
	// leads through a release, not through the lease running out.
	longTTL = 2 * waitFor
)

// term is one run of a lead function.
type term struct {
	id         string
	start, end time.Time
}

// recorder records every lead function's run and counts overlaps as
// they happen.
type recorder struct {
	active   atomic.Int32
	overlaps atomic.Int32

	mu    sync.Mutex
	terms []term
	cur   map[string]int // id → index of its running term
}

func newRecorder() *recorder { return &recorder{cur: map[string]int{}} }

// lead returns a lead function for id that runs until its context is done.
func (r *recorder) lead(id string) func(context.Context) error {
	return func(ctx context.Context) error {
		r.begin(id)
		defer r.finish(id)
		<-ctx.Done()
		return ctx.Err()
	}
}

func (r *recorder) begin(id string) {
	if r.active.Add(1) > 1 {
		r.overlaps.Add(1)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.cur[id] = len(r.terms)
	r.terms = append(r.terms, term{id: id, start: time.Now()})
}

func (r *recorder) finish(id string) {
	r.mu.Lock()
	r.terms[r.cur[id]].end = time.Now()
	delete(r.cur, id)
	r.mu.Unlock()
	r.active.Add(-1)
}

// leaders returns the ids leading now.
func (r *recorder) leaders() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var ids []string
	for id := range r.cur {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return ids
}

func (r *recorder) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.terms)
}

// check fails the test if two terms overlapped.
func (r *recorder) check(t *testing.T) {
	t.Helper()
	if n := r.overlaps.Load(); n > 0 {
		t.Errorf("%d lead functions started while another was running", n)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	terms := slices.Clone(r.terms)
	slices.SortFunc(terms, func(a, b term) int { return a.start.Compare(b.start) })
	for i := 1; i < len(terms); i++ {
		prev := terms[i-1]
		if prev.end.IsZero() || terms[i].start.Before(prev.end) {
			t.Errorf("term %d of %s (from %v) overlaps term of %s (%v to %v)", i, terms[i].id,
				terms[i].start.Format("15:04:05.000"), prev.id, prev.start.Format("15:04:05.000"), prev.end.Format("15:04:05.000"))
		}
	}
}

// waitUntil waits until cond holds, within waitFor, and returns how long
// that took (for the logs).
func waitUntil(t *testing.T, what string, cond func() bool) time.Duration {
	t.Helper()
	start := time.Now()
	eventstest.Within(t, waitFor, what, cond)
	return time.Since(start)
}

// waitLeader waits until exactly one lead function runs and returns its id.
func waitLeader(t *testing.T, r *recorder) string {
	t.Helper()
	var id string
	waitUntil(t, "one leader", func() bool {
		ls := r.leaders()
		if len(ls) == 1 {
			id = ls[0]
		}
		return len(ls) == 1
	})
	return id
}

// candidate is a Run in progress.
type candidate struct {
	id     string
	nc     *nats.Conn
	e      *leader.Elector
	cancel context.CancelFunc
	done   chan error
}

// env is what the tests run on: a single embedded server or a cluster.
type env struct {
	name     string
	cluster  *natstest.C // nil for the embedded server
	connect  func(t *testing.T) *nats.Conn
	replicas int
}

func embedded(t *testing.T) env {
	srv, err := natsd.Start(t.Context(), natsd.Options{StoreDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Close() })
	return env{name: "embedded", replicas: 1, connect: func(*testing.T) *nats.Conn { return srv.Conn() }}
}

func cluster(t *testing.T) env {
	c := natstest.Cluster(t, 3)
	return env{name: "cluster", cluster: c, replicas: 3, connect: func(t *testing.T) *nats.Conn {
		srv, err := natsd.Start(t.Context(), natsd.Options{URL: c.URLs(), Replicas: 3})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = srv.Close() })
		return srv.Conn()
	}}
}

func elector(t *testing.T, nc *nats.Conn, replicas int, ttl time.Duration) *leader.Elector {
	t.Helper()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), waitFor)
	defer cancel()
	e, err := leader.New(ctx, js, leader.Options{TTL: ttl, Replicas: replicas})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return e
}

// group owns the candidates of a test; wait stops them all and waits.
type group struct {
	wg      *conc.WaitGroup
	ttl     time.Duration // of the candidates' electors
	mu      sync.Mutex
	cancels []context.CancelFunc
}

func newGroup() *group { return &group{wg: conc.NewWaitGroup(), ttl: ttl} }

func (g *group) wait() {
	g.mu.Lock()
	for _, cancel := range g.cancels {
		cancel()
	}
	g.mu.Unlock()
	g.wg.Wait()
}

// start runs a candidate on its own connection (from en.connect).
func (g *group) start(t *testing.T, en env, key, id string, lead func(context.Context) error) *candidate {
	t.Helper()
	return g.startOn(t, en.connect(t), en.replicas, key, id, lead)
}

// startOn runs a candidate on nc.
func (g *group) startOn(t *testing.T, nc *nats.Conn, replicas int, key, id string, lead func(context.Context) error) *candidate {
	t.Helper()
	c := &candidate{id: id, nc: nc, e: elector(t, nc, replicas, g.ttl), done: make(chan error, 1)}
	ctx, cancel := context.WithCancel(t.Context())
	c.cancel = cancel
	g.mu.Lock()
	g.cancels = append(g.cancels, cancel)
	g.mu.Unlock()
	g.wg.Go(func() { c.done <- c.e.Run(ctx, key, id, lead) })
	return c
}

func (c *candidate) stop(t *testing.T) {
	t.Helper()
	c.cancel()
	select {
	case err := <-c.done:
		if err != nil {
			t.Errorf("Run(%s) = %v, want nil", c.id, err)
		}
	case <-time.After(waitFor):
		t.Fatalf("Run(%s) did not return after cancel", c.id)
	}
}

func forEnv(t *testing.T, test func(t *testing.T, en env)) {
	t.Run("embedded", func(t *testing.T) { test(t, embedded(t)) })
	t.Run("cluster", func(t *testing.T) { test(t, cluster(t)) })
}

// revision returns the key's current revision, 0 if none or on error.
func revision(t *testing.T, nc *nats.Conn, key string) uint64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), time.Second)
	defer cancel()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	kv, err := js.KeyValue(ctx, leader.DefaultBucket)
	if err != nil {
		return 0
	}
	entry, err := kv.Get(ctx, key)
	if err != nil {
		return 0
	}
	return entry.Revision()
}

// renewedTwice waits until one lead function runs and the key's revision
// has moved on twice, as seen through nc.
func renewedTwice(t *testing.T, r *recorder, nc *nats.Conn) {
	t.Helper()
	var rev uint64
	waitUntil(t, "a renewed lease", func() bool {
		if len(r.leaders()) != 1 {
			return false
		}
		cur := revision(t, nc, "ws")
		if rev == 0 {
			rev = cur
		}
		return rev != 0 && cur >= rev+2
	})
}

// observer connects to a node of c other than those in not.
func observer(t *testing.T, c *natstest.C, not ...int) *nats.Conn {
	t.Helper()
	for i := range c.N() {
		if slices.Contains(not, i) {
			continue
		}
		nc, err := nats.Connect(c.URL(i))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(nc.Close)
		return nc
	}
	t.Fatal("no node left to observe from")
	return nil
}

func TestElector_OneLeader(t *testing.T) {
	forEnv(t, func(t *testing.T, en env) {
		r := newRecorder()
		g := newGroup()
		defer g.wait()
		var cs []*candidate
		for i := range 3 {
			id := fmt.Sprint("hub", i)
			cs = append(cs, g.start(t, en, "ws", id, r.lead(id)))
		}
		id := waitLeader(t, r)
		got, err := cs[0].e.Leader(t.Context(), "ws")
		if err != nil || got != id {
			t.Fatalf("Leader() = %q, %v; want %q", got, err, id)
		}
		// The lease is renewed: watch its revision move on three times.
		rev := revision(t, cs[0].nc, "ws")
		waitUntil(t, "three renewals", func() bool { return revision(t, cs[0].nc, "ws") >= rev+3 })
		if ls := r.leaders(); !slices.Equal(ls, []string{id}) {
			t.Errorf("leaders after renewals = %v, want [%s]", ls, id)
		}
		if n := r.count(); n != 1 {
			t.Errorf("%d terms, want 1", n)
		}
		for _, c := range cs {
			c.stop(t)
		}
		r.check(t)
		// On a cluster, Leader may read a replica that has not applied
		// the release yet: it says so soon after.
		waitUntil(t, "no leader once every Run stopped", func() bool {
			_, err := cs[0].e.Leader(t.Context(), "ws")
			return errors.Is(err, leader.ErrNoLeader)
		})
	})
}

// TestElector_CancelHandsOver stops the leader: it releases the key and
// another candidate leads at once: under a lease that outlasts the wait,
// only the release explains a successor.
func TestElector_CancelHandsOver(t *testing.T) {
	forEnv(t, func(t *testing.T, en env) {
		r := newRecorder()
		g := newGroup()
		g.ttl = longTTL
		defer g.wait()
		cs := map[string]*candidate{}
		for i := range 3 {
			id := fmt.Sprint("hub", i)
			cs[id] = g.start(t, en, "ws", id, r.lead(id))
		}
		first := waitLeader(t, r)
		stopped := time.Now()
		cs[first].stop(t)
		var next string
		waitUntil(t, "a successor", func() bool {
			ls := r.leaders()
			if len(ls) == 1 && ls[0] != first {
				next = ls[0]
			}
			return next != ""
		})
		t.Logf("%s: %s released; %s leads after %v (TTL %v)", en.name, first, next, time.Since(stopped).Round(time.Millisecond), longTTL)
		r.check(t)
	})
}

// TestElector_CrashedLeaderReplaced cuts the leader's connection, as if its
// hub died: it cannot release the key, which expires after the TTL.
func TestElector_CrashedLeaderReplaced(t *testing.T) {
	t.Parallel()
	forEnv(t, func(t *testing.T, en env) {
		r := newRecorder()
		g := newGroup()
		defer g.wait()
		cs := map[string]*candidate{}
		for i := range 3 {
			id := fmt.Sprint("hub", i)
			nc := en.connect(t)
			if en.cluster == nil { // a connection of its own, to close
				nc = inProcess(t, nc)
			}
			cs[id] = g.startOn(t, nc, en.replicas, "ws", id, r.lead(id))
		}
		first := waitLeader(t, r)
		cs[first].nc.Close()
		var next string
		took := waitUntil(t, "a successor", func() bool {
			ls := r.leaders()
			if len(ls) == 1 && ls[0] != first {
				next = ls[0]
			}
			return next != ""
		})
		t.Logf("%s: %s crashed; %s leads after %v (TTL %v)", en.name, first, next, took.Round(time.Millisecond), ttl)
		r.check(t) // the successor began after the crashed leader's term ended
	})
}

// inProcess opens another in-process connection to nc's embedded server.
func inProcess(t *testing.T, nc *nats.Conn) *nats.Conn {
	t.Helper()
	srv := nc.Opts.InProcessServer
	c, err := nats.Connect("", nats.InProcessServer(srv))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

// TestElector_LeaderNodeDies kills the NATS node the leader is connected
// to: it keeps leading through another node or steps down, and in the end
// exactly one lead function runs; never two at once.
func TestElector_LeaderNodeDies(t *testing.T) {
	t.Parallel()
	en := cluster(t)
	r := newRecorder()
	g := newGroup()
	defer g.wait()
	cs := map[string]*candidate{}
	for i := range 3 {
		id := fmt.Sprint("hub", i)
		cs[id] = g.start(t, en, "ws", id, r.lead(id))
	}
	first := waitLeader(t, r)
	node := -1
	for i := range en.cluster.N() {
		if en.cluster.URL(i) == cs[first].nc.ConnectedUrl() {
			node = i
		}
	}
	if node < 0 {
		t.Fatalf("leader connected to %s, not a node of %s", cs[first].nc.ConnectedUrl(), en.cluster.URLs())
	}
	terms := r.count()
	obs := observer(t, en.cluster, node)
	killed := time.Now()
	en.cluster.Kill(node)
	renewedTwice(t, r, obs)
	t.Logf("killed node %d under %s; %v leads, lease renewed twice %v later, after %d more terms",
		node, first, r.leaders(), time.Since(killed).Round(time.Millisecond), r.count()-terms)
	en.cluster.Restart(node)
	if got := r.leaders(); len(got) != 1 {
		t.Errorf("leaders after restart = %v, want one", got)
	}

	// Now the node leading the bucket's stream: renewals wait for the
	// stream to elect a new leader.
	streamLeader := -1
	waitUntil(t, "a stream leader for the bucket", func() bool {
		for i := range en.cluster.N() {
			if s := en.cluster.Server(i); s != nil && s.JetStreamIsStreamLeader("$G", "KV_"+leader.DefaultBucket) {
				streamLeader = i
			}
		}
		return streamLeader >= 0
	})
	terms = r.count()
	obs = observer(t, en.cluster, streamLeader)
	killed = time.Now()
	en.cluster.Kill(streamLeader)
	renewedTwice(t, r, obs)
	t.Logf("killed node %d leading the bucket's stream; %v leads, lease renewed twice %v later, after %d more terms",
		streamLeader, r.leaders(), time.Since(killed).Round(time.Millisecond), r.count()-terms)
	en.cluster.Restart(streamLeader)
	r.check(t)
}

// TestElector_KeyRemoved removes the key under a leader, as an operator
// might: the watch makes it step down at once, and it wins again.
func TestElector_KeyRemoved(t *testing.T) {
	en := embedded(t)
	r := newRecorder()
	g := newGroup()
	g.ttl = 2 * longTTL // renewals, which would notice too, come further apart than the wait
	defer g.wait()
	c := g.start(t, en, "ws", "hub0", r.lead("hub0"))
	waitLeader(t, r)
	js, err := jetstream.New(c.nc)
	if err != nil {
		t.Fatal(err)
	}
	kv, err := js.KeyValue(t.Context(), leader.DefaultBucket)
	if err != nil {
		t.Fatal(err)
	}
	if err := kv.Purge(t.Context(), "ws"); err != nil {
		t.Fatal(err)
	}
	took := waitUntil(t, "a second term", func() bool { return r.count() == 2 && len(r.leaders()) == 1 })
	t.Logf("key purged; stepped down and won again within %v", took.Round(time.Millisecond))
	r.check(t)
}

// TestElector_RapidHandovers hands leadership over 20 times by stopping
// the leader and starting it again as a new candidate; lead functions
// never overlap.
func TestElector_RapidHandovers(t *testing.T) {
	forEnv(t, func(t *testing.T, en env) {
		r := newRecorder()
		g := newGroup()
		g.ttl = longTTL // every handover is a release
		defer g.wait()
		cs := map[string]*candidate{}
		for i := range 3 {
			id := fmt.Sprint("hub", i)
			cs[id] = g.start(t, en, "ws", id, r.lead(id))
		}
		var worst, total time.Duration
		prev := waitLeader(t, r)
		const handovers = 20
		for i := range handovers {
			stopped := time.Now()
			cs[prev].stop(t)
			var next string
			waitUntil(t, fmt.Sprintf("successor %d", i), func() bool {
				ls := r.leaders()
				if len(ls) == 1 && ls[0] != prev {
					next = ls[0]
				}
				return next != ""
			})
			took := time.Since(stopped)
			worst, total = max(worst, took), total+took
			cs[prev] = g.startOn(t, cs[prev].nc, en.replicas, "ws", prev, r.lead(prev))
			prev = next
		}
		t.Logf("%s: %d handovers, mean %v, worst %v", en.name, handovers, (total / handovers).Round(time.Millisecond), worst.Round(time.Millisecond))
		if n := r.count(); n != handovers+1 {
			t.Errorf("%d terms, want %d", n, handovers+1)
		}
		r.check(t)
	})
}

// TestElector_LeadReturns covers a lead function that returns by itself:
// nil gives the key up and campaigns again, an error ends Run with it.
func TestElector_LeadReturns(t *testing.T) {
	en := embedded(t)
	e := elector(t, en.connect(t), 1, ttl)
	ctx, cancel := context.WithTimeout(t.Context(), waitFor)
	defer cancel()
	boom := errors.New("boom")
	var calls int
	err := e.Run(ctx, "ws", "hub0", func(ctx context.Context) error {
		calls++
		if calls < 3 {
			return nil
		}
		return boom
	})
	if !errors.Is(err, boom) {
		t.Fatalf("Run = %v, want boom", err)
	}
	if calls != 3 {
		t.Errorf("lead called %d times, want 3", calls)
	}
	if _, err := e.Leader(ctx, "ws"); !errors.Is(err, leader.ErrNoLeader) {
		t.Errorf("Leader after Run = %v, want ErrNoLeader", err)
	}
}

// TestElector_LeadPanics: the key is released and the panic reaches
// Run's caller.
func TestElector_LeadPanics(t *testing.T) {
	en := embedded(t)
	e := elector(t, en.connect(t), 1, ttl)
	ctx, cancel := context.WithTimeout(t.Context(), waitFor)
	defer cancel()
	var recovered any
	func() {
		defer func() { recovered = recover() }()
		_ = e.Run(ctx, "ws", "hub0", func(context.Context) error { panic("kaboom") })
	}()
	if recovered == nil || !strings.Contains(fmt.Sprint(recovered), "kaboom") {
		t.Fatalf("recovered %v, want the lead function's panic", recovered)
	}
	if _, err := e.Leader(ctx, "ws"); !errors.Is(err, leader.ErrNoLeader) {
		t.Errorf("Leader after the panic = %v, want ErrNoLeader", err)
	}
}

// TestElector_StepsDownWhenUnreachable kills the only NATS node: the
// leader cannot renew and must cancel lead before its lease runs out on
// the server; when the node is back it leads again.
func TestElector_StepsDownWhenUnreachable(t *testing.T) {
	t.Parallel()
	c := natstest.Cluster(t, 1)
	srv, err := natsd.Start(t.Context(), natsd.Options{URL: c.URLs()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Close() })
	e := elector(t, srv.Conn(), 1, ttl)
	type result struct {
		cause error
		at    time.Time
	}
	started := make(chan time.Time, 10)
	ended := make(chan result, 10)
	ctx, cancel := context.WithCancel(t.Context())
	wg := conc.NewWaitGroup()
	defer func() { cancel(); wg.Wait() }()
	wg.Go(func() {
		_ = e.Run(ctx, "ws", "hub0", func(ctx context.Context) error {
			started <- time.Now()
			<-ctx.Done()
			ended <- result{context.Cause(ctx), time.Now()}
			return nil
		})
	})
	recv := func(what string) {
		t.Helper()
		select {
		case <-started:
		case <-time.After(waitFor):
			t.Fatalf("%s: lead not started", what)
		}
	}
	recv("first term")
	c.Kill(0)
	// Renewals fail: the local lease runs out (when, exactly, is
	// TestElector_LeaseBound's) and the leader steps down while the node
	// is still down.
	killed := time.Now()
	select {
	case res := <-ended:
		t.Logf("stepped down %v after the node died (TTL %v), cause %v", res.at.Sub(killed).Round(time.Millisecond), ttl, res.cause)
		if !errors.Is(res.cause, leader.ErrLost) {
			t.Errorf("cause = %v, want ErrLost", res.cause)
		}
	case <-time.After(waitFor):
		t.Fatal("lead not cancelled while the bucket is unreachable")
	}
	c.Restart(0)
	recv("after restart")
}

func TestElector_Errors(t *testing.T) {
	en := embedded(t)
	js, err := jetstream.New(en.connect(t))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := leader.New(t.Context(), js, leader.Options{TTL: 500 * time.Millisecond}); !errors.Is(err, leader.ErrBadOptions) {
		t.Errorf("New with TTL 500ms: err = %v, want ErrBadOptions", err)
	}
	e, err := leader.New(t.Context(), js, leader.Options{TTL: 1500 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if got := e.TTL(); got != 2*time.Second {
		t.Errorf("TTL() = %v, want 1.5s rounded up to 2s", got)
	}
	if _, err := e.Leader(t.Context(), "nobody"); !errors.Is(err, leader.ErrNoLeader) {
		t.Errorf("Leader of a free key: err = %v, want ErrNoLeader", err)
	}
	for _, key := range []string{"", "a b", ".a", "a.", "a..b", "a*", "a>"} {
		if _, err := e.Leader(t.Context(), key); !errors.Is(err, leader.ErrBadKey) {
			t.Errorf("Leader(%q): err = %v, want ErrBadKey", key, err)
		}
		if err := e.Run(t.Context(), key, "x", func(context.Context) error { return nil }); !errors.Is(err, leader.ErrBadKey) {
			t.Errorf("Run(%q): err = %v, want ErrBadKey", key, err)
		}
	}
	if err := e.Run(t.Context(), "ws", "", func(context.Context) error { return nil }); !errors.Is(err, leader.ErrBadOptions) {
		t.Errorf("Run with empty id: err = %v, want ErrBadOptions", err)
	}
}
