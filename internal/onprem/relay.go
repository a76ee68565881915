package onprem

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/coder/websocket"
	"github.com/hashicorp/yamux"
)

// Streams across replicas. Every replica accepts agents; an agent's session
// lands on one of them (the holder), which records itself as the
// resource's holder (RelayOptions.Locate reads it back). A replica asked
// for a stream of a resource whose session it does not hold opens a
// websocket to the holder's RelayPath with a sealed ticket naming the
// resource and who the stream is for; the holder opens the stream over its
// session, as for its own callers, audits it, and pipes the two together.

// RelayPath is where a replica serves the relayed streams of the sessions
// it holds.
const RelayPath = "/agent/v1/relay"

// RelayHeader carries a relay request's ticket.
const RelayHeader = "Plugboard-Relay-Ticket"

// ticketTTL bounds how long a ticket opens a stream; each opens one.
const ticketTTL = 30 * time.Second

// RelayOptions let a hub route streams to the replica that holds a
// resource's session. Every field but Client is required.
type RelayOptions struct {
	// Self is this replica's URL, where the others reach its RelayPath.
	Self string
	// Locate names the URL of the replica holding the resource's agent
	// session, "" when none does.
	Locate func(ctx context.Context, resourceID int) (string, error)
	// Seal and Open protect tickets with a key every replica shares
	// (authenticated encryption): only a replica can make one.
	Seal func(ctx context.Context, plaintext []byte) ([]byte, error)
	Open func(ctx context.Context, sealed []byte) ([]byte, error)
	// Client makes the relay requests (default: a client without a
	// timeout of its own; dials are bounded by DialTimeout).
	Client *http.Client
}

// ticket is a relay request's sealed claim.
type ticket struct {
	Resource int        `json:"r"`
	Info     StreamInfo `json:"i"`
	From     string     `json:"f"`
	Expires  int64      `json:"e"` // Unix seconds
	Nonce    string     `json:"n"`
}

// relayState is the holder's memory of the tickets it honoured.
type relayState struct {
	mu   sync.Mutex
	used map[string]time.Time // nonce → expiry
}

// Reachable reports whether a stream of the resource can be opened now:
// this hub holds its session, or another replica does.
func (h *Hub) Reachable(ctx context.Context, resourceID int) bool {
	if h.session(resourceID) != nil {
		return true
	}
	holder, err := h.holder(ctx, resourceID)
	return err == nil && holder != ""
}

// holder is the other replica holding the resource's session, "" for none.
func (h *Hub) holder(ctx context.Context, resourceID int) (string, error) {
	r := h.o.Relay
	if r == nil {
		return "", nil
	}
	url, err := r.Locate(ctx, resourceID)
	if err != nil || url == r.Self {
		return "", err
	}
	return url, nil
}

// relayDial opens a stream through the replica holding the resource's
// session.
func (h *Hub) relayDial(ctx context.Context, resourceID int, info StreamInfo) (net.Conn, error) {
	holder, err := h.holder(ctx, resourceID)
	if err != nil {
		return nil, fmt.Errorf("onprem: locating the replica of the agent's session: %w", err)
	}
	if holder == "" {
		return nil, ErrAgentDisconnected
	}
	r := h.o.Relay
	b, err := json.Marshal(ticket{Resource: resourceID, Info: info, From: r.Self,
		Expires: time.Now().Add(ticketTTL).Unix(), Nonce: randomNonce()})
	if err != nil {
		return nil, err
	}
	sealed, err := r.Seal(ctx, b)
	if err != nil {
		return nil, err
	}
	dctx, cancel := context.WithTimeout(ctx, h.o.DialTimeout)
	defer cancel()
	ws, res, err := websocket.Dial(dctx, wsURL(holder)+RelayPath, &websocket.DialOptions{
		HTTPClient: r.Client,
		HTTPHeader: http.Header{RelayHeader: {base64.RawURLEncoding.EncodeToString(sealed)}},
	})
	if err != nil {
		return nil, h.relayRefusal(resourceID, holder, res, err)
	}
	// One yamux stream over the websocket carries the bytes, so a
	// half-close reaches the target as over a session of this replica's.
	sess, err := yamux.Client(websocket.NetConn(context.WithoutCancel(ctx), ws, websocket.MessageBinary), muxConfig(h.o.Heartbeat, false))
	if err != nil {
		_ = ws.CloseNow()
		return nil, err
	}
	ys, err := sess.OpenStream()
	if err != nil {
		_ = sess.Close()
		return nil, ErrAgentDisconnected
	}
	return &relayConn{Stream: ys, sess: sess}, nil
}

// relayConn is a relayed stream on the asking replica's side.
type relayConn struct {
	*yamux.Stream
	sess *yamux.Session
}

// CloseWrite half-closes: the target reads EOF, its answer still comes back.
func (c *relayConn) CloseWrite() error { return c.Stream.Close() }

// Close ends the stream and its websocket.
func (c *relayConn) Close() error {
	_ = c.Stream.Close()
	return c.sess.Close()
}

// halfCloser is the holder's side of a relayed stream: Close of a yamux
// stream half-closes it.
type halfCloser struct{ *yamux.Stream }

func (c halfCloser) CloseWrite() error { return c.Stream.Close() }

// relayRefusal is the error of a relay request the holder did not take.
func (h *Hub) relayRefusal(resourceID int, holder string, res *http.Response, err error) error {
	if res == nil {
		h.log.Warn("onprem: the replica holding the agent's session cannot be reached", "resource", resourceID, "replica", holder, "err", err)
		return ErrAgentDisconnected
	}
	var e struct {
		Error struct{ Code, Message string } `json:"error"`
	}
	if res.Body != nil {
		_ = json.NewDecoder(io.LimitReader(res.Body, 1024)).Decode(&e)
	}
	switch code := e.Error.Code; {
	case code == "ON_PREM_AGENT_DISCONNECTED":
		return ErrAgentDisconnected
	case streamCodes[code]:
		return &StreamError{Code: code, Message: e.Error.Message}
	}
	h.log.Warn("onprem: a relayed stream was refused", "resource", resourceID, "replica", holder, "status", res.StatusCode, "code", e.Error.Code)
	return fmt.Errorf("onprem: the replica holding the agent's session refused the stream (%d %s)", res.StatusCode, e.Error.Code)
}

// ServeRelay serves RelayPath: a stream another replica asks for over a
// session this hub holds.
func (h *Hub) ServeRelay(w http.ResponseWriter, r *http.Request) {
	if h.o.Relay == nil {
		writeError(w, http.StatusNotFound, "NOT_FOUND", "this replica relays no streams (no --replica-url)")
		return
	}
	t, ok := h.openTicket(r)
	if !ok {
		writeError(w, http.StatusUnauthorized, "UNAUTHENTICATED", "no valid relay ticket")
		return
	}
	s := h.session(t.Resource)
	if s == nil {
		writeError(w, http.StatusServiceUnavailable, "ON_PREM_AGENT_DISCONNECTED", ErrAgentDisconnected.Error())
		return
	}
	info := t.Info
	info.Via = t.From
	st, err := h.dialDest(r.Context(), s, s.agent.Target, info)
	var se *StreamError
	switch {
	case errors.As(err, &se):
		writeError(w, http.StatusBadGateway, se.Code, se.Message)
		return
	case err != nil:
		writeError(w, http.StatusServiceUnavailable, "ON_PREM_AGENT_DISCONNECTED", ErrAgentDisconnected.Error())
		return
	}
	defer st.Close()
	ws, err := websocket.Accept(w, r, &websocket.AcceptOptions{InsecureSkipVerify: true})
	if err != nil {
		return
	}
	sess, err := yamux.Server(websocket.NetConn(context.WithoutCancel(r.Context()), ws, websocket.MessageBinary), muxConfig(h.o.Heartbeat, false))
	if err != nil {
		_ = ws.CloseNow()
		return
	}
	defer sess.Close()
	actx, cancel := context.WithTimeout(r.Context(), h.o.DialTimeout)
	ys, err := sess.AcceptStreamWithContext(actx)
	cancel()
	if err != nil {
		return
	}
	pipe(halfCloser{ys}, st)
}

// openTicket opens and checks r's ticket: sealed by a replica, not
// expired, and not used before.
func (h *Hub) openTicket(r *http.Request) (ticket, bool) {
	var t ticket
	sealed, err := base64.RawURLEncoding.DecodeString(r.Header.Get(RelayHeader))
	if err != nil || len(sealed) == 0 {
		return t, false
	}
	b, err := h.o.Relay.Open(r.Context(), sealed)
	if err != nil || json.Unmarshal(b, &t) != nil || t.Nonce == "" {
		return t, false
	}
	exp := time.Unix(t.Expires, 0)
	now := time.Now()
	if now.After(exp) {
		return t, false
	}
	rs := &h.relay
	rs.mu.Lock()
	defer rs.mu.Unlock()
	for n, e := range rs.used {
		if now.After(e) {
			delete(rs.used, n)
		}
	}
	if _, seen := rs.used[t.Nonce]; seen {
		return t, false
	}
	if rs.used == nil {
		rs.used = map[string]time.Time{}
	}
	rs.used[t.Nonce] = exp
	return t, true
}

// streamCodes are the codes of a StreamError.
var streamCodes = map[string]bool{StreamForbidden: true, StreamRefused: true, StreamTimeout: true,
	StreamUnreachable: true, StreamProtocol: true}

// wsURL is u with an http(s) scheme turned into ws(s).
func wsURL(u string) string {
	u = strings.TrimRight(u, "/")
	if rest, ok := strings.CutPrefix(u, "https://"); ok {
		return "wss://" + rest
	}
	if rest, ok := strings.CutPrefix(u, "http://"); ok {
		return "ws://" + rest
	}
	return u
}

func randomNonce() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
