package server

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/mark3labs/mcp-go/mcp"
	mcpserver "github.com/mark3labs/mcp-go/server"

	"github.com/filecast/filecast/events"
	"github.com/filecast/filecast/events/inbox"
	"github.com/filecast/filecast/resources"
	"github.com/filecast/filecast/tools"
)

// onRegister creates the session's state when mcp-go registers it: after
// initialize over HTTP, when the connection starts over stdio.
func (s *Server) onRegister(ctx context.Context, cs mcpserver.ClientSession) {
	ss := &session{cs: cs, notif: newNotifier(cs, nil, true, &s.stats, s.log), leases: tools.NewLeases()}
	// An HTTP session is registered after its initialize; a stdio one
	// before any message, when what mcp-go's process-wide stdio session
	// holds is from an earlier connection: afterInitialize decides for it.
	if !viaStdio(ctx) && !isModern(cs) && cs.Initialized() {
		ss.notif.setLegacy()
		if name := clientName(cs); name != "" {
			ss.box = s.newInbox(ctx, ss.setClient(name))
		}
	}
	s.mu.Lock()
	old := s.sessions[cs.SessionID()]
	s.sessions[cs.SessionID()] = ss
	s.mu.Unlock()
	if old != nil {
		s.closeSession(ctx, old)
	}
	s.arm(ss.notif)
	s.log.Debug("session registered", "session", cs.SessionID(), "client", clientName(cs))
}

func (s *Server) onUnregister(ctx context.Context, cs mcpserver.ClientSession) {
	s.mu.Lock()
	ss := s.sessions[cs.SessionID()]
	if ss != nil && ss.cs == cs {
		delete(s.sessions, cs.SessionID())
	} else {
		ss = nil
	}
	s.mu.Unlock()
	if ss != nil {
		s.closeSession(ctx, ss)
		s.log.Debug("session unregistered", "session", cs.SessionID())
	}
}

func (s *Server) closeSession(ctx context.Context, ss *session) {
	s.disarm(ss.notif)
	ss.mu.Lock()
	box := ss.box
	ss.box = nil
	ss.mu.Unlock()
	if box != nil {
		box.Close()
	}
	s.releaseLeases(ctx, ss)
}

// releaseLeases releases the locks a session took and did not release.
// It blocks for at most releaseTimeout; failures are logged at debug level,
// since the locks expire by TTL anyway.
func (s *Server) releaseLeases(ctx context.Context, ss *session) {
	held := ss.leases.Close()
	if s.locker == nil || len(held) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), releaseTimeout)
	defer cancel()
	for _, l := range held {
		if err := s.locker.Unlock(ctx, l.Workspace, l.Path, l.Token); err != nil {
			s.log.Debug("release lock of ended session", "session", ss.cs.SessionID(), "workspace", l.Workspace, "path", l.Path, "err", err)
			continue
		}
		s.log.Debug("released lock of ended session", "session", ss.cs.SessionID(), "workspace", l.Workspace, "path", l.Path)
	}
}

// setClient records the client's name and returns the session's holder
// name, minting it the first time and again only if the client's name
// changes (a reinitialized stdio connection).
func (ss *session) setClient(name string) string {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	return ss.setClientLocked(name)
}

func (ss *session) setClientLocked(name string) string {
	if ss.holder == "" || ss.client != name {
		ss.client, ss.holder = name, holder(name)
	}
	return ss.holder
}

// afterInitialize gives a session registered before its handshake (stdio)
// a fresh buffer named after the client.
// handshakeWait bounds how long the handshake waits for the Source.
const handshakeWait = 500 * time.Millisecond

func (s *Server) afterInitialize(ctx context.Context, _ any, req *mcp.InitializeRequest, res *mcp.InitializeResult) {
	cs := mcpserver.ClientSessionFromContext(ctx)
	if cs == nil {
		return
	}
	s.mu.RLock()
	ss := s.sessions[cs.SessionID()]
	s.mu.RUnlock()
	if ss == nil || ss.cs != cs {
		return // HTTP: registered after this hook, with the client info set
	}
	if res != nil && !mcp.IsModernProtocol(res.ProtocolVersion) {
		// Only a session that negotiated a protocol before 2026-07-28
		// gets notifications outside a subscriptions/listen stream.
		ss.notif.setLegacy()
	}
	holder := ss.setClient(req.Params.ClientInfo.Name)
	// A Source that cannot say its workspaces yet (a host whose roots are
	// not known until after this handshake) must not hold it up: the
	// session then gets its buffer on first use.
	pctx, cancel := context.WithTimeout(ctx, handshakeWait)
	_, err := s.position(pctx)
	cancel()
	if err != nil {
		s.log.Debug("session buffer deferred to first use", "session", cs.SessionID(), "err", err)
		return
	}
	box := s.newInbox(ctx, holder)
	ss.mu.Lock()
	old := ss.box
	ss.box = box
	ss.mu.Unlock()
	if old != nil {
		old.Close()
	}
}

// newInbox returns a buffer for a session whose lock holder name is
// holder, starting at the position the router has reached.
func (s *Server) newInbox(ctx context.Context, holder string) *inbox.Inbox {
	start, err := s.position(ctx)
	if err != nil {
		s.log.Warn("new session buffer: list workspaces", "err", err)
	}
	return inbox.New(inbox.Options{Workspaces: slices.Collect(maps.Keys(start)), Capacity: s.opts.Capacity,
		Holder: holder, Actor: tools.Actor(holder), Start: start})
}

// position returns the router's position, or the heads of the Source
// before Run has started.
func (s *Server) position(ctx context.Context) (events.Cursor, error) {
	s.mu.RLock()
	heads := s.heads.Clone()
	s.mu.RUnlock()
	if len(heads) > 0 {
		return heads, nil
	}
	wss, err := s.src.Workspaces(ctx)
	if err != nil {
		return events.Cursor{}, err
	}
	for _, w := range wss {
		heads[w.Name] = w.Head
	}
	return heads, nil
}

// statelessInbox returns the inbox that holds the subscriptions of
// requests without a lasting session; it is never offered events.
func (s *Server) statelessInbox(ctx context.Context) (*inbox.Inbox, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stateless != nil {
		return s.stateless, nil
	}
	wss, err := s.src.Workspaces(ctx)
	if err != nil {
		return nil, fmt.Errorf("list workspaces: %w", err)
	}
	names := make([]string, 0, len(wss))
	for _, w := range wss {
		names = append(names, w.Name)
	}
	s.stateless = inbox.New(inbox.Options{Workspaces: names, Capacity: 1})
	return s.stateless, nil
}

// toolSession is the tools' view of the session of a request.
func (s *Server) toolSession(ctx context.Context) (tools.Session, error) {
	cs := mcpserver.ClientSessionFromContext(ctx)
	if cs == nil {
		return tools.Session{}, tools.ErrNoSession
	}
	s.mu.RLock()
	ss := s.sessions[cs.SessionID()]
	s.mu.RUnlock()
	if ss == nil || ss.cs != cs {
		box, err := s.statelessInbox(ctx)
		if err != nil {
			return tools.Session{}, err
		}
		// No session outlives the request: its locks are named per
		// request and end by TTL.
		name := clientName(cs)
		return tools.Session{Inbox: box, Stateless: true, Holder: holder(name), Client: name}, nil
	}
	ss.mu.Lock()
	defer ss.mu.Unlock()
	if ss.box == nil {
		// A session that skipped the handshake (protocol 2026-07-28 over
		// stdio) gets its buffer on first use.
		if _, err := s.position(ctx); err != nil {
			return tools.Session{}, err
		}
		ss.box = s.newInbox(ctx, ss.setClientLocked(clientName(cs)))
	}
	return tools.Session{Inbox: ss.box, Holder: ss.holder, Client: ss.client, Leases: ss.leases}, nil
}

// stdioKey marks the context of ServeStdio, in which mcp-go registers its
// stdio session.
type stdioKey struct{}

func viaStdio(ctx context.Context) bool { return ctx.Value(stdioKey{}) != nil }

func clientName(cs mcpserver.ClientSession) string {
	if ci, ok := cs.(mcpserver.SessionWithClientInfo); ok {
		return ci.GetClientInfo().Name
	}
	return ""
}

func isModern(cs mcpserver.ClientSession) bool {
	v, ok := cs.(interface{ ProtocolVersion() string })
	return ok && mcp.IsModernProtocol(v.ProtocolVersion())
}

// checkRequest rejects, with a JSON-RPC error, resource subscriptions to
// URIs that are not filecast resources of a served workspace.
func (s *Server) checkRequest(ctx context.Context, _ any, message any) error {
	raw, ok := message.(json.RawMessage)
	if !ok || !bytes.Contains(raw, []byte("resources/")) && !bytes.Contains(raw, []byte("subscriptions/")) && bytes.IndexByte(raw, '\\') < 0 {
		return nil // none of the methods below, nor an escape that could spell one: most requests skip decoding
	}
	var req struct {
		Method string `json:"method"`
		Params struct {
			URI           string                 `json:"uri"`
			Notifications mcp.SubscriptionFilter `json:"notifications"`
		} `json:"params"`
	}
	if json.Unmarshal(raw, &req) != nil {
		return nil
	}
	switch mcp.MCPMethod(req.Method) {
	case mcp.MethodResourcesSubscribe, mcp.MethodResourcesUnsubscribe:
		_, err := s.resolve(ctx, req.Params.URI)
		return err
	case mcp.MethodSubscriptionsListen:
		for _, uri := range req.Params.Notifications.ResourceSubscriptions {
			if _, err := s.resolve(ctx, uri); err != nil {
				return err
			}
		}
	}
	return nil
}

// resolve parses a resource URI and checks its workspace.
func (s *Server) resolve(ctx context.Context, uri string) (resources.Ref, error) {
	ref, err := resources.ParseURI(uri)
	if err != nil {
		return resources.Ref{}, fmt.Errorf("resource subscription: %w", err)
	}
	wss, err := s.src.Workspaces(ctx)
	if err != nil {
		return resources.Ref{}, fmt.Errorf("resource subscription: list workspaces: %w", err)
	}
	names := make([]string, 0, len(wss))
	for _, w := range wss {
		if w.Name == ref.Workspace {
			return ref, nil
		}
		names = append(names, w.Name)
	}
	return resources.Ref{}, fmt.Errorf("resource subscription: %w", &events.Error{
		Kind: events.ErrUnknownWorkspace, Value: ref.Workspace, Why: "known workspaces: " + strings.Join(names, ", "),
	})
}

func (s *Server) sessionOf(ctx context.Context) *session {
	cs := mcpserver.ClientSessionFromContext(ctx)
	if cs == nil {
		return nil
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	if ss := s.sessions[cs.SessionID()]; ss != nil && ss.cs == cs {
		return ss
	}
	return nil
}

func (s *Server) afterSubscribe(ctx context.Context, _ any, req *mcp.SubscribeRequest, _ *mcp.EmptyResult) {
	ss := s.sessionOf(ctx)
	ref, err := resources.ParseURI(req.Params.URI)
	if ss == nil || err != nil {
		return
	}
	ss.notif.subscribe(ref)
}

func (s *Server) afterUnsubscribe(ctx context.Context, _ any, req *mcp.UnsubscribeRequest, _ *mcp.EmptyResult) {
	ss := s.sessionOf(ctx)
	ref, err := resources.ParseURI(req.Params.URI)
	if ss == nil || err != nil {
		return
	}
	ss.notif.unsubscribe(ref)
}

// beforeListen starts delivering to a subscriptions/listen stream
// (protocol 2026-07-28). The stream's notifications go to the session of
// the listen request, tagged with its id, until the request ends.
func (s *Server) beforeListen(ctx context.Context, id any, req *mcp.SubscriptionsListenRequest) {
	cs := mcpserver.ClientSessionFromContext(ctx)
	if cs == nil || id == nil {
		return
	}
	want := req.Params.Notifications
	if !want.ResourcesListChanged && len(want.ResourceSubscriptions) == 0 {
		return
	}
	n := newNotifier(cs, id, want.ResourcesListChanged, &s.stats, s.log)
	for _, uri := range want.ResourceSubscriptions {
		if ref, err := resources.ParseURI(uri); err == nil {
			n.subscribe(ref)
		}
	}
	s.mu.Lock()
	s.listens[n] = struct{}{}
	s.mu.Unlock()
	s.arm(n)
	context.AfterFunc(ctx, func() {
		s.mu.Lock()
		delete(s.listens, n)
		s.mu.Unlock()
		s.disarm(n)
	})
}
