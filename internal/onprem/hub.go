package onprem

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"
	"github.com/hashicorp/yamux"
)

// Hub holds the agents' sessions and opens streams over them.
type Hub struct {
	o      HubOptions
	log    *slog.Logger
	mu     sync.Mutex
	closed bool
	live   map[int]*session // resource → its one live session
	last   map[int]status   // resource → its last known state
	relay  relayState
}

// session is one agent's live connection.
type session struct {
	agent   Agent
	version string
	since   time.Time
	ws      *websocket.Conn
	mux     *yamux.Session
	mu      sync.Mutex
	streams map[*stream]struct{}
	dead    atomic.Bool // closed or closing: no new streams
}

type status struct {
	connected bool
	version   string
	since     time.Time
}

// NewHub returns a hub; mount its ServeHTTP at /agent/v1/connect.
func NewHub(o HubOptions) *Hub {
	if o.Heartbeat <= 0 {
		o.Heartbeat = 15 * time.Second
	}
	if o.DialTimeout <= 0 {
		o.DialTimeout = 10 * time.Second
	}
	if o.ForwardHost == "" {
		o.ForwardHost = "127.0.0.1"
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return &Hub{o: o, log: o.Logger, live: map[int]*session{}, last: map[int]status{}}
}

// ServeHTTP is the agent endpoint, mounted at /agent/v1/connect. It refuses
// a bad token with 401 before upgrading, and blocks for the session's
// lifetime.
func (h *Hub) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h.mu.Lock()
	closed := h.closed
	h.mu.Unlock()
	if closed {
		writeError(w, http.StatusServiceUnavailable, "INTERNAL", "plugboard is shutting down")
		return
	}
	agent, ok := h.authenticate(w, r)
	if !ok {
		return
	}
	ws, err := websocket.Accept(w, r, &websocket.AcceptOptions{InsecureSkipVerify: true})
	if err != nil {
		h.log.Warn("onprem: agent upgrade failed", "resource", agent.ResourceID, "err", err)
		return
	}
	version := r.Header.Get(VersionHeader)
	s, err := h.handshake(r.Context(), ws, agent, version)
	if err != nil {
		h.log.Warn("onprem: agent handshake failed", "resource", agent.ResourceID, "err", err)
		_ = ws.CloseNow()
		return
	}
	if !h.register(s) {
		s.close(websocket.StatusGoingAway, "plugboard is shutting down")
		return
	}
	h.log.Info("onprem: agent connected", "resource", agent.ResourceID, "version", version)
	h.observe(r.Context(), Event{ResourceID: agent.ResourceID, Kind: Connected, AgentVersion: version, At: s.since})
	h.heartbeat(context.WithoutCancel(r.Context()), s)
	h.unregister(s)
	h.log.Info("onprem: agent disconnected", "resource", agent.ResourceID)
	h.observe(r.Context(), Event{ResourceID: agent.ResourceID, Kind: Disconnected, AgentVersion: version, At: time.Now()})
}

// authenticate answers 401 (or 503) unless the bearer token names a resource.
func (h *Hub) authenticate(w http.ResponseWriter, r *http.Request) (Agent, bool) {
	token, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok || token == "" {
		writeError(w, http.StatusUnauthorized, "UNAUTHENTICATED", ErrBadToken.Error())
		return Agent{}, false
	}
	agent, err := h.o.Authenticate(r.Context(), token)
	switch {
	case errors.Is(err, ErrBadToken):
		writeError(w, http.StatusUnauthorized, "UNAUTHENTICATED", ErrBadToken.Error())
		return Agent{}, false
	case err != nil:
		h.log.Error("onprem: agent authentication failed", "err", err)
		writeError(w, http.StatusServiceUnavailable, "INTERNAL", "agent authentication is unavailable")
		return Agent{}, false
	}
	return agent, true
}

// writeError writes the runtime read's JSON error shape.
func writeError(w http.ResponseWriter, status int, code, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	fmt.Fprintf(w, `{"error":{"code":%q,"message":%q}}`+"\n", code, msg)
}

// handshake sends hello, waits for the agent's ack and starts the yamux client.
func (h *Hub) handshake(ctx context.Context, ws *websocket.Conn, agent Agent, version string) (*session, error) {
	hctx, cancel := context.WithTimeout(ctx, h.o.DialTimeout)
	defer cancel()
	if err := writeJSONMessage(hctx, ws, hello{ResourceID: agent.ResourceID, Target: agent.Target}); err != nil {
		return nil, err
	}
	var a ack
	if err := readJSONMessage(hctx, ws, &a); err != nil {
		return nil, err
	}
	if !a.OK {
		return nil, errors.New("the agent did not accept the hello")
	}
	nc := websocket.NetConn(context.WithoutCancel(ctx), ws, websocket.MessageBinary)
	mux, err := yamux.Client(nc, muxConfig(h.o.Heartbeat, false))
	if err != nil {
		return nil, err
	}
	return &session{agent: agent, version: version, since: time.Now(), ws: ws, mux: mux, streams: map[*stream]struct{}{}}, nil
}

// register makes s the resource's live session, replacing an older one.
func (h *Hub) register(s *session) bool {
	h.mu.Lock()
	if h.closed {
		h.mu.Unlock()
		return false
	}
	old := h.live[s.agent.ResourceID]
	h.live[s.agent.ResourceID] = s
	h.last[s.agent.ResourceID] = status{connected: true, version: s.version, since: s.since}
	h.mu.Unlock()
	if old != nil {
		h.log.Info("onprem: a newer agent session replaces the old one", "resource", s.agent.ResourceID)
		old.close(closeReplaced, "replaced by a newer agent session of this resource")
	}
	return true
}

// unregister forgets s unless a newer session replaced it.
func (h *Hub) unregister(s *session) {
	s.close(websocket.StatusNormalClosure, "")
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.live[s.agent.ResourceID] == s {
		delete(h.live, s.agent.ResourceID)
		h.last[s.agent.ResourceID] = status{version: s.version, since: time.Now()}
	}
}

// heartbeat pings the session every Heartbeat until it ends.
func (h *Hub) heartbeat(ctx context.Context, s *session) {
	t := time.NewTicker(h.o.Heartbeat)
	defer t.Stop()
	for {
		select {
		case <-s.mux.CloseChan():
			return
		case <-t.C:
			if _, err := s.mux.Ping(); err != nil {
				h.log.Warn("onprem: agent missed a heartbeat", "resource", s.agent.ResourceID, "err", err)
				return
			}
			h.observe(ctx, Event{ResourceID: s.agent.ResourceID, Kind: Seen, AgentVersion: s.version, At: time.Now()})
		}
	}
}

func (h *Hub) observe(ctx context.Context, ev Event) {
	if h.o.Observe != nil {
		h.o.Observe(context.WithoutCancel(ctx), ev)
	}
}

// close ends the session and every live stream at once.
func (s *session) close(code websocket.StatusCode, reason string) {
	s.mu.Lock()
	streams := make([]*stream, 0, len(s.streams))
	for st := range s.streams {
		streams = append(streams, st)
	}
	s.mu.Unlock()
	s.dead.Store(true)
	for _, st := range streams {
		st.abort(ErrAgentDisconnected)
	}
	// The close handshake tells the agent why (a replaced agent backs off);
	// it waits for the agent's answer, so it does not hold up the caller.
	go func() {
		_ = s.ws.Close(code, reason)
		_ = s.mux.Close()
	}()
}

func (h *Hub) session(resourceID int) *session {
	h.mu.Lock()
	defer h.mu.Unlock()
	s := h.live[resourceID]
	if s == nil || s.dead.Load() || s.mux.IsClosed() {
		return nil
	}
	return s
}

// Status says whether the resource's agent holds a session, its version,
// and since when it is connected (or since when disconnected; zero if this
// hub never saw it).
func (h *Hub) Status(resourceID int) (connected bool, agentVersion string, since time.Time) {
	h.mu.Lock()
	defer h.mu.Unlock()
	st := h.last[resourceID]
	if s := h.live[resourceID]; s != nil && (s.dead.Load() || s.mux.IsClosed()) {
		return false, st.version, st.since
	}
	return st.connected, st.version, st.since
}

// Cut closes the resource's session and every live stream at once (the
// resource was deleted, its token rotated or its target changed: the agent
// learns its target when it connects, so a changed target needs a Cut).
func (h *Hub) Cut(resourceID int) {
	h.mu.Lock()
	s := h.live[resourceID]
	h.mu.Unlock()
	if s != nil {
		s.close(websocket.StatusPolicyViolation, "the resource's tunnel was cut")
		h.unregister(s)
	}
}

// Close cuts every session; ServeHTTP refuses agents afterwards.
func (h *Hub) Close() error {
	h.mu.Lock()
	h.closed = true
	all := make([]*session, 0, len(h.live))
	for _, s := range h.live {
		all = append(all, s)
	}
	h.mu.Unlock()
	for _, s := range all {
		s.close(websocket.StatusGoingAway, "plugboard is shutting down")
		h.unregister(s)
	}
	return nil
}
