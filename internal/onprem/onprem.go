package onprem

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"
)

// Agent is an authenticated agent: the resource it serves and where it may go.
type Agent struct {
	ResourceID     int
	OrganizationID int
	Target         string // host:port, as seen from inside the customer's network
}

// ErrBadToken is Authenticate's answer for an unknown, rotated or deleted
// resource's token. The hub answers it with 401 before any upgrade.
var ErrBadToken = errors.New("onprem: unknown agent token")

// ErrAgentDisconnected is Dial's and Forward's answer when no agent of the
// resource holds a session. It comes at once, without waiting for a timeout.
var ErrAgentDisconnected = errors.New("onprem: the resource's agent is not connected")

// ErrTokenRefused is RunAgent's answer when the server refused the token
// (401): the resource was deleted or its token rotated. The agent stops
// rather than retrying a token that cannot work.
var ErrTokenRefused = errors.New("onprem: the server refused the agent token (401): the resource's token was rotated or the resource deleted; start the agent with a new token")

// ErrTargetMismatch is RunAgent's answer when the server names a target
// other than the agent's --target pin. The agent stops.
var ErrTargetMismatch = errors.New("onprem: the server names a target other than the agent's --target pin")

// EventKind is what happened to a resource's agent session.
type EventKind int

const (
	// Connected: an agent opened a session (AgentVersion says its version).
	Connected EventKind = iota + 1
	// Seen: the session answered a heartbeat.
	Seen
	// Disconnected: the session ended (agent gone, Cut, replaced, Close).
	Disconnected
)

func (k EventKind) String() string {
	switch k {
	case Connected:
		return "connected"
	case Seen:
		return "seen"
	case Disconnected:
		return "disconnected"
	}
	return fmt.Sprintf("EventKind(%d)", int(k))
}

// Event is one change of a resource's agent session, passed to
// HubOptions.Observe.
type Event struct {
	ResourceID   int
	Kind         EventKind
	AgentVersion string
	At           time.Time
}

// StreamInfo says who a stream is for; it is passed back in StreamRecord.
type StreamInfo struct {
	Purpose      string // "test", "runtime", "proxy"
	Actor        string
	ConnectionID int
	CredentialID int
	// Via is the URL of the replica that asked for a relayed stream; ""
	// for a stream of this replica's own.
	Via string
}

// StreamRecord is one ended stream, passed to HubOptions.AuditStream.
// BytesUp went from plugboard to the target, BytesDown came back.
type StreamRecord struct {
	ResourceID int
	Info       StreamInfo
	BytesUp    int64
	BytesDown  int64
	Duration   time.Duration
	Err        error // nil for a stream that ended cleanly; a *StreamError when the agent refused it
}

// StreamError is the agent's refusal of one stream: a destination other
// than its target, or a target it could not reach.
type StreamError struct {
	Code    string // one of the Stream* codes
	Message string
}

// The codes of a StreamError.
const (
	StreamForbidden   = "forbidden_destination" // not the resource's target (or the agent's pin)
	StreamRefused     = "connection_refused"    // the target refused the connection
	StreamTimeout     = "timeout"               // the target did not answer in time
	StreamUnreachable = "unreachable"           // any other dial failure (DNS, no route)
	StreamProtocol    = "protocol"              // the stream header was malformed
)

func (e *StreamError) Error() string {
	return fmt.Sprintf("onprem: the agent refused the stream (%s): %s", e.Code, e.Message)
}

// HubOptions configures a Hub. Authenticate is required.
type HubOptions struct {
	// Authenticate maps an agent token to its resource; ErrBadToken for a
	// bad token (answered 401), any other error is answered 503.
	Authenticate func(ctx context.Context, token string) (Agent, error)
	// Observe is told of connect, heartbeat and disconnect. Optional.
	Observe func(ctx context.Context, ev Event)
	// AuditStream is called once when each stream ends, a stream the agent
	// refused included (Err set). A Dial refused for want of a session
	// (ErrAgentDisconnected) opened no stream and is not reported. Optional.
	AuditStream func(ctx context.Context, r StreamRecord)
	Logger      *slog.Logger
	// Heartbeat is how often the hub pings each session (default 15s); a
	// session that misses a ping for ConnectionWriteTimeout is closed.
	Heartbeat time.Duration
	// ForwardHost is the host a Forwarder listens on (default 127.0.0.1).
	ForwardHost string
	// DialTimeout bounds opening a stream and the agent's dial of the
	// target (default 10s), on top of the caller's context.
	DialTimeout time.Duration
	// Relay routes streams of sessions another replica holds (relay.go).
	// Optional: without it, streams go over this hub's sessions only.
	Relay *RelayOptions
}

// AgentOptions configures RunAgent, the agent side.
type AgentOptions struct {
	Server   string // https://plugboard.example.com (http:// only with Insecure, for development)
	Token    string
	Target   string // optional local pin: refuse a server that names another target
	CAFile   string // optional, a private CA for the server's certificate
	Insecure bool   // allow http:// and skip nothing else: TLS is still verified on https://
	Version  string
	Logger   *slog.Logger
	// MaxBackoff caps the reconnect delay (default 30s).
	MaxBackoff time.Duration
}
