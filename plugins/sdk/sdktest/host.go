package sdktest

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"sync"
	"testing"

	"github.com/plugboard/plugboard/plugins/sdk"
)

// Host stands in for the plugboard host in a test of a type that tests
// through the host (sdk.ConnectionType.TestThroughHost): it sends the
// plugin's requests on with the credential injected, as the host does, so a
// plugin's Test is checked without ever being handed a secret.
//
//	srv := sdktest.Server(t, sdktest.Expect{Path: "/me", Header: map[string]string{"Authorization": "Bearer " + sdktest.Canary}}, ok)
//	host := &sdktest.Host{Base: srv.URL, Inject: func(r *http.Request) { r.Header.Set("Authorization", "Bearer "+sdktest.Canary) }}
//	resp, err := host.Test(t, sdktest.InProcess(t, myplugin.New()), "myplugin.apiKey", map[string]string{"baseUrl": srv.URL, "apiKey": sdktest.Canary})
//
// Through InProcess or Launch, the requests cross the same gRPC broker
// service as with the real host.
type Host struct {
	// Base is the type's base URL for the credential: a relative request
	// URL is resolved against it, and a request to any other host is
	// refused, as the host refuses a host the type does not declare.
	Base string
	// Inject adds the credential to each request, as the host does from
	// the type's declaration.
	Inject func(*http.Request)
	// Transport sends the requests on; nil means http.DefaultTransport.
	Transport http.RoundTripper

	mu       sync.Mutex
	requests []*http.Request
}

// Client returns the client to pass as sdk.TestRequest.HTTP. Like the
// host's, it never follows a redirect.
func (h *Host) Client() *http.Client {
	return &http.Client{
		Transport:     hostRoundTripper{h},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// Requests returns the requests the host sent on, with the credential
// injected, oldest first.
func (h *Host) Requests() []*http.Request {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]*http.Request(nil), h.requests...)
}

// Test asks p to test values of the type typeKey through the host: the
// values of the type's secret inputs are left out (Withheld) and the token
// is nil, as the host sends them; the plugin's requests go through h.
func (h *Host) Test(t testing.TB, p sdk.Provider, typeKey string, values map[string]string) (*sdk.TestResponse, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), callTimeout)
	defer cancel()
	d, err := p.Describe(ctx)
	if err != nil {
		t.Fatalf("sdktest.Host: Describe: %v", err)
	}
	ct := d.Type(typeKey)
	if ct == nil {
		t.Fatalf("sdktest.Host: the plugin declares no type %q", typeKey)
	}
	if !ct.TestThroughHost {
		t.Fatalf("sdktest.Host: type %q does not set TestThroughHost; the host would send it the values", typeKey)
	}
	return p.Test(ctx, &sdk.TestRequest{TypeKey: typeKey, Values: Withheld(ct, values), HTTP: h.Client()})
}

// Withheld returns values without those of ct's secret inputs: what the
// host sends the Validate and Test of a type that tests through the host.
func Withheld(ct *sdk.ConnectionType, values map[string]string) map[string]string {
	out := make(map[string]string, len(values))
	for k, v := range values {
		if in := ct.Input(k); in == nil || !in.Secret {
			out[k] = v
		}
	}
	return out
}

type hostRoundTripper struct{ h *Host }

func (rt hostRoundTripper) RoundTrip(req *http.Request) (*http.Response, error) {
	base, err := url.Parse(rt.h.Base)
	if err != nil || base.Host == "" {
		return nil, fmt.Errorf("sdktest.Host: Base %q is not an absolute URL", rt.h.Base)
	}
	out := req.Clone(req.Context())
	out.URL = base.ResolveReference(req.URL)
	if out.URL.Host != base.Host || out.URL.Scheme != base.Scheme {
		return nil, fmt.Errorf("sdktest.Host: refused a request to %s://%s: the type's base URL is %s://%s", out.URL.Scheme, out.URL.Host, base.Scheme, base.Host)
	}
	out.Host = ""
	if rt.h.Inject != nil {
		rt.h.Inject(out)
	}
	rt.h.mu.Lock()
	rt.h.requests = append(rt.h.requests, out)
	rt.h.mu.Unlock()
	tr := rt.h.Transport
	if tr == nil {
		tr = http.DefaultTransport
	}
	return tr.RoundTrip(out)
}

// refusingHost is the host of Check's Test with no values: it records the
// requests a through-host Test sends and sends none of them.
type refusingHost struct {
	mu    sync.Mutex
	calls []string
}

func (h *refusingHost) client() *http.Client {
	return &http.Client{Transport: h}
}

func (h *refusingHost) RoundTrip(req *http.Request) (*http.Response, error) {
	h.mu.Lock()
	h.calls = append(h.calls, req.URL.Host+" through the host")
	h.mu.Unlock()
	return nil, fmt.Errorf("sdktest: a Test with no values must not call out")
}

func (h *refusingHost) list() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]string(nil), h.calls...)
}
