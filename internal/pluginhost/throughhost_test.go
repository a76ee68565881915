//go:build unix

package pluginhost

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/plugboard/plugboard/plugins/sdk"
)

// injecting is the transport a caller of TestThroughHost passes: it sets
// the credential and sends the request on.
type injecting struct{ key string }

func (t injecting) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set("Authorization", "Bearer "+t.key)
	return http.DefaultTransport.RoundTrip(r)
}

// The host knows which types test through the host from their plugins'
// descriptions; such a type's Test goes out through the caller's transport,
// and a plain Test of it sends no secret and gets no way out.
func TestThroughHostUsesTheCallersTransport(t *testing.T) {
	const key = "2/1200000000000000/1200000000000001:canary0123456789abcdef"
	var calls atomic.Int64
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		if r.URL.Path != "/users/me" || r.Header.Get("Authorization") != "Bearer "+key {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		_, _ = w.Write([]byte(`{"data":{"name":"Ada Lovelace"}}`))
	}))
	defer upstream.Close()
	dir := pluginDir(t, "asana", "faulty")
	mustPin(t, dir)
	h := newTestHost(t, dir, nil)
	h.start(t)

	if !h.TestsThroughHost("asana.apiKey") || h.TestsThroughHost(echoType) || h.TestsThroughHost("nope") {
		t.Fatalf("TestsThroughHost: asana %v, faulty %v, unknown %v", h.TestsThroughHost("asana.apiKey"), h.TestsThroughHost(echoType), h.TestsThroughHost("nope"))
	}
	values := map[string]string{"apiKey": key, "baseUrl": upstream.URL}
	resp, err := h.TestThroughHost(context.Background(), "asana.apiKey", values, nil, injecting{key})
	if err != nil || !resp.OK || resp.Message != "Connected to Asana as Ada Lovelace." {
		t.Fatalf("TestThroughHost = %+v, %v", resp, err)
	}
	if calls.Load() != 1 {
		t.Fatalf("the upstream got %d calls, want 1", calls.Load())
	}

	// The plain Test of such a type: no secret is sent, nothing goes out.
	resp, err = h.Test(context.Background(), "asana.apiKey", values, &sdk.Token{AccessToken: key})
	if err != nil || resp.OK || !strings.Contains(resp.Message, "without a way out") || strings.Contains(resp.Message, key) {
		t.Errorf("Test of a through-host type = %+v, %v; want not OK without a way out", resp, err)
	}
	if calls.Load() != 1 {
		t.Errorf("the plain Test reached the upstream")
	}
	// A type whose plugin wants the values is not tested through the host.
	if _, err := h.TestThroughHost(context.Background(), echoType, map[string]string{"mode": "ok"}, nil, injecting{key}); !errors.Is(err, ErrNotThroughHost) {
		t.Errorf("TestThroughHost of faulty.echo: %v, want ErrNotThroughHost", err)
	}
	if strings.Contains(h.logs.String(), key) {
		t.Error("the host log holds the key")
	}
}

// BenchmarkTestThroughHost is the asana plugin's live test through the
// host over go-plugin with mTLS: a broker server per call, the plugin's
// dial back, one HostHTTP round trip to a local upstream. BenchmarkPing
// and BenchmarkValidate are the floor of a plugin call.
func BenchmarkTestThroughHost(b *testing.B) {
	const key = "2/1200000000000000/1200000000000001:bench0123456789abcdef"
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = w.Write([]byte(`{"data":{"name":"Ada"}}`))
	}))
	defer upstream.Close()
	h := benchHost(b, "asana")
	values := map[string]string{"apiKey": key, "baseUrl": upstream.URL}
	b.ReportAllocs()
	for b.Loop() {
		resp, err := h.TestThroughHost(context.Background(), "asana.apiKey", values, nil, injecting{key})
		if err != nil || !resp.OK {
			b.Fatalf("%+v, %v", resp, err)
		}
	}
}
