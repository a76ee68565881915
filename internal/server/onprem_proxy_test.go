package server_test

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/plugboard/plugboard/internal/onprem/onpremtest"
	"github.com/plugboard/plugboard/internal/server/servertest"
)

// TestOnPremProxy: an internal HTTP API listening inside a network
// namespace plugboard cannot reach, a `plugboard agent` process in the
// namespace, and a customer's credential of an HTTP type bound to the
// resource: a call through the credential proxy reaches the API through
// the tunnel with the credential injected and the Host the customer's
// network knows; the call and its stream are audited; with the agent
// killed the proxy answers ON_PREM_AGENT_DISCONNECTED.
func TestOnPremProxy(t *testing.T) {
	const canary = "onprem-proxy-CANARY-91b2"
	p := onpremtest.PrivateNamespace(t)
	api := newUpstreamOn(t, p.Listen(t), nil)
	bin := onpremtest.AgentBinary(t)
	env := servertest.Start(t, servertest.Config{Plugins: []string{"proxied"}, Listener: p.ListenHost(t), OnPremHeartbeat: time.Second})
	target := api.Listener.Addr().String()
	if c, err := (&http.Client{Timeout: time.Second}).Get("http://" + target); err == nil {
		c.Body.Close()
		t.Fatalf("the internal API must be private, the host reached %s", target)
	}

	r := env.Do(t, `mutation { createConnection(input: {typeKey: "proxied.onprem", stableKey: "internal", name: "Internal API", scope: CUSTOMER}) { connection { id } } }`, nil)
	mustOK(t, r)
	connID := servertest.Str(r.Data, "createConnection.connection.id")
	acme := createOnPremCustomer(t, env, "acme")
	resID, token := createOnPrem(t, env, acme, "acme internal API", target)
	a := startAgent(t, p, bin, env.URL, token)
	waitOnPrem(t, env, acme, resID, "CONNECTED")
	r = env.Do(t, saveMutation, map[string]any{"in": map[string]any{"connectionID": connID, "customerID": acme,
		"onPremResourceID": resID, "values": []any{map[string]any{"key": "apiKey", "value": canary}}}})
	mustOK(t, r)
	credID := servertest.Str(r.Data, "saveCredential.credential.id")

	rt := onPremRuntimeToken(t, env)
	got := callProxy(t, nil, env, rt, http.MethodGet, credID, "/items/7?full=1", nil, nil)
	if got.status != http.StatusOK || got.header.Get("X-Upstream") != "yes" {
		t.Fatalf("a proxied call through the tunnel: %d %s\nagent: %s", got.status, got.body, a.Out)
	}
	req, _ := api.last(t)
	if req.Header.Get("Authorization") != "Bearer "+canary || req.URL.Path != "/api/items/7" || req.URL.RawQuery != "full=1" || req.Host != target {
		t.Fatalf("the internal API saw %s %s?%s Host %s, Authorization set: %v", req.Method, req.URL.Path, req.URL.RawQuery, req.Host,
			req.Header.Get("Authorization") != "")
	}
	if strings.Contains(got.body, canary) {
		t.Fatal("the canary reached the answer")
	}
	proxyStreamAudited(t, env, credID, canary)

	a.Kill()
	waitOnPrem(t, env, acme, resID, "DISCONNECTED")
	got = callProxy(t, nil, env, rt, http.MethodGet, credID, "/items/7", nil, nil)
	if got.status != http.StatusServiceUnavailable || got.errorCode() != "ON_PREM_AGENT_DISCONNECTED" {
		t.Fatalf("a proxied call without the agent: %d %s", got.status, got.body)
	}
	if n := api.count(); n != 1 {
		t.Fatalf("the internal API got %d calls, want 1", n)
	}
	if strings.Contains(env.Logs.String(), canary) {
		t.Fatal("the canary reached the server's log")
	}
}

// proxyStreamAudited: the proxied call has its credential.proxied row and
// its tunnel stream an onprem.stream row of the credential, with the
// RUNTIME token as actor; neither holds the secret.
func proxyStreamAudited(t *testing.T, env *servertest.Env, credID, secret string) {
	t.Helper()
	// The stream's row is written when the stream ends, after the answer.
	deadline := time.Now().Add(5 * time.Second)
	for {
		rows, err := env.App.Store.DB.QueryContext(context.Background(),
			`SELECT action, actor, message FROM audit_events WHERE action IN ('credential.proxied', 'onprem.stream') ORDER BY id`)
		if err != nil {
			t.Fatal(err)
		}
		seen := map[string]string{}
		for rows.Next() {
			var action, actor, msg string
			if err := rows.Scan(&action, &actor, &msg); err != nil {
				t.Fatal(err)
			}
			if strings.Contains(msg, secret) {
				t.Fatalf("an audit row holds the secret: %s", msg)
			}
			seen[action] = actor + " " + msg
		}
		rows.Close()
		stream, call := seen["onprem.stream"], seen["credential.proxied"]
		if strings.Contains(stream, "proxy stream") && strings.HasPrefix(stream, "token:") && strings.Contains(call, "GET ") {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("audit rows: %v", seen)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
