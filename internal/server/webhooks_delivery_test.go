package server_test

import (
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/plugboard/plugboard/internal/server/servertest"
)

// clock is a server clock the test moves forward.
type clock struct{ offset atomic.Int64 }

func (c *clock) now() time.Time          { return time.Now().Add(time.Duration(c.offset.Load())) }
func (c *clock) advance(d time.Duration) { c.offset.Add(int64(d)) }

const deliveriesQuery = `query($e: ID!) { webhookDeliveries(endpointID: $e) { id status attempts lastStatusCode lastDurationMs lastError nextAttemptAt event { type messageID } } }`

// TestWebhookRetriesRedeliveryAndRotation: a receiver answering 500 twice
// gets the event a third time, with the same webhook-id, and the delivery
// shows three attempts; redeliverWebhook sends it again; after
// rotateWebhookSecret both the old and the new secret verify a delivery
// for 24 h, then only the new one.
func TestWebhookRetriesRedeliveryAndRotation(t *testing.T) {
	clk := &clock{}
	cfg := servertest.Config{Plugins: []string{"asana"}, WebhookWorker: true, Now: clk.now}
	servertest.EachDB(t, cfg, func(t *testing.T, env *servertest.Env) {
		rc := newReceiver(t, func(n int) int {
			if n <= 2 {
				return http.StatusInternalServerError
			}
			return http.StatusOK
		})
		endpoint, secret := registerEndpoint(t, env, rc.srv.URL, "credential.created")
		conn, customer := createAsanaConnection(t, env)
		saveAsanaFor(t, env, conn, customer, canary)

		got := rc.waitFor(t, "three attempts", func(g []received) bool { return len(g) >= 3 })
		if got[0].id != got[1].id || got[1].id != got[2].id {
			t.Fatalf("retries changed the webhook-id: %q %q %q", got[0].id, got[1].id, got[2].id)
		}
		d := waitDelivery(t, env, endpoint, func(d map[string]any) bool { return d["status"] == "SUCCEEDED" })
		if d["attempts"].(float64) != 3 || d["lastStatusCode"].(float64) != 200 || d["nextAttemptAt"] != nil {
			t.Fatalf("the delivery after two 500s and a 200: %v", d)
		}
		if m := metricsText(t, env); !strings.Contains(m, `plugboard_webhook_deliveries_total{outcome="retrying"} 2`) ||
			!strings.Contains(m, `plugboard_webhook_deliveries_total{outcome="succeeded"} 1`) {
			t.Fatalf("delivery counters:\n%s", grepLines(m, "plugboard_webhook"))
		}

		r := env.Do(t, `mutation($d: ID!) { redeliverWebhook(deliveryID: $d) { delivery { id status } userErrors { message } } }`, map[string]any{"d": d["id"]})
		mustOK(t, r)
		got = rc.waitFor(t, "the redelivery", func(g []received) bool { return len(g) >= 4 })
		if got[3].id != got[0].id || !signedBy(got[3], secret) {
			t.Fatalf("the redelivery: id %q (first %q)", got[3].id, got[0].id)
		}

		r = env.Do(t, `mutation($e: ID!) { rotateWebhookSecret(id: $e) { endpoint { previousExpiresAt } secret userErrors { message } } }`, map[string]any{"e": endpoint})
		mustOK(t, r)
		newSecret := servertest.Str(r.Data, "rotateWebhookSecret.secret")
		if !strings.HasPrefix(newSecret, "whsec_") || newSecret == secret || servertest.Get(r.Data, "rotateWebhookSecret.endpoint.previousExpiresAt") == nil {
			t.Fatalf("rotateWebhookSecret: %s", r.Raw)
		}
		_, other := createCustomer(t, env, "globex")
		saveAsanaFor(t, env, conn, other, canary)
		got = rc.waitFor(t, "a delivery after the rotation", func(g []received) bool { return len(g) >= 5 })
		if !signedBy(got[4], secret) || !signedBy(got[4], newSecret) || len(strings.Fields(got[4].signature)) != 2 {
			t.Fatalf("during the overlap both secrets must verify: %q", got[4].signature)
		}
		clk.advance(25 * time.Hour)
		_, third := createCustomer(t, env, "initech")
		saveAsanaFor(t, env, conn, third, canary)
		got = rc.waitFor(t, "a delivery after the overlap", func(g []received) bool { return len(g) >= 6 })
		if signedBy(got[5], secret) || !signedBy(got[5], newSecret) {
			t.Fatalf("after 24 h only the new secret verifies: %q", got[5].signature)
		}
		if strings.Contains(env.Logs.String(), secret) || strings.Contains(env.Logs.String(), newSecret) {
			t.Fatal("a signing secret is in the log")
		}
	})
}

// TestWebhookEndpointDisabledAfterADayOfFailures: an endpoint that answers
// 500 to every attempt for 24 h (the server's clock moved) is DISABLED with
// a reason the admin reads, its delivery FAILED; setting it ACTIVE again
// delivers what comes next.
func TestWebhookEndpointDisabledAfterADayOfFailures(t *testing.T) {
	clk := &clock{}
	var ok atomic.Bool
	cfg := servertest.Config{Plugins: []string{"asana"}, WebhookWorker: true, Now: clk.now}
	servertest.EachDB(t, cfg, func(t *testing.T, env *servertest.Env) {
		ok.Store(false)
		rc := newReceiver(t, func(int) int {
			if ok.Load() {
				return http.StatusOK
			}
			return http.StatusInternalServerError
		})
		endpoint, _ := registerEndpoint(t, env, rc.srv.URL, "credential.created")
		conn, customer := createAsanaConnection(t, env)
		saveAsanaFor(t, env, conn, customer, canary)
		rc.waitFor(t, "a failed attempt", func(g []received) bool { return len(g) >= 1 })
		waitEndpoint(t, env, func(e map[string]any) bool { return e["failingSince"] != nil })
		clk.advance(25 * time.Hour)
		ep := waitEndpoint(t, env, func(e map[string]any) bool { return e["status"] == "DISABLED" })
		if reason, _ := ep["disabledReason"].(string); !strings.Contains(reason, "failed since") || !strings.Contains(reason, "500") {
			t.Fatalf("the reason an admin reads: %q", reason)
		}
		d := waitDelivery(t, env, endpoint, func(d map[string]any) bool { return d["status"] == "FAILED" })
		if d["lastError"] != "the endpoint answered 500" {
			t.Fatalf("the failed delivery: %v", d)
		}

		ok.Store(true)
		r := env.Do(t, `mutation($e: ID!) { updateWebhookEndpoint(id: $e, input: {status: ACTIVE}) { endpoint { status disabledReason failingSince } userErrors { message } } }`, map[string]any{"e": endpoint})
		mustOK(t, r)
		if servertest.Str(r.Data, "updateWebhookEndpoint.endpoint.status") != "ACTIVE" || servertest.Str(r.Data, "updateWebhookEndpoint.endpoint.disabledReason") != "" {
			t.Fatalf("re-enabled: %s", r.Raw)
		}
		n := len(rc.all())
		_, other := createCustomer(t, env, "globex")
		saveAsanaFor(t, env, conn, other, canary)
		rc.waitFor(t, "a delivery once re-enabled", func(g []received) bool { return len(g) > n })
	})
}

// TestWebhookEndpointInputErrors: bad URLs and event types come back as
// userErrors with VALIDATION_FAILED, and nothing is stored; a customer's
// token may not manage endpoints.
func TestWebhookEndpointInputErrors(t *testing.T) {
	env := servertest.Start(t, servertest.Config{Plugins: []string{"asana"}})
	events := []string{"credential.created"}
	for _, tc := range []struct {
		url    string
		events []string
		field  string
		code   string
	}{
		{"", events, "url", "REQUIRED"},
		{"ftp://127.0.0.1/x", events, "url", "INVALID_VALUE"},
		{"/relative", events, "url", "INVALID_VALUE"},
		{"http://169.254.169.254/latest/meta-data", events, "url", "INVALID_VALUE"},
		{"http://[fe80::1]/hook", events, "url", "INVALID_VALUE"},
		{"http://user:pw@127.0.0.1/hook", events, "url", "INVALID_VALUE"},
		{"http://no-such-host.invalid/hook", events, "url", "INVALID_VALUE"},
		{"http://127.0.0.1/" + strings.Repeat("a", 2100), events, "url", "TOO_LONG"},
		{"http://127.0.0.1/hook", nil, "events", "REQUIRED"},
		{"http://127.0.0.1/hook", []string{"credential.nope"}, "events", "INVALID_VALUE"},
	} {
		ev := []any{}
		for _, e := range tc.events {
			ev = append(ev, e)
		}
		r := env.Do(t, createEndpoint, map[string]any{"in": map[string]any{"url": tc.url, "events": ev}})
		if r.Code() != "VALIDATION_FAILED" || servertest.Str(r.Data, "createWebhookEndpoint.userErrors.0.field.0") != tc.field ||
			servertest.Str(r.Data, "createWebhookEndpoint.userErrors.0.code") != tc.code || servertest.Str(r.Data, "createWebhookEndpoint.secret") != "" {
			t.Errorf("url %.60q events %v: want %s on %s, got %s", tc.url, tc.events, tc.code, tc.field, r.Raw)
		}
	}
	r := env.Do(t, `{ webhookEndpoints { id } }`, nil)
	mustOK(t, r)
	if got := servertest.Get(r.Data, "webhookEndpoints").([]any); len(got) != 0 {
		t.Fatalf("refused endpoints were stored: %s", r.Raw)
	}
	r = env.DoAs(t, runtimeToken(t, env), createEndpoint, map[string]any{"in": map[string]any{"url": "http://127.0.0.1/hook", "events": []any{"credential.created"}}})
	if r.Code() != "FORBIDDEN" {
		t.Fatalf("a runtime token created an endpoint: %s", r.Raw)
	}
}

func waitDelivery(t *testing.T, env *servertest.Env, endpoint string, ok func(map[string]any) bool) map[string]any {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		r := env.Do(t, deliveriesQuery, map[string]any{"e": endpoint})
		mustOK(t, r)
		ds, _ := servertest.Get(r.Data, "webhookDeliveries").([]any)
		if len(ds) > 0 {
			// Newest first: the first delivery made is the last.
			if d := ds[len(ds)-1].(map[string]any); ok(d) {
				return d
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("waiting for a delivery: %s", r.Raw)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func waitEndpoint(t *testing.T, env *servertest.Env, ok func(map[string]any) bool) map[string]any {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		r := env.Do(t, `{ webhookEndpoints { id status disabledReason failingSince } }`, nil)
		mustOK(t, r)
		if eps, _ := servertest.Get(r.Data, "webhookEndpoints").([]any); len(eps) > 0 && ok(eps[0].(map[string]any)) {
			return eps[0].(map[string]any)
		}
		if time.Now().After(deadline) {
			t.Fatalf("waiting for the endpoint: %s", r.Raw)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func createCustomer(t *testing.T, env *servertest.Env, externalID string) (*servertest.Response, string) {
	t.Helper()
	r := env.Do(t, `mutation($x: String!) { createCustomer(input: {externalID: $x, name: $x}) { customer { id } userErrors { message } } }`, map[string]any{"x": externalID})
	mustOK(t, r)
	return r, servertest.Str(r.Data, "createCustomer.customer.id")
}

func metricsText(t *testing.T, env *servertest.Env) string {
	t.Helper()
	res, err := http.Get(env.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return string(b)
}

func grepLines(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
