package server_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/plugboard/plugboard/ent/auditevent"
	"github.com/plugboard/plugboard/internal/auth"
	"github.com/plugboard/plugboard/internal/server/servertest"
)

// upstream is a local API that records what it received.
type upstream struct {
	*httptest.Server
	mu   sync.Mutex
	reqs []*http.Request
	body []string
}

// newUpstream answers every request with handle (nil: 200 {"ok":true}).
func newUpstream(t *testing.T, handle http.HandlerFunc) *upstream {
	t.Helper()
	return newUpstreamOn(t, nil, handle)
}

// newUpstreamOn is newUpstream serving on ln (nil: a loopback port).
func newUpstreamOn(t *testing.T, ln net.Listener, handle http.HandlerFunc) *upstream {
	t.Helper()
	u := &upstream{}
	u.Server = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		u.mu.Lock()
		u.reqs = append(u.reqs, r.Clone(context.Background()))
		u.body = append(u.body, string(b))
		u.mu.Unlock()
		if handle != nil {
			handle(w, r)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("X-Upstream", "yes")
		_, _ = w.Write([]byte(`{"ok":true}`))
	}))
	if ln != nil {
		u.Listener.Close()
		u.Listener = ln
	}
	u.Start()
	t.Cleanup(u.Close)
	return u
}

func (u *upstream) last(t *testing.T) (*http.Request, string) {
	t.Helper()
	u.mu.Lock()
	defer u.mu.Unlock()
	if len(u.reqs) == 0 {
		t.Fatal("the upstream got no request")
	}
	return u.reqs[len(u.reqs)-1], u.body[len(u.body)-1]
}

func (u *upstream) count() int {
	u.mu.Lock()
	defer u.mu.Unlock()
	return len(u.reqs)
}

// saveProxied creates an ORGANIZATION_GLOBAL connection of typeKey and
// saves values on it; it returns the credential's id.
func saveProxied(t *testing.T, env *servertest.Env, typeKey string, values map[string]string) string {
	t.Helper()
	stable := strings.NewReplacer(".", "-").Replace(typeKey)
	r := env.Do(t, `mutation($in: CreateConnectionInput!) { createConnection(input: $in) { connection { id } userErrors { message } } }`,
		map[string]any{"in": map[string]any{"typeKey": typeKey, "stableKey": stable, "name": stable, "scope": "ORGANIZATION_GLOBAL"}})
	mustOK(t, r)
	var vals []any
	for k, v := range values {
		vals = append(vals, map[string]any{"key": k, "value": v})
	}
	r = env.Do(t, saveMutation, map[string]any{"in": map[string]any{
		"connectionID": servertest.Str(r.Data, "createConnection.connection.id"), "values": vals}})
	mustOK(t, r)
	if servertest.Str(r.Data, "saveCredential.credential.status") != "ACTIVE" {
		t.Fatalf("save of %s: %s", typeKey, r.Raw)
	}
	return servertest.Str(r.Data, "saveCredential.credential.id")
}

// proxied is a proxy call's answer.
type proxied struct {
	status int
	header http.Header
	body   string
}

// errorCode is the code of the proxy's JSON error answer, or "".
func (p proxied) errorCode() string {
	var e struct {
		Error struct{ Code string } `json:"error"`
	}
	_ = json.Unmarshal([]byte(p.body), &e)
	return e.Error.Code
}

// callProxy sends method path (below the credential) through the proxy.
func callProxy(t testing.TB, c *http.Client, env *servertest.Env, token, method, credID, path string, header http.Header, body io.Reader) proxied {
	t.Helper()
	req, err := http.NewRequest(method, env.URL+"/proxy/v1/credentials/"+credID+path, body)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header[k] = v
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if c == nil {
		c = http.DefaultClient
	}
	res, err := c.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return proxied{status: res.StatusCode, header: res.Header, body: string(b)}
}

// TestProxyInjectsEachStyle calls a local upstream through the proxy with
// a credential of each injection style: the upstream sees the credential
// as the type declares it, the caller's method, path, query, body and
// headers, and none of the caller's Authorization, Plugboard-* or
// hop-by-hop headers; the caller sees the upstream's answer. Each call
// leaves one audit row without the query string, and the canary secret is
// in no answer, log line or audit row.
func TestProxyInjectsEachStyle(t *testing.T) {
	const canary = "proxy-CANARY-4d1f"
	servertest.EachDB(t, servertest.Config{Plugins: []string{"proxied"}}, func(t *testing.T, env *servertest.Env) {
		up := newUpstream(t, nil)
		rt := runtimeToken(t, env)
		cases := []struct {
			typeKey string
			values  map[string]string
			check   func(r *http.Request) bool
		}{
			{"proxied.bearer", map[string]string{"apiKey": canary},
				func(r *http.Request) bool { return r.Header.Get("Authorization") == "Bearer "+canary }},
			{"proxied.header", map[string]string{"apiKey": canary},
				func(r *http.Request) bool {
					return r.Header.Get("X-Api-Token") == "Token "+canary && r.Header.Get("Authorization") == ""
				}},
			{"proxied.basic", map[string]string{"username": "ann", "password": canary},
				func(r *http.Request) bool {
					return r.Header.Get("Authorization") == "Basic "+base64.StdEncoding.EncodeToString([]byte("ann:"+canary))
				}},
			{"proxied.query", map[string]string{"apiKey": canary},
				func(r *http.Request) bool {
					return r.URL.Query().Get("api_key") == canary && r.Header.Get("Authorization") == ""
				}},
		}
		for _, tc := range cases {
			tc.values["baseUrl"] = up.URL + "/base/"
			credID := saveProxied(t, env, tc.typeKey, tc.values)
			h := http.Header{
				"X-Custom": {"kept"}, "Connection": {"X-Hop"}, "X-Hop": {"dropped"}, "Keep-Alive": {"timeout=5"},
				"Plugboard-Retry-Budget": {"0s"}, "Content-Type": {"text/plain"},
			}
			res := callProxy(t, nil, env, rt, http.MethodPut, credID, "/v1/items/42?page=2&filter=a%20b", h, strings.NewReader("hello"))
			if res.status != http.StatusOK || res.body != `{"ok":true}` || res.header.Get("X-Upstream") != "yes" ||
				res.header.Get("Plugboard-Proxy-Retries") != "0" {
				t.Fatalf("%s: %d %v %s", tc.typeKey, res.status, res.header, res.body)
			}
			got, body := up.last(t)
			switch {
			case !tc.check(got):
				t.Errorf("%s: the credential was not injected as declared: %v %s", tc.typeKey, got.Header, got.URL)
			case got.Method != http.MethodPut || got.URL.Path != "/base/v1/items/42" || body != "hello":
				t.Errorf("%s: upstream got %s %s %q", tc.typeKey, got.Method, got.URL.Path, body)
			case got.URL.Query().Get("page") != "2" || got.URL.Query().Get("filter") != "a b":
				t.Errorf("%s: the query did not pass: %s", tc.typeKey, got.URL.RawQuery)
			case got.Header.Get("X-Custom") != "kept" || got.Header.Get("Content-Type") != "text/plain":
				t.Errorf("%s: the caller's headers did not pass: %v", tc.typeKey, got.Header)
			case got.Header.Get("X-Hop") != "" || got.Header.Get("Keep-Alive") != "" || got.Header.Get("Plugboard-Retry-Budget") != "":
				t.Errorf("%s: hop-by-hop or Plugboard-* headers passed: %v", tc.typeKey, got.Header)
			case strings.Contains(got.Header.Get("Authorization"), rt):
				t.Errorf("%s: the caller's Authorization passed", tc.typeKey)
			}
		}
		assertProxyAudits(t, env, len(cases), canary)
		if strings.Contains(env.AllBodies(), canary) || strings.Contains(env.Logs.String(), canary) {
			t.Error("the canary secret leaked into an answer or the log")
		}
		if strings.Contains(env.Logs.String(), "page=2") {
			t.Error("a query string reached the log")
		}
	})
}

// assertProxyAudits checks that n proxied calls were audited, without a
// query string or the canary.
func assertProxyAudits(t *testing.T, env *servertest.Env, n int, canary string) {
	t.Helper()
	rows, err := env.App.Store.Client.AuditEvent.Query().Where(auditevent.Action("credential.proxied")).
		All(auth.SystemContext(context.Background()))
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != n {
		t.Fatalf("%d audit rows of proxied calls, want %d", len(rows), n)
	}
	for _, a := range rows {
		if strings.Contains(a.Message, "?") || strings.Contains(a.Message, "page") || strings.Contains(a.Message, canary) ||
			!strings.Contains(a.Message, "PUT 127.0.0.1:") || !strings.Contains(a.Message, "/base/v1/items/42: 200") {
			t.Errorf("audit row: %q", a.Message)
		}
		if a.CredentialID == nil || a.Actor == "" {
			t.Errorf("audit row without credential or actor: %+v", a)
		}
	}
}

// TestProxyRefusals: only RUNTIME tokens call through the proxy; a type
// without an HTTP spec, and a base URL on a host the type does not allow,
// are PROXY_DENIED; an unknown credential is NOT_FOUND.
func TestProxyRefusals(t *testing.T) {
	env := servertest.Start(t, servertest.Config{Plugins: []string{"proxied", "asana"}})
	up := newUpstream(t, nil)
	rt := runtimeToken(t, env)
	bearer := saveProxied(t, env, "proxied.bearer", map[string]string{"baseUrl": up.URL, "apiKey": "k"})
	legacy := saveProxied(t, env, "proxied.legacy", map[string]string{"baseUrl": up.URL, "apiKey": "k"})
	asana := saveProxied(t, env, "asana.apiKey", map[string]string{
		"baseUrl": "https://evil.example.com/api", "apiKey": "2/1200000000000000/1200000000000001:0123456789abcdef0123456789abcdef"})
	gone := httptest.NewServer(http.NotFoundHandler())
	gone.Close()
	unreachable := saveProxied(t, env, "proxied.header", map[string]string{"baseUrl": gone.URL, "apiKey": "k"})
	for _, tc := range []struct {
		name, token, cred string
		status            int
		code              string
	}{
		{"no token", "", bearer, http.StatusUnauthorized, "UNAUTHENTICATED"},
		{"admin token", env.AdminToken, bearer, http.StatusForbidden, "FORBIDDEN"},
		{"no HTTP spec", rt, legacy, http.StatusForbidden, "PROXY_DENIED"},
		{"host not allowed", rt, asana, http.StatusForbidden, "PROXY_DENIED"},
		{"unknown credential", rt, "bm90LWFuLWlk", http.StatusNotFound, "NOT_FOUND"},
		{"unreachable upstream", rt, unreachable, http.StatusBadGateway, "UPSTREAM_UNAVAILABLE"},
	} {
		res := callProxy(t, nil, env, tc.token, http.MethodGet, tc.cred, "/x", nil, nil)
		if res.status != tc.status || res.errorCode() != tc.code {
			t.Errorf("%s: %d %s, want %d %s", tc.name, res.status, res.body, tc.status, tc.code)
		}
	}
	if up.count() != 0 {
		t.Errorf("a refused call reached the upstream")
	}
}
