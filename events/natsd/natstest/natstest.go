// Package natstest runs real NATS JetStream servers inside a test binary:
// the embedded single node filecast runs by default (Start), and a cluster
// of nats-server nodes on loopback for tests of clustering and failover
// (Cluster).
//
// Every node listens for clients and for cluster routes on free ports of
// 127.0.0.1 and keeps its JetStream store in its own t.TempDir(). A node can
// be killed and started again with the same ports and store, which is what
// a crashed and restarted server looks like to the rest of the cluster and
// to clients.
//
// A sketch:
//
//	c := natstest.Cluster(t, 3)
//	srv, err := natsd.Start(ctx, natsd.Options{URL: c.URLs(), Replicas: 3})
//	...
//	c.Kill(0)    // the clients move to another node
//	c.Restart(0) // the node catches up from its peers
package natstest

import (
	"context"
	"fmt"
	"net"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"

	"github.com/filecast/filecast/events/natsd"
)

// Timeouts of the waits; generous, for loaded machines and -race.
const (
	readyTimeout  = 20 * time.Second
	leaderTimeout = 60 * time.Second
	startAttempts = 3
)

// C is a running cluster started by Cluster. Its methods are safe for
// concurrent use; Kill, Restart and WaitReady fail the test (t.Fatal) when
// a node does not come up in time, so call them from the test's goroutine.
type C struct {
	t    testing.TB
	name string

	mu    sync.Mutex
	nodes []*node
}

type node struct {
	name        string
	clientPort  int
	clusterPort int
	storeDir    string
	srv         *server.Server // nil while killed
	log         *logTail
}

// logTail keeps a node's latest log lines, for failure messages.
type logTail struct {
	mu    sync.Mutex
	lines []string
}

func (l *logTail) add(level, format string, v ...any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.lines = append(l.lines, time.Now().Format("15:04:05.000 ")+level+" "+fmt.Sprintf(format, v...))
	if len(l.lines) > 30 {
		l.lines = l.lines[len(l.lines)-30:]
	}
}

func (l *logTail) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Join(l.lines, "\n")
}

func (l *logTail) Noticef(format string, v ...any) { l.add("INF", format, v...) }
func (l *logTail) Warnf(format string, v ...any)   { l.add("WRN", format, v...) }
func (l *logTail) Errorf(format string, v ...any)  { l.add("ERR", format, v...) }
func (l *logTail) Fatalf(format string, v ...any)  { l.add("FTL", format, v...) }
func (l *logTail) Debugf(string, ...any)           {}
func (l *logTail) Tracef(string, ...any)           {}

// Cluster starts an n-node JetStream cluster and waits until its nodes
// have elected a JetStream meta leader that sees all of them. The nodes
// are shut down by t.Cleanup.
func Cluster(t testing.TB, n int) *C {
	t.Helper()
	if n < 1 {
		t.Fatalf("natstest: cluster of %d nodes", n)
	}
	c := &C{t: t, name: fmt.Sprintf("filecast-test-%d", time.Now().UnixNano()%1e6)}
	for i := range n {
		c.nodes = append(c.nodes, &node{name: fmt.Sprintf("n%d", i), storeDir: t.TempDir()})
	}
	t.Cleanup(c.shutdown)
	// A port found free may be taken by another process before the node
	// binds it: then start over on other ports.
	var err error
	for range startAttempts {
		for _, nd := range c.nodes {
			nd.clientPort, nd.clusterPort = freePort(t), freePort(t)
		}
		for i := range c.nodes {
			if err = c.start(i); err != nil {
				break
			}
		}
		if err == nil {
			break
		}
		c.shutdown()
	}
	if err != nil {
		t.Fatal(err)
	}
	c.WaitReady()
	return c
}

// freePort returns a TCP port of 127.0.0.1 that was free a moment ago.
func freePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("natstest: find a free port: %v", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func (c *C) options(i int) *server.Options {
	n := c.nodes[i]
	var routes []*url.URL
	for j, o := range c.nodes {
		if j != i {
			routes = append(routes, &url.URL{Scheme: "nats", Host: fmt.Sprintf("127.0.0.1:%d", o.clusterPort)})
		}
	}
	opts := &server.Options{
		ServerName:         n.name,
		Host:               "127.0.0.1",
		Port:               n.clientPort,
		NoSigs:             true,
		JetStream:          true,
		StoreDir:           n.storeDir,
		JetStreamMaxMemory: 64 << 20,
		JetStreamMaxStore:  1 << 30,
		Routes:             routes,
	}
	if len(c.nodes) > 1 {
		opts.Cluster = server.ClusterOpts{Name: c.name, Host: "127.0.0.1", Port: n.clusterPort}
	}
	return opts
}

func (c *C) start(i int) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := c.nodes[i]
	if n.srv != nil {
		return fmt.Errorf("natstest: node %d is already running", i)
	}
	srv, err := server.NewServer(c.options(i))
	if err != nil {
		return fmt.Errorf("natstest: create node %d: %w", i, err)
	}
	n.log = &logTail{}
	srv.SetLogger(n.log, false, false)
	srv.Start()
	if !srv.ReadyForConnections(readyTimeout) {
		srv.Shutdown()
		srv.WaitForShutdown()
		return fmt.Errorf("natstest: node %d not ready within %v (ports %d, %d); its log:\n%s", i, readyTimeout, n.clientPort, n.clusterPort, n.log)
	}
	n.srv = srv
	return nil
}

// N returns the number of nodes, running or not.
func (c *C) N() int { return len(c.nodes) }

// URLs returns the client URLs of every node, running or not, separated by
// commas, as given to natsd.Options.URL.
func (c *C) URLs() string {
	urls := make([]string, len(c.nodes))
	for i := range c.nodes {
		urls[i] = c.URL(i)
	}
	return strings.Join(urls, ",")
}

// URL returns the client URL of node i.
func (c *C) URL(i int) string {
	return fmt.Sprintf("nats://127.0.0.1:%d", c.nodes[i].clientPort)
}

// Server returns node i's server, or nil while it is killed.
func (c *C) Server(i int) *server.Server {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.nodes[i].srv
}

// Kill shuts node i down at once: its clients are disconnected and its
// routes dropped, with no JetStream leadership handed over beforehand.
// It blocks until the node has stopped.
func (c *C) Kill(i int) {
	c.t.Helper()
	c.mu.Lock()
	srv := c.nodes[i].srv
	c.nodes[i].srv = nil
	c.mu.Unlock()
	if srv == nil {
		c.t.Fatalf("natstest: node %d is not running", i)
	}
	srv.Shutdown()
	srv.WaitForShutdown()
}

// Restart starts the killed node i again with the same ports and store,
// and waits until the cluster has a meta leader that sees every running
// node and node i is current.
func (c *C) Restart(i int) {
	c.t.Helper()
	if err := c.start(i); err != nil {
		c.t.Fatal(err)
	}
	c.WaitReady()
}

// Running returns the indexes of the running nodes.
func (c *C) Running() []int {
	c.mu.Lock()
	defer c.mu.Unlock()
	var idx []int
	for i, n := range c.nodes {
		if n.srv != nil {
			idx = append(idx, i)
		}
	}
	return idx
}

// MetaLeader returns the index of the node that is JetStream meta leader,
// or -1 when none is.
func (c *C) MetaLeader() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	for i, n := range c.nodes {
		if n.srv != nil && (len(c.nodes) == 1 || n.srv.JetStreamIsLeader()) {
			return i
		}
	}
	return -1
}

// WaitReady waits until a meta leader is elected that sees every running
// node with JetStream, and every running node's meta state is current.
func (c *C) WaitReady() {
	c.t.Helper()
	deadline := time.Now().Add(leaderTimeout)
	for {
		if c.ready() {
			return
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("natstest: no JetStream meta leader seeing all %d running nodes within %v", len(c.Running()), leaderTimeout)
		}
		time.Sleep(50 * time.Millisecond) // polling the servers' state
	}
}

func (c *C) ready() bool {
	running := c.Running()
	if len(c.nodes) == 1 {
		return len(running) == 1
	}
	l := c.MetaLeader()
	if l < 0 {
		return false
	}
	srv := c.Server(l)
	if srv == nil || len(srv.JetStreamClusterPeers()) < len(running) {
		return false
	}
	for _, i := range running {
		if s := c.Server(i); s == nil || !s.JetStreamIsCurrent() {
			return false
		}
	}
	return true
}

func (c *C) shutdown() {
	c.mu.Lock()
	var srvs []*server.Server
	for _, n := range c.nodes {
		if n.srv != nil {
			srvs = append(srvs, n.srv)
			n.srv = nil
		}
	}
	c.mu.Unlock()
	for _, s := range srvs {
		s.Shutdown()
	}
	for _, s := range srvs {
		s.WaitForShutdown()
	}
}

// Start starts the embedded single-node JetStream server filecast runs by
// default (natsd.Start), with its store in a new t.TempDir(), and closes it
// when the test ends.
func Start(t testing.TB) *natsd.Server {
	t.Helper()
	return StartWith(t, natsd.Options{})
}

// StartWith is Start with options; an empty StoreDir is a new t.TempDir().
// Give the same StoreDir again to restart on a store, after closing the
// first server (Close).
func StartWith(t testing.TB, opts natsd.Options) *natsd.Server {
	t.Helper()
	if opts.StoreDir == "" && opts.URL == "" {
		opts.StoreDir = t.TempDir()
	}
	ctx, cancel := context.WithTimeout(context.Background(), readyTimeout)
	defer cancel()
	srv, err := natsd.Start(ctx, opts)
	if err != nil {
		t.Fatalf("start nats: %v", err)
	}
	t.Cleanup(func() { _ = srv.Close() })
	return srv
}
