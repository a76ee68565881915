package onprem

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/netip"
	"time"
)

// Hub holds the agents' sessions and opens streams over them.
type Hub struct {
	o HubOptions
}

// NewHub returns a hub; mount its ServeHTTP at /agent/v1/connect.
func NewHub(o HubOptions) *Hub { return &Hub{o: o} }

// ServeHTTP is the agent endpoint, mounted at /agent/v1/connect. It blocks
// for the session's lifetime.
func (h *Hub) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	http.Error(w, "not implemented", http.StatusNotImplemented)
}

// Dial opens a stream to the resource's target. The returned conn's
// CloseWrite half-closes; Close ends the stream and reports it to
// AuditStream. ErrAgentDisconnected at once without a session; a
// *StreamError when the agent refused the stream.
func (h *Hub) Dial(ctx context.Context, resourceID int, info StreamInfo) (net.Conn, error) {
	return nil, ErrAgentDisconnected
}

// Forward listens on a local address (ForwardHost:0) and forwards each
// accepted connection over a new stream. The caller closes it; it also
// closes when ctx ends. ErrAgentDisconnected at once without a session.
func (h *Hub) Forward(ctx context.Context, resourceID int, info StreamInfo) (*Forwarder, error) {
	return nil, ErrAgentDisconnected
}

// Status says whether the resource's agent holds a session, its version,
// and since when it is connected (or since when disconnected; zero if this
// hub never saw it).
func (h *Hub) Status(resourceID int) (connected bool, agentVersion string, since time.Time) {
	return false, "", time.Time{}
}

// Cut closes the resource's session and every live stream at once (the
// resource was deleted or its token rotated).
func (h *Hub) Cut(resourceID int) {}

// Close cuts every session; ServeHTTP refuses agents afterwards.
func (h *Hub) Close() error { return nil }

// Forwarder listens on a local address and forwards each accepted
// connection over a new tunnel stream.
type Forwarder struct {
	ln net.Listener
}

// Addr is the local address to connect to.
func (f *Forwarder) Addr() netip.AddrPort { return netip.AddrPort{} }

// Close stops listening and ends every forwarded connection.
func (f *Forwarder) Close() error { return errors.ErrUnsupported }

// RunAgent runs the agent side: it connects, serves streams, and reconnects
// with exponential backoff and jitter until ctx ends (then it returns nil).
// It returns ErrTokenRefused on a 401 and ErrTargetMismatch when the server
// names a target other than o.Target.
func RunAgent(ctx context.Context, o AgentOptions) error { return errors.ErrUnsupported }
