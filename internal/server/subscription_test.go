package server_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/coder/websocket/wsjson"

	"github.com/plugboard/plugboard/internal/server/servertest"
)

type wsMessage struct {
	ID      string          `json:"id,omitempty"`
	Type    string          `json:"type"`
	Payload json.RawMessage `json:"payload,omitempty"`
}

// dialWS opens a graphql-transport-ws connection and sends connection_init
// with token in its payload.
func dialWS(t *testing.T, env *servertest.Env, token string) *websocket.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	url := "ws" + strings.TrimPrefix(env.URL, "http") + "/graphql"
	conn, res, err := websocket.Dial(ctx, url, &websocket.DialOptions{Subprotocols: []string{"graphql-transport-ws"}})
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	if res.Body != nil {
		res.Body.Close()
	}
	t.Cleanup(func() { conn.CloseNow() })
	payload := map[string]any{}
	if token != "" {
		payload["Authorization"] = "Bearer " + token
	}
	init, _ := json.Marshal(payload)
	send(t, conn, wsMessage{Type: "connection_init", Payload: init})
	return conn
}

// subscribe opens an authenticated connection and starts one subscription.
func subscribe(t *testing.T, env *servertest.Env, token, query string, vars map[string]any) *websocket.Conn {
	t.Helper()
	conn := dialWS(t, env, token)
	m, err := receive(conn)
	if err != nil || m.Type != "connection_ack" {
		t.Fatalf("expected connection_ack, got %+v %v", m, err)
	}
	if token != "" && strings.Contains(string(m.Payload), token) {
		t.Fatalf("connection_ack echoes the token back: %s", m.Payload)
	}
	p, _ := json.Marshal(map[string]any{"query": query, "variables": vars})
	send(t, conn, wsMessage{ID: "1", Type: "subscribe", Payload: p})
	return conn
}

func send(t *testing.T, c *websocket.Conn, m wsMessage) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := wsjson.Write(ctx, c, m); err != nil {
		t.Fatal(err)
	}
}

func receive(c *websocket.Conn) (wsMessage, error) {
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		var m wsMessage
		err := wsjson.Read(ctx, c, &m)
		cancel()
		if err != nil {
			return m, err
		}
		if m.Type == "ping" || m.Type == "pong" || m.Type == "ka" {
			continue
		}
		return m, nil
	}
}

func TestCredentialStatusSubscription(t *testing.T) {
	servertest.EachDB(t, servertest.Config{Plugins: []string{"asana"}}, func(t *testing.T, env *servertest.Env) {
		connID, custID := createAsanaConnection(t, env)
		conn := subscribe(t, env, env.AdminToken,
			`subscription { credentialStatusChanged { from to detail credential { id status customer { externalID } } } }`, nil)
		// Give the server a moment to register the subscription: poll until
		// it has, instead of sleeping for a fixed time.
		deadline := time.Now().Add(5 * time.Second)
		for env.App.Events.Subscribers() == 0 && time.Now().Before(deadline) {
			time.Sleep(10 * time.Millisecond)
		}
		r := env.Do(t, saveMutation, map[string]any{"in": map[string]any{
			"connectionID": connID, "customerID": custID,
			"values": []any{map[string]any{"key": "apiKey", "value": canary}},
		}})
		mustOK(t, r)
		m, err := receive(conn)
		if err != nil || m.Type != "next" {
			t.Fatalf("expected next, got %s %s", m.Type, m.Payload)
		}
		var payload struct {
			Data struct {
				Ev struct {
					From, To   string
					Credential struct {
						ID       string
						Status   string
						Customer struct{ ExternalID string }
					}
				} `json:"credentialStatusChanged"`
			}
		}
		if err := json.Unmarshal(m.Payload, &payload); err != nil {
			t.Fatal(err)
		}
		ev := payload.Data.Ev
		if ev.To != "ACTIVE" || ev.Credential.ID != servertest.Str(r.Data, "saveCredential.credential.id") || ev.Credential.Customer.ExternalID != "acme" {
			t.Fatalf("event: %s", m.Payload)
		}
		if strings.Contains(string(m.Payload), "CANARY") {
			t.Fatal("the event carries the secret")
		}
	})
}

func TestSubscriptionNeedsAToken(t *testing.T) {
	env := servertest.Start(t, servertest.Config{Plugins: []string{"asana"}})
	// A wrong token: the connection is refused.
	conn := dialWS(t, env, "pb_admin_wrong")
	if m, err := receive(conn); err == nil && m.Type == "connection_ack" {
		t.Fatalf("a wrong token was acknowledged")
	}
	// No token: acknowledged, but the subscription itself is refused.
	conn = dialWS(t, env, "")
	if m, err := receive(conn); err != nil || m.Type != "connection_ack" {
		t.Fatalf("expected connection_ack, got %+v %v", m, err)
	}
	p, _ := json.Marshal(map[string]any{"query": `subscription { credentialStatusChanged { to } }`})
	send(t, conn, wsMessage{ID: "1", Type: "subscribe", Payload: p})
	m, err := receive(conn)
	if err != nil || (m.Type != "error" && m.Type != "next") || !strings.Contains(string(m.Payload), "UNAUTHENTICATED") {
		t.Fatalf("unauthenticated subscription: %+v %v", m, err)
	}
}
