package server_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/plugboard/plugboard/ent/credential"
	"github.com/plugboard/plugboard/internal/auth"
	"github.com/plugboard/plugboard/internal/globalid"
	"github.com/plugboard/plugboard/internal/server/servertest"
)

// TestProxyRefreshesOnceOn401: a token the API stopped accepting makes 50
// concurrent proxied calls all get a 401; the proxy refreshes it once (one
// call to the token endpoint in all) and each call is retried with the new
// token. When the API refuses the new token too, the 401 goes back as it
// is and the credential stays ACTIVE.
func TestProxyRefreshesOnceOn401(t *testing.T) {
	var issued atomic.Int64
	idp := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := issued.Add(1)
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"access_token":"graph-CANARY-` + strconv.FormatInt(n, 10) + `","token_type":"Bearer","expires_in":3600}`))
	}))
	t.Cleanup(idp.Close)
	servertest.EachDB(t, servertest.Config{Plugins: []string{"msgraph"}}, func(t *testing.T, env *servertest.Env) {
		var accepted atomic.Value
		accepted.Store("")
		graph := newUpstream(t, func(w http.ResponseWriter, r *http.Request) {
			if r.Header.Get("Authorization") != "Bearer "+accepted.Load().(string) {
				w.WriteHeader(http.StatusUnauthorized)
				_, _ = w.Write([]byte(`{"error":{"code":"InvalidAuthenticationToken"}}`))
				return
			}
			_, _ = w.Write([]byte(`{"displayName":"Contoso"}`))
		})
		credID := saveProxied(t, env, "msgraph.clientCredentials", map[string]string{
			"tenant": "contoso.onmicrosoft.com", "clientId": "11111111-2222-3333-4444-555555555555",
			"clientSecret": "graph-CANARY-secret", "authorityHost": idp.URL, "graphBaseUrl": graph.URL + "/v1.0",
		})
		before := issued.Load()
		// The API now only takes the token the next refresh issues.
		accepted.Store("graph-CANARY-" + strconv.FormatInt(before+1, 10))
		rt := runtimeToken(t, env)
		const n = 50
		answers := concurrentProxyCalls(t, env, rt, credID, "/v1.0/organization", n)
		retried := 0
		for _, a := range answers {
			// A call that resolved the credential after the refresh sends
			// the new token at once.
			r := a.header.Get("Plugboard-Proxy-Retries")
			if a.status != http.StatusOK || (r != "0" && r != "1") {
				t.Fatalf("a proxied call answered %d (retries %q): %s", a.status, r, a.body)
			}
			if r == "1" {
				retried++
			}
		}
		if retried == 0 {
			t.Fatal("no call was retried after its 401")
		}
		t.Logf("%d of %d calls got a 401 and were retried", retried, n)
		if got := issued.Load() - before; got != 1 {
			t.Fatalf("%d concurrent calls that got a 401 made %d token-endpoint calls, want 1", n, got)
		}
		// The API refuses every token: one refresh, then the 401 as it is.
		accepted.Store("none")
		res := callProxy(t, nil, env, rt, http.MethodGet, credID, "/v1.0/organization", nil, nil)
		if res.status != http.StatusUnauthorized || !strings.Contains(res.body, "InvalidAuthenticationToken") {
			t.Fatalf("a second 401: %d %s", res.status, res.body)
		}
		id, _ := globalid.Decode(credID)
		c, err := env.App.Store.Client.Credential.Get(auth.SystemContext(context.Background()), id)
		if err != nil || c.Status != credential.StatusACTIVE {
			t.Fatalf("after a second 401 the credential is %v (%v), want ACTIVE", c.Status, err)
		}
		if strings.Contains(env.AllBodies(), "graph-CANARY") || strings.Contains(env.Logs.String(), "graph-CANARY") {
			t.Error("a token or secret leaked into an answer or the log")
		}
	})
}

// concurrentProxyCalls makes n GET calls at once.
func concurrentProxyCalls(t *testing.T, env *servertest.Env, token, credID, path string, n int) []proxied {
	t.Helper()
	out := make([]proxied, n)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			out[i] = callProxy(t, nil, env, token, http.MethodGet, credID, path, nil, nil)
		}()
	}
	close(start)
	wg.Wait()
	return out
}

// TestProxyRetriesRateLimited: a 429 or 503 is retried after its
// Retry-After (seconds or an HTTP date) or the type's reset header, within
// the caller's Plugboard-Retry-Budget, for idempotent methods or when the
// caller allows it; otherwise it goes back as it is.
func TestProxyRetriesRateLimited(t *testing.T) {
	servertest.EachDB(t, servertest.Config{Plugins: []string{"proxied"}}, func(t *testing.T, env *servertest.Env) {
		var mu sync.Mutex
		limited := map[string]bool{} // paths already answered 429 once
		up := newUpstream(t, func(w http.ResponseWriter, r *http.Request) {
			mu.Lock()
			first := !limited[r.URL.Path]
			limited[r.URL.Path] = true
			mu.Unlock()
			if first {
				status, wait := http.StatusTooManyRequests, r.URL.Query().Get("wait")
				switch {
				case wait == "date":
					w.Header().Set("Retry-After", time.Now().Add(time.Second).UTC().Format(http.TimeFormat))
				case wait == "reset":
					status = http.StatusServiceUnavailable
					w.Header().Set("X-RateLimit-Reset", "1")
				default:
					w.Header().Set("Retry-After", wait)
				}
				w.WriteHeader(status)
				return
			}
			_, _ = w.Write([]byte("done"))
		})
		rt := runtimeToken(t, env)
		bearer := saveProxied(t, env, "proxied.bearer", map[string]string{"baseUrl": up.URL, "apiKey": "k"})
		query := saveProxied(t, env, "proxied.query", map[string]string{"baseUrl": up.URL, "apiKey": "k"})
		budget := http.Header{"Plugboard-Retry-Budget": {"10s"}}
		for _, tc := range []struct {
			name, method, cred, path string
			header                   http.Header
			status, retries          int
		}{
			{"Retry-After seconds within the budget", http.MethodGet, bearer, "/a?wait=1", budget, 200, 1},
			{"Retry-After as an HTTP date", http.MethodGet, bearer, "/b?wait=date", budget, 200, 1},
			{"the type's reset header on a 503", http.MethodGet, query, "/c?wait=reset", budget, 200, 1},
			{"no budget", http.MethodGet, bearer, "/d?wait=1", nil, 429, 0},
			{"a wait longer than the budget", http.MethodGet, bearer, "/e?wait=30", http.Header{"Plugboard-Retry-Budget": {"2s"}}, 429, 0},
			{"POST", http.MethodPost, bearer, "/f?wait=1", budget, 429, 0},
			{"POST the caller allows to retry", http.MethodPost, bearer, "/g?wait=1",
				http.Header{"Plugboard-Retry-Budget": {"10s"}, "Plugboard-Retry-Non-Idempotent": {"true"}}, 200, 1},
		} {
			res := callProxy(t, nil, env, rt, tc.method, tc.cred, tc.path, tc.header, strings.NewReader("payload"))
			if res.status != tc.status || res.header.Get("Plugboard-Proxy-Retries") != strconv.Itoa(tc.retries) {
				t.Errorf("%s: %d retries %q, want %d retries %d", tc.name, res.status, res.header.Get("Plugboard-Proxy-Retries"), tc.status, tc.retries)
			}
		}
		if _, body := up.last(t); body != "payload" {
			t.Errorf("the retried POST's body was %q", body)
		}
		res := callProxy(t, nil, env, rt, http.MethodGet, bearer, "/h", http.Header{"Plugboard-Retry-Budget": {"5m"}}, nil)
		if res.status != http.StatusBadRequest || res.errorCode() != "VALIDATION_FAILED" {
			t.Errorf("a budget over 60s: %d %s", res.status, res.body)
		}
	})
}
