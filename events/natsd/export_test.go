package natsd

import "github.com/nats-io/nats-server/v2/server"

// NATSServer exposes the embedded server to the tests.
func (s *Server) NATSServer() *server.Server { return s.ns }
