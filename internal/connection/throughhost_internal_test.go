package connection

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/plugboard/plugboard/ent"
	"github.com/plugboard/plugboard/ent/connectiontype"
	"github.com/plugboard/plugboard/ent/schema/schematype"
	"github.com/plugboard/plugboard/internal/egress"
)

// The transport a plugin's test through the host gets: the credential goes
// only to the declared host, replaces what the plugin set, and a redirect
// comes back unfollowed.
func TestCredentialTransport(t *testing.T) {
	const key = "key-CANARY"
	var elsewhere atomic.Int64
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { elsewhere.Add(1) }))
	defer other.Close()
	declared := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/api/me":
			_, _ = w.Write([]byte(r.Header.Get("Authorization") + "|" + r.Header.Get("Cookie")))
		case "/api/away":
			http.Redirect(w, r, other.URL+"/stolen", http.StatusFound)
		}
	}))
	defer declared.Close()
	ct := &ent.ConnectionType{Key: "acme.apiKey", AuthKind: connectiontype.AuthKindAPI_KEY, Inputs: []schematype.Input{
		{Key: "apiKey", Type: "PASSWORD", Secret: true}, {Key: "baseUrl", Type: "URL"},
	}, HTTP: &schematype.HTTPSpec{BaseURL: "{{#baseUrl}}", AllowedHosts: []string{"api.acme.example"}, Inject: "BEARER", Input: "apiKey"}}
	svc := &Service{Egress: egress.Policy{AllowLoopback: true}}
	ctx := context.Background()
	rt, problem := svc.credentialTransport(ctx, ct, map[string]string{"apiKey": key, "baseUrl": declared.URL + "/api"}, nil)
	if problem != "" {
		t.Fatal(problem)
	}
	client := &http.Client{Transport: rt, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	get := func(rawURL string, header http.Header) (int, string, error) {
		req, _ := http.NewRequest(http.MethodGet, rawURL, nil)
		for k, v := range header {
			req.Header[k] = v
		}
		resp, err := client.Do(req)
		if err != nil {
			return 0, "", err
		}
		defer resp.Body.Close()
		var b strings.Builder
		buf := make([]byte, 512)
		n, _ := resp.Body.Read(buf)
		b.Write(buf[:n])
		return resp.StatusCode, b.String(), nil
	}

	// Absolute URLs, and relative ones (paths below the base URL), reach the declared host with the
	// credential in place of what the plugin set.
	for _, u := range []string{declared.URL + "/api/me", "me", "/me"} {
		code, body, err := get(u, http.Header{"Authorization": {"Bearer plugin-made"}, "Cookie": {"c=1"}})
		if err != nil || code != http.StatusOK || body != "Bearer "+key+"|" {
			t.Errorf("GET %s = %d %q, %v; want the injected credential alone", u, code, body, err)
		}
	}
	// Another host is refused before anything is sent.
	if _, _, err := get(other.URL+"/me", nil); err == nil || !strings.Contains(err.Error(), "plugboard refused to send the credential to "+other.URL) {
		t.Errorf("a request to another host: %v, want refused", err)
	}
	// A redirect to another host comes back as it is.
	if code, _, err := get(declared.URL+"/api/away", nil); err != nil || code != http.StatusFound {
		t.Errorf("a redirect: %d, %v; want the 302 unfollowed", code, err)
	}
	if n := elsewhere.Load(); n != 0 {
		t.Errorf("the other host was called %d times", n)
	}

	// A type that declares no HTTP API is not tested; nor a base URL on a
	// host the type does not allow (loopback aside, allowed here).
	bare := &ent.ConnectionType{Key: "acme.custom", AuthKind: connectiontype.AuthKindCUSTOM, Inputs: ct.Inputs}
	if _, problem := svc.credentialTransport(ctx, bare, map[string]string{"baseUrl": declared.URL}, nil); !strings.Contains(problem, "declares no HTTP API") {
		t.Errorf("a type without an HTTP declaration: %q, want it refused", problem)
	}
	if _, problem := svc.credentialTransport(ctx, ct, map[string]string{"apiKey": key, "baseUrl": "https://evil.example/api"}, nil); !strings.Contains(problem, "host evil.example is not a host the connection type allows") {
		t.Errorf("a base URL on another host: %q, want it refused", problem)
	}

	// A type that allows any host still never reaches the metadata
	// address: the egress policy refuses the dial.
	open := &ent.ConnectionType{Key: "acme.any", AuthKind: connectiontype.AuthKindAPI_KEY, Inputs: ct.Inputs,
		HTTP: &schematype.HTTPSpec{BaseURL: "{{#baseUrl}}", Inject: "BEARER", Input: "apiKey"}}
	rt, problem = svc.credentialTransport(ctx, open, map[string]string{"apiKey": key, "baseUrl": "http://169.254.169.254/latest"}, nil)
	if problem != "" {
		t.Fatal(problem)
	}
	client.Transport = rt
	if _, _, err := get("http://169.254.169.254/latest/meta-data", nil); err == nil || !strings.Contains(err.Error(), "plugboard refused to connect to 169.254.169.254: a cloud metadata address") {
		t.Errorf("the metadata address: %v, want refused by the egress policy", err)
	}
}
