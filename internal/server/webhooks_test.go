package server_test

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/plugboard/plugboard/internal/server/servertest"
)

// received is one webhook POST as a receiver saw it.
type received struct {
	id, timestamp, signature string
	body                     []byte
}

// event is the body plugboard sends.
type event struct {
	Type      string
	Timestamp time.Time
	Data      map[string]string
}

func (r received) event(t *testing.T) event {
	t.Helper()
	var e event
	if err := json.Unmarshal(r.body, &e); err != nil {
		t.Fatalf("webhook body %s: %v", r.body, err)
	}
	return e
}

// receiver is a local webhook endpoint that records every POST; answer
// decides the status of each (200 when nil).
type receiver struct {
	srv    *httptest.Server
	mu     sync.Mutex
	got    []received
	answer func(n int) int
}

func newReceiver(t *testing.T, answer func(n int) int) *receiver {
	rc := &receiver{answer: answer}
	rc.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		rc.mu.Lock()
		rc.got = append(rc.got, received{
			id: r.Header.Get("webhook-id"), timestamp: r.Header.Get("webhook-timestamp"),
			signature: r.Header.Get("webhook-signature"), body: b,
		})
		n := len(rc.got)
		rc.mu.Unlock()
		code := http.StatusOK
		if rc.answer != nil {
			code = rc.answer(n)
		}
		w.WriteHeader(code)
	}))
	t.Cleanup(rc.srv.Close)
	return rc
}

func (rc *receiver) all() []received {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return append([]received(nil), rc.got...)
}

// waitFor waits until ok holds of what the receiver got.
func (rc *receiver) waitFor(t *testing.T, what string, ok func([]received) bool) []received {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		got := rc.all()
		if ok(got) {
			return got
		}
		if time.Now().After(deadline) {
			t.Fatalf("waiting for %s; the receiver got %d requests", what, len(got))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// signedBy is the receiver's own check of the Standard Webhooks signature,
// written here from the specification and not with the library plugboard
// signs with: HMAC-SHA256 over "<webhook-id>.<webhook-timestamp>.<body>"
// with the base64 key after "whsec_", sent as "v1,<base64>", one of the
// space-separated signatures.
func signedBy(r received, secret string) bool {
	key, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(secret, "whsec_"))
	if err != nil || len(key) == 0 {
		return false
	}
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte(r.id + "." + r.timestamp + "."))
	mac.Write(r.body)
	want := "v1," + base64.StdEncoding.EncodeToString(mac.Sum(nil))
	for _, s := range strings.Fields(r.signature) {
		if hmac.Equal([]byte(s), []byte(want)) {
			return true
		}
	}
	return false
}

const createEndpoint = `mutation($in: CreateWebhookEndpointInput!) { createWebhookEndpoint(input: $in) {
	endpoint { id url events status description } secret userErrors { field code message } } }`

// registerEndpoint registers url for events and returns its id and secret.
func registerEndpoint(t *testing.T, env *servertest.Env, url string, events ...string) (id, secret string) {
	t.Helper()
	r := env.Do(t, createEndpoint, map[string]any{"in": map[string]any{"url": url, "events": events, "description": "test"}})
	mustOK(t, r)
	id, secret = servertest.Str(r.Data, "createWebhookEndpoint.endpoint.id"), servertest.Str(r.Data, "createWebhookEndpoint.secret")
	if id == "" || !strings.HasPrefix(secret, "whsec_") {
		t.Fatalf("createWebhookEndpoint: %s", r.Raw)
	}
	return id, secret
}

// ofType are the received events of type typ.
func ofType(t *testing.T, got []received, typ string) []received {
	var out []received
	for _, r := range got {
		if r.event(t).Type == typ {
			out = append(out, r)
		}
	}
	return out
}

// saveAsanaFor saves an Asana API key of the customer on conn.
func saveAsanaFor(t *testing.T, env *servertest.Env, conn, customer, value string) string {
	t.Helper()
	r := env.Do(t, saveMutation, map[string]any{"in": map[string]any{"connectionID": conn, "customerID": customer,
		"values": []any{map[string]any{"key": "apiKey", "value": value}}}})
	mustOK(t, r)
	if ue := servertest.Get(r.Data, "saveCredential.userErrors"); ue != nil && len(ue.([]any)) > 0 {
		t.Fatalf("saveCredential: %s", r.Raw)
	}
	return servertest.Str(r.Data, "saveCredential.credential.id")
}
