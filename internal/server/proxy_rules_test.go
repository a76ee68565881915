package server_test

import (
	"bytes"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"

	"github.com/plugboard/plugboard/internal/server"
	"github.com/plugboard/plugboard/internal/server/servertest"
)

// TestProxyAddressRules: a redirect comes back to the caller and is never
// followed; a base URL on the cloud metadata address is refused; a private
// address is refused until the organization allows private networks, and
// again once it stops.
func TestProxyAddressRules(t *testing.T) {
	servertest.EachDB(t, servertest.Config{Plugins: []string{"proxied"}}, func(t *testing.T, env *servertest.Env) {
		rt := runtimeToken(t, env)
		other := newUpstream(t, nil)
		up := newUpstream(t, func(w http.ResponseWriter, r *http.Request) {
			http.Redirect(w, r, other.URL+"/stolen", http.StatusFound)
		})
		redirecting := saveProxied(t, env, "proxied.bearer", map[string]string{"baseUrl": up.URL, "apiKey": "k"})
		res := callProxy(t, noRedirects, env, rt, http.MethodGet, redirecting, "/go", nil, nil)
		if res.status != http.StatusFound || res.header.Get("Location") != other.URL+"/stolen" {
			t.Errorf("a redirect: %d %v", res.status, res.header)
		}
		if other.count() != 0 {
			t.Error("the proxy followed a redirect to another host")
		}

		metadata := saveProxied(t, env, "proxied.header", map[string]string{"baseUrl": "http://169.254.169.254/latest", "apiKey": "k"})
		res = callProxy(t, nil, env, rt, http.MethodGet, metadata, "/meta-data/iam", nil, nil)
		if res.status != http.StatusForbidden || res.errorCode() != "PROXY_DENIED" {
			t.Errorf("the metadata address: %d %s", res.status, res.body)
		}
		assertPrivateRule(t, env, rt)
	})
}

// noRedirects is a client that hands back redirects.
var noRedirects = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

// assertPrivateRule calls an upstream on a private (ULA, fc00::/7) address
// of this machine, before and after the organization allows private
// networks.
func assertPrivateRule(t *testing.T, env *servertest.Env, rt string) {
	t.Helper()
	ln, err := net.Listen("tcp", "[fd00::2]:0")
	if err != nil {
		t.Logf("no private address to listen on (%v): the private-network rule is not exercised", err)
		return
	}
	private := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = w.Write([]byte("on-prem"))
	}))
	_ = private.Listener.Close()
	private.Listener = ln
	private.Start()
	t.Cleanup(private.Close)
	cred := saveProxied(t, env, "proxied.basic", map[string]string{"baseUrl": private.URL, "username": "u", "password": "p"})
	allow := func(on bool) {
		r := env.Do(t, `mutation($on: Boolean!) { updateOrganization(input: {allowPrivateNetworks: $on}) { organization { allowPrivateNetworks } userErrors { message } } }`,
			map[string]any{"on": on})
		mustOK(t, r)
		if servertest.Get(r.Data, "updateOrganization.organization.allowPrivateNetworks") != on {
			t.Fatalf("updateOrganization: %s", r.Raw)
		}
	}
	for _, step := range []struct {
		allow  bool
		status int
	}{{false, http.StatusForbidden}, {true, http.StatusOK}, {false, http.StatusForbidden}} {
		allow(step.allow)
		res := callProxy(t, nil, env, rt, http.MethodGet, cred, "/status", nil, nil)
		if res.status != step.status || (step.status == http.StatusForbidden && res.errorCode() != "PROXY_DENIED") {
			t.Errorf("private address, allowed %v: %d %s", step.allow, res.status, res.body)
		}
	}
	r := env.DoAs(t, runtimeToken(t, env), `mutation { updateOrganization(input: {allowPrivateNetworks: true}) { organization { id } } }`, nil)
	if r.Code() != "FORBIDDEN" {
		t.Errorf("a runtime token changed the organization: %s", r.Raw)
	}
}

// TestProxySizeLimits: a request body over 10 MiB is refused (413) whether
// it declares its length or streams, an answer that declares more than
// 50 MiB is PAYLOAD_TOO_LARGE, one that streams more is cut at 50 MiB.
func TestProxySizeLimits(t *testing.T) {
	servertest.EachDB(t, servertest.Config{Plugins: []string{"proxied"}}, func(t *testing.T, env *servertest.Env) {
		rt := runtimeToken(t, env)
		up := newUpstream(t, func(w http.ResponseWriter, r *http.Request) {
			switch r.URL.Path {
			case "/declared":
				w.Header().Set("Content-Length", strconv.Itoa(server.MaxProxyAnswer+1))
				_, _ = w.Write(make([]byte, 1<<20))
			case "/streamed":
				chunk := make([]byte, 1<<20)
				for i := 0; i < 51; i++ {
					if _, err := w.Write(chunk); err != nil {
						return
					}
				}
			}
		})
		cred := saveProxied(t, env, "proxied.bearer", map[string]string{"baseUrl": up.URL, "apiKey": "k"})
		big := bytes.Repeat([]byte("x"), server.MaxProxyRequest+1)
		res := callProxy(t, nil, env, rt, http.MethodPost, cred, "/upload", nil, bytes.NewReader(big))
		if res.status != http.StatusRequestEntityTooLarge || res.errorCode() != "PAYLOAD_TOO_LARGE" {
			t.Errorf("a declared 10 MiB + 1 body: %d %s", res.status, res.body)
		}
		// No length: the body streams until the limit.
		res = callProxy(t, nil, env, rt, http.MethodPost, cred, "/upload", nil, io.MultiReader(bytes.NewReader(big)))
		if res.status != http.StatusRequestEntityTooLarge || res.errorCode() != "PAYLOAD_TOO_LARGE" {
			t.Errorf("a streamed 10 MiB + 1 body: %d %.200s", res.status, res.body)
		}
		res = callProxy(t, nil, env, rt, http.MethodGet, cred, "/declared", nil, nil)
		if res.status != http.StatusBadGateway || res.errorCode() != "PAYLOAD_TOO_LARGE" {
			t.Errorf("an answer declaring 50 MiB + 1: %d %.200s", res.status, res.body)
		}
		if n := streamedLength(t, env, rt, cred); n > server.MaxProxyAnswer {
			t.Errorf("a streamed answer of 51 MiB came through with %d bytes", n)
		}
		if body := strings.Join(up.body, ""); len(body) > server.MaxProxyRequest {
			t.Errorf("the upstream received %d bytes of a refused body", len(body))
		}
	})
}

// streamedLength reads the streamed 51 MiB answer and returns how much came.
func streamedLength(t *testing.T, env *servertest.Env, rt, cred string) int64 {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, env.URL+"/proxy/v1/credentials/"+cred+"/streamed", nil)
	req.Header.Set("Authorization", "Bearer "+rt)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0
	}
	defer res.Body.Close()
	n, _ := io.Copy(io.Discard, res.Body)
	return n
}

// TestProxyBundledTypes calls a local upstream through the bundled Asana
// (bearer from an input) and Shopify (header) types, their base URLs
// aimed at loopback by their hidden override inputs; the proxy's metric
// counts the calls per type.
func TestProxyBundledTypes(t *testing.T) {
	env := servertest.Start(t, servertest.Config{Plugins: []string{"asana", "shopify"}})
	rt := runtimeToken(t, env)
	up := newUpstream(t, nil)
	const asanaKey = "2/1200000000000000/1200000000000001:0123456789abcdef0123456789abcdef"
	asana := saveProxied(t, env, "asana.apiKey", map[string]string{"baseUrl": up.URL + "/api/1.0", "apiKey": asanaKey})
	if res := callProxy(t, nil, env, rt, http.MethodGet, asana, "/users/me", nil, nil); res.status != http.StatusOK {
		t.Fatalf("asana: %d %s", res.status, res.body)
	}
	if got, _ := up.last(t); got.URL.Path != "/api/1.0/users/me" || got.Header.Get("Authorization") != "Bearer "+asanaKey {
		t.Errorf("asana: upstream got %s %v", got.URL.Path, got.Header)
	}
	shopify := saveProxied(t, env, "shopify.apiKey", map[string]string{
		"shop": "acme", "accessToken": "shpat_CANARY", "baseUrlOverride": up.URL + "/admin"})
	if res := callProxy(t, nil, env, rt, http.MethodGet, shopify, "/api/2024-10/shop.json", nil, nil); res.status != http.StatusOK {
		t.Fatalf("shopify: %d %s", res.status, res.body)
	}
	if got, _ := up.last(t); got.URL.Path != "/admin/api/2024-10/shop.json" || got.Header.Get("X-Shopify-Access-Token") != "shpat_CANARY" {
		t.Errorf("shopify: upstream got %s %v", got.URL.Path, got.Header)
	}
	_, metrics := get(t, http.DefaultClient, env.URL+"/metrics", nil)
	for _, typ := range []string{"asana.apiKey", "shopify.apiKey"} {
		if !strings.Contains(metrics, `plugboard_proxy_call_duration_seconds_count{code="200",type="`+typ+`"} 1`) {
			t.Errorf("no proxy metric of %s", typ)
		}
	}
}

// TestProxyKeepsSecretsOutOfSpans: a traced proxied call leaves neither
// the injected secret nor the caller's query string in any span.
func TestProxyKeepsSecretsOutOfSpans(t *testing.T) {
	env := startTraced(t, "proxied")
	up := newUpstream(t, nil)
	const key, query = "span-CANARY-key", "span-CANARY-query"
	cred := saveProxied(t, env.Env, "proxied.query", map[string]string{"baseUrl": up.URL, "apiKey": key})
	rt := runtimeToken(t, env.Env)
	if res := callProxy(t, nil, env.Env, rt, http.MethodGet, cred, "/items?q="+query, nil, nil); res.status != http.StatusOK {
		t.Fatalf("proxied call: %d %s", res.status, res.body)
	}
	all := env.spans()
	if len(find(all, func(s span) bool { return strings.HasPrefix(s.name, "GET /proxy/v1/credentials/") })) != 1 {
		t.Errorf("no server span of the proxied call: %v", names(all))
	}
	for _, s := range all {
		for _, text := range s.texts {
			if strings.Contains(text, "span-CANARY") || strings.Contains(text, rt) {
				t.Errorf("span %q carries a secret or the query in %q", s.name, text)
			}
		}
	}
}
