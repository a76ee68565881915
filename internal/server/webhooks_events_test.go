package server_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/oauth2-proxy/mockoidc"

	"github.com/plugboard/plugboard/internal/auth"
	"github.com/plugboard/plugboard/internal/globalid"
	"github.com/plugboard/plugboard/internal/server/servertest"
)

var allEvents = []string{
	"credential.created", "credential.updated", "credential.authorized", "credential.status_changed",
	"credential.refresh_failed", "credential.recovered", "credential.deleted",
	"instance.configured", "instance.deployed",
}

// TestWebhooksDeliverEveryEventType drives every change a webhook reports
// through the real API (an API key saved and changed, an instance
// configured and deployed, a Slack Connect against mockoidc, a client
// credentials token whose refresh fails and then recovers, a connection
// deleted) and checks that a local receiver gets each event type, signed
// (checked by the test's own HMAC-SHA256), naming ids, type key and
// customer, and no secret.
func TestWebhooksDeliverEveryEventType(t *testing.T) {
	cfg := servertest.Config{Plugins: []string{"asana", "slack", "msgraph"}, WebhookWorker: true}
	servertest.EachDB(t, cfg, func(t *testing.T, env *servertest.Env) {
		rc := newReceiver(t, nil)
		r := env.Do(t, `{ webhookEventTypes }`, nil)
		mustOK(t, r)
		if got := servertest.Get(r.Data, "webhookEventTypes").([]any); len(got) != len(allEvents) {
			t.Fatalf("webhookEventTypes: %s", r.Raw)
		}
		endpoint, secret := registerEndpoint(t, env, rc.srv.URL+"/hooks", allEvents...)

		asanaConn, customer := createAsanaConnection(t, env)
		instance := configureAndDeploy(t, env, asanaConn, customer)
		authorizeSlack(t, env)
		graphConn := failAndRecoverRefresh(t, env)
		mustOK(t, env.Do(t, `mutation($id: ID!) { deleteConnection(id: $id) { deletedID userErrors { message } } }`, map[string]any{"id": graphConn}))

		got := rc.waitFor(t, "every event type", func(got []received) bool {
			seen := map[string]bool{}
			for _, g := range got {
				seen[g.event(t).Type] = true
			}
			return len(seen) == len(allEvents)
		})
		for _, g := range got {
			if !signedBy(g, secret) || !strings.HasPrefix(g.id, "msg_") {
				t.Fatalf("a delivery does not verify: id %q signature %q body %s", g.id, g.signature, g.body)
			}
			for _, leak := range []string{canary, "CANARY", secret} {
				if strings.Contains(string(g.body), leak) {
					t.Fatalf("a webhook body carries a secret: %s", g.body)
				}
			}
		}
		checkEventData(t, got, instance)
		for _, leak := range []string{"CANARY", secret} {
			if strings.Contains(env.Logs.String(), leak) {
				t.Fatalf("the log carries a secret (%q)", leak)
			}
		}
		r = env.Do(t, `query($e: ID!) { webhookDeliveries(endpointID: $e, first: 100) { status attempts lastStatusCode lastDurationMs event { type messageID } } }`,
			map[string]any{"e": endpoint})
		mustOK(t, r)
		if !strings.Contains(r.Raw, `"status":"SUCCEEDED"`) || !strings.Contains(r.Raw, `"lastStatusCode":200`) {
			t.Fatalf("webhookDeliveries: %s", r.Raw)
		}
	})
}

// checkEventData checks what the events name.
func checkEventData(t *testing.T, got []received, instance string) {
	t.Helper()
	for _, typ := range []string{"credential.created", "credential.updated"} {
		found := false
		for _, r := range ofType(t, got, typ) {
			e := r.event(t)
			if e.Data["typeKey"] == "asana.apiKey" {
				found = true
				if e.Data["customerExternalId"] != "acme" || e.Data["credentialId"] == "" || e.Data["connectionId"] == "" {
					t.Fatalf("%s names %v", typ, e.Data)
				}
			}
		}
		if !found {
			t.Fatalf("no %s of the Asana credential", typ)
		}
	}
	for _, typ := range []string{"instance.configured", "instance.deployed"} {
		e := ofType(t, got, typ)[0].event(t)
		if e.Data["instanceId"] != instance || e.Data["customerExternalId"] != "acme" {
			t.Fatalf("%s names %v, want instance %s", typ, e.Data, instance)
		}
	}
	if e := ofType(t, got, "credential.recovered")[0].event(t); e.Data["from"] != "ERROR" || e.Data["to"] != "ACTIVE" || e.Data["typeKey"] != "msgraph.clientCredentials" {
		t.Fatalf("credential.recovered names %v", e.Data)
	}
	changes := map[string]bool{}
	for _, r := range ofType(t, got, "credential.status_changed") {
		e := r.event(t)
		changes[e.Data["from"]+"→"+e.Data["to"]] = true
	}
	if !changes["ACTIVE→ERROR"] || !changes["ERROR→ACTIVE"] {
		t.Fatalf("status changes seen: %v", changes)
	}
	if e := ofType(t, got, "credential.refresh_failed")[0].event(t); e.Data["detail"] == "" {
		t.Fatalf("credential.refresh_failed names %v", e.Data)
	}
	if e := ofType(t, got, "credential.deleted")[0].event(t); e.Data["typeKey"] != "msgraph.clientCredentials" {
		t.Fatalf("credential.deleted names %v", e.Data)
	}
}

// configureAndDeploy makes an integration with an Asana slot and an
// instance of it for the customer, fills the slot (created, then updated)
// and deploys the instance; it returns the instance's id.
func configureAndDeploy(t *testing.T, env *servertest.Env, asanaConn, customer string) string {
	t.Helper()
	r := env.Do(t, `mutation($a: ID!) { createIntegration(input: {key: "sync", name: "Sync", slots: [{key: "asana", label: "Asana", connectionID: $a}]}) {
		integration { id } userErrors { message } } }`, map[string]any{"a": asanaConn})
	mustOK(t, r)
	r = env.Do(t, `mutation($i: ID!, $c: ID!) { createInstance(input: {integrationID: $i, customerID: $c, name: "Acme sync"}) { instance { id configState } userErrors { message } } }`,
		map[string]any{"i": servertest.Str(r.Data, "createIntegration.integration.id"), "c": customer})
	mustOK(t, r)
	inst := servertest.Str(r.Data, "createInstance.instance.id")
	saveAsanaFor(t, env, asanaConn, customer, canary)
	saveAsanaFor(t, env, asanaConn, customer, strings.Replace(canary, "0042", "0043", 1))
	r = env.Do(t, `mutation($i: ID!) { deployInstance(id: $i) { instance { deployedAt configState } userErrors { message } } }`, map[string]any{"i": inst})
	mustOK(t, r)
	if servertest.Str(r.Data, "deployInstance.instance.configState") != "CONFIGURED" {
		t.Fatalf("deploy: %s", r.Raw)
	}
	return inst
}

// authorizeSlack connects an organization Slack credential through
// mockoidc.
func authorizeSlack(t *testing.T, env *servertest.Env) {
	t.Helper()
	m, err := mockoidc.Run()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = m.Shutdown() })
	mustOK(t, env.Do(t, `mutation { updateOrganization(input: {redirectAllowlist: ["https://app.example.com/"]}) { organization { id } } }`, nil))
	r := env.Do(t, `mutation { createConnection(input: {typeKey: "slack.oauth2", stableKey: "slack", name: "Slack", scope: ORGANIZATION_GLOBAL}) { connection { id } } }`, nil)
	mustOK(t, r)
	val := func(k, v string) map[string]any { return map[string]any{"key": k, "value": v} }
	r = env.Do(t, saveMutation, map[string]any{"in": map[string]any{"connectionID": servertest.Str(r.Data, "createConnection.connection.id"), "values": []any{
		val("clientId", m.ClientID), val("clientSecret", m.ClientSecret),
		val("authorizeUrl", m.AuthorizationEndpoint()), val("tokenUrl", m.TokenEndpoint()), val("scopes", "openid"),
	}}})
	mustOK(t, r)
	r = env.Do(t, `mutation($id: ID!) { startOAuth2(input: {credentialID: $id, redirectURL: "https://app.example.com/done"}) { authorizeURL userErrors { message } } }`,
		map[string]any{"id": servertest.Str(r.Data, "saveCredential.credential.id")})
	mustOK(t, r)
	res, _ := get(t, noFollow, servertest.Str(r.Data, "startOAuth2.authorizeURL"), nil)
	res, body := get(t, noFollow, res.Header.Get("Location"), nil)
	back, _ := url.Parse(res.Header.Get("Location"))
	if back == nil || back.Query().Get("status") != "ACTIVE" {
		t.Fatalf("callback %d %s: %s", res.StatusCode, res.Header.Get("Location"), body)
	}
}

// failAndRecoverRefresh saves a client credentials connection whose token
// endpoint then fails (the refresh fails, ERROR) and works again (the next
// refresh recovers it, ACTIVE); it returns the connection's id.
func failAndRecoverRefresh(t *testing.T, env *servertest.Env) string {
	t.Helper()
	var failing atomic.Bool
	idp := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		if failing.Load() {
			w.WriteHeader(http.StatusServiceUnavailable)
			_, _ = w.Write([]byte(`{"error":"temporarily_unavailable"}`))
			return
		}
		_, _ = w.Write([]byte(`{"access_token":"token-CANARY","token_type":"Bearer","expires_in":3600}`))
	}))
	t.Cleanup(idp.Close)
	r := env.Do(t, `mutation { createConnection(input: {typeKey: "msgraph.clientCredentials", stableKey: "graph", name: "Graph", scope: ORGANIZATION_GLOBAL}) { connection { id } } }`, nil)
	mustOK(t, r)
	conn := servertest.Str(r.Data, "createConnection.connection.id")
	val := func(k, v string) map[string]any { return map[string]any{"key": k, "value": v} }
	r = env.Do(t, saveMutation, map[string]any{"in": map[string]any{"connectionID": conn, "values": []any{
		val("tenant", "contoso.onmicrosoft.com"), val("clientId", "11111111-2222-3333-4444-555555555555"),
		val("clientSecret", "s3cret-CANARY"), val("authorityHost", idp.URL),
	}}})
	mustOK(t, r)
	credID := servertest.Str(r.Data, "saveCredential.credential.id")
	id, _ := globalid.Decode(credID)
	rt := runtimeToken(t, env)
	expire := func() {
		past := time.Now().Add(-time.Minute)
		if err := env.App.Store.Client.Credential.UpdateOneID(id).SetTokenExpiresAt(past).SetNextRefreshAt(past).Exec(auth.SystemContext(context.Background())); err != nil {
			t.Fatal(err)
		}
	}
	failing.Store(true)
	expire()
	readRuntime(t, env, rt, credID)
	failing.Store(false)
	expire()
	if code, _ := readRuntime(t, env, rt, credID); code != http.StatusOK {
		t.Fatalf("the runtime read after the token endpoint came back: %d", code)
	}
	r = env.Do(t, `query($id: ID!) { node(id: $id) { ... on Credential { status } } }`, map[string]any{"id": credID})
	if servertest.Str(r.Data, "node.status") != "ACTIVE" {
		t.Fatalf("the credential after a refresh that worked: %s", r.Raw)
	}
	return conn
}
