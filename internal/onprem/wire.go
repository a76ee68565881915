package onprem

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"time"

	"github.com/coder/websocket"
	"github.com/hashicorp/yamux"
)

// The wire's constants.
const (
	// ConnectPath is where the hub is mounted.
	ConnectPath = "/agent/v1/connect"
	// VersionHeader carries the agent's version.
	VersionHeader = "Plugboard-Agent-Version"
	// closeReplaced is the websocket close code telling an agent a newer
	// session of its resource replaced it.
	closeReplaced = 4001
	// closeMismatch is the agent's close code for a target other than its pin.
	closeMismatch = 4002
	maxFrame      = 4096
)

// hello is the server's first message: the resource and its target.
type hello struct {
	ResourceID int    `json:"resourceId"`
	Target     string `json:"target"`
}

// ack is the agent's answer to hello.
type ack struct {
	OK bool `json:"ok"`
}

// streamHeader opens every stream: the destination the hub asks for.
type streamHeader struct {
	Dest string `json:"dest"`
}

// streamAnswer is the agent's answer to a stream header.
type streamAnswer struct {
	OK      bool   `json:"ok"`
	Code    string `json:"code,omitempty"`
	Message string `json:"message,omitempty"`
}

// writeFrame writes v as a 2-byte length and its JSON.
func writeFrame(w io.Writer, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	buf := make([]byte, 2+len(b))
	binary.BigEndian.PutUint16(buf, uint16(len(b)))
	copy(buf[2:], b)
	_, err = w.Write(buf)
	return err
}

// readFrame reads one frame written by writeFrame into v.
func readFrame(r io.Reader, v any) error {
	var n [2]byte
	if _, err := io.ReadFull(r, n[:]); err != nil {
		return err
	}
	size := binary.BigEndian.Uint16(n[:])
	if size > maxFrame {
		return fmt.Errorf("onprem: frame of %d bytes over the limit", size)
	}
	b := make([]byte, size)
	if _, err := io.ReadFull(r, b); err != nil {
		return err
	}
	return json.Unmarshal(b, v)
}

// writeJSONMessage sends v as one binary websocket message.
func writeJSONMessage(ctx context.Context, ws *websocket.Conn, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return ws.Write(ctx, websocket.MessageBinary, b)
}

// readJSONMessage reads one websocket message into v.
func readJSONMessage(ctx context.Context, ws *websocket.Conn, v any) error {
	_, b, err := ws.Read(ctx)
	if err != nil {
		return err
	}
	return json.Unmarshal(b, v)
}

// muxConfig is the yamux configuration of both sides.
func muxConfig(heartbeat time.Duration, keepalive bool) *yamux.Config {
	c := yamux.DefaultConfig()
	c.LogOutput = io.Discard
	c.EnableKeepAlive = keepalive
	c.KeepAliveInterval = heartbeat
	c.StreamOpenTimeout = 30 * time.Second
	return c
}
