package server_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/oauth2-proxy/mockoidc"

	"github.com/plugboard/plugboard/ent/credential"
	"github.com/plugboard/plugboard/internal/auth"
	"github.com/plugboard/plugboard/internal/globalid"
	"github.com/plugboard/plugboard/internal/server"
	"github.com/plugboard/plugboard/internal/server/servertest"
)

// noFollow is an HTTP client that shows redirects instead of following
// them, as a test browser.
var noFollow = &http.Client{
	Timeout:       10 * time.Second,
	CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
}

func get(t *testing.T, c *http.Client, rawURL string, header http.Header) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, rawURL, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header[k] = v
	}
	res, err := c.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", rawURL, err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res, string(b)
}

type runtimeRead struct {
	Values map[string]string
	Status string
	Type   string
	Token  *struct {
		AccessToken string
		TokenType   string
		ExpiresAt   *time.Time
	}
	Error *struct{ Code, Message string }
}

func readRuntime(t *testing.T, env *servertest.Env, token, credID string) (int, runtimeRead) {
	t.Helper()
	res, body := get(t, http.DefaultClient, env.URL+"/runtime/v1/credentials/"+credID, http.Header{"Authorization": {"Bearer " + token}})
	if res.Header.Get("Cache-Control") != "no-store" {
		t.Errorf("runtime read without Cache-Control: no-store")
	}
	var out runtimeRead
	if err := json.Unmarshal([]byte(body), &out); err != nil {
		t.Fatalf("runtime read %d: %s", res.StatusCode, body)
	}
	return res.StatusCode, out
}

func runtimeToken(t *testing.T, env *servertest.Env) string {
	t.Helper()
	ctx := context.Background()
	org, err := server.EnsureOrganization(ctx, env.App.Store.Client, server.DefaultOrgSlug)
	if err != nil {
		t.Fatal(err)
	}
	tok, _, err := env.App.Tokens.Create(ctx, org.ID, auth.RoleRuntime, "runtime")
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// TestOAuthAuthorizationCodeEndToEnd drives the slack plugin's type through
// plugboard's real HTTP API against mockoidc: save the client, Connect,
// the provider's redirect, the callback, a runtime read, a refresh once the
// token expired, and a disconnect.
func TestOAuthAuthorizationCodeEndToEnd(t *testing.T) {
	servertest.EachDB(t, servertest.Config{Plugins: []string{"slack"}}, func(t *testing.T, env *servertest.Env) {
		m, err := mockoidc.Run()
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = m.Shutdown() })

		mustOK(t, env.Do(t, `mutation { updateOrganization(input: {redirectAllowlist: ["https://app.example.com/integrations/"]}) { organization { redirectAllowlist } userErrors { message } } }`, nil))
		r := env.Do(t, `mutation { createConnection(input: {typeKey: "slack.oauth2", stableKey: "slack", name: "Slack", scope: ORGANIZATION_GLOBAL}) { connection { id } } }`, nil)
		mustOK(t, r)
		connID := servertest.Str(r.Data, "createConnection.connection.id")
		val := func(k, v string) map[string]any { return map[string]any{"key": k, "value": v} }
		r = env.Do(t, saveMutation, map[string]any{"in": map[string]any{"connectionID": connID, "values": []any{
			val("clientId", m.ClientID), val("clientSecret", m.ClientSecret),
			val("authorizeUrl", m.AuthorizationEndpoint()), val("tokenUrl", m.TokenEndpoint()),
			val("revokeUrl", m.Issuer()+"/revoke"), val("scopes", "openid"),
		}}})
		mustOK(t, r)
		credID := servertest.Str(r.Data, "saveCredential.credential.id")
		if s := servertest.Str(r.Data, "saveCredential.credential.status"); s != "PENDING" {
			t.Fatalf("a saved, unauthorized OAuth credential is %s", s)
		}

		// A redirect off the allow-list is refused up front.
		r = env.Do(t, `mutation($id: ID!) { startOAuth2(input: {credentialID: $id, redirectURL: "https://evil.example/x"}) { authorizeURL userErrors { field code } } }`,
			map[string]any{"id": credID})
		if r.Code() != "VALIDATION_FAILED" || !strings.Contains(r.Raw, "redirectURL") {
			t.Fatalf("redirect off the allow-list: %s", r.Raw)
		}
		// Of an allowed success URL and a refused failure URL, the error
		// names the failure URL.
		for _, tc := range []struct{ redirect, failure, field, noun string }{
			{"https://app.example.com/integrations/done", "https://evil.example/x", "failureURL", "failure URL"},
			{"https://evil.example/x", "https://app.example.com/integrations/failed", "redirectURL", "redirect URL"},
		} {
			r = env.Do(t, `mutation($id: ID!, $ok: String!, $bad: String!) { startOAuth2(input: {credentialID: $id, redirectURL: $ok, failureURL: $bad}) {
				authorizeURL userErrors { field code message } } }`, map[string]any{"id": credID, "ok": tc.redirect, "bad": tc.failure})
			ue, _ := servertest.Get(r.Data, "startOAuth2.userErrors").([]any)
			if r.Code() != "VALIDATION_FAILED" || len(ue) != 1 {
				t.Fatalf("a %s off the allow-list: %s", tc.noun, r.Raw)
			}
			if f := servertest.Get(r.Data, "startOAuth2.userErrors.0.field"); fmt.Sprint(f) != "["+tc.field+"]" ||
				!strings.Contains(servertest.Str(r.Data, "startOAuth2.userErrors.0.message"), "the "+tc.noun) {
				t.Fatalf("a %s off the allow-list is not named: %s", tc.noun, r.Raw)
			}
		}

		// Connect.
		r = env.Do(t, `mutation($id: ID!) { startOAuth2(input: {credentialID: $id, redirectURL: "https://app.example.com/integrations/done"}) { authorizeURL credential { status } userErrors { message } } }`,
			map[string]any{"id": credID})
		mustOK(t, r)
		authURL := servertest.Str(r.Data, "startOAuth2.authorizeURL")
		au, _ := url.Parse(authURL)
		if au.Query().Get("code_challenge_method") != "S256" || au.Query().Get("redirect_uri") != env.URL+"/oauth2/callback" {
			t.Fatalf("authorize URL: %s", authURL)
		}
		res, _ := get(t, noFollow, authURL, nil)
		loc := res.Header.Get("Location")
		if res.StatusCode != http.StatusFound || !strings.HasPrefix(loc, env.URL+"/oauth2/callback?") {
			t.Fatalf("mockoidc answered %d %s", res.StatusCode, loc)
		}
		// A wizard watching the credential sees the result at once.
		ws := subscribe(t, env, env.AdminToken,
			`subscription($id: ID) { credentialStatusChanged(credentialID: $id) { from to credential { id } } }`, map[string]any{"id": credID})
		for deadline := time.Now().Add(5 * time.Second); env.App.Events.Subscribers() == 0 && time.Now().Before(deadline); {
			time.Sleep(10 * time.Millisecond)
		}
		res, body := get(t, noFollow, loc, nil)
		if m, err := receive(ws); err != nil || m.Type != "next" || !strings.Contains(string(m.Payload), `"to":"ACTIVE"`) {
			t.Fatalf("status event after the callback: %+v %v", m, err)
		}
		back, _ := url.Parse(res.Header.Get("Location"))
		if res.StatusCode != http.StatusSeeOther || back.Host != "app.example.com" || back.Query().Get("status") != "ACTIVE" || back.Query().Get("credentialId") != credID {
			t.Fatalf("callback answered %d %s: %s", res.StatusCode, res.Header.Get("Location"), body)
		}
		// The same callback again is refused: states are single use.
		res, _ = get(t, noFollow, loc, nil)
		if res.StatusCode < 400 && !strings.Contains(res.Header.Get("Location"), "error") {
			t.Fatalf("a replayed callback was accepted: %d %s", res.StatusCode, res.Header.Get("Location"))
		}

		r = env.Do(t, `query($id: ID!) { node(id: $id) { ... on Credential { status grantedScopes tokenExpiresAt values { key value isSet } } } }`, map[string]any{"id": credID})
		mustOK(t, r)
		if servertest.Str(r.Data, "node.status") != "ACTIVE" || servertest.Get(r.Data, "node.tokenExpiresAt") == nil {
			t.Fatalf("after the callback: %s", r.Raw)
		}

		// The runtime read: values and a token. Admin tokens may not read.
		if code, _ := readRuntime(t, env, env.AdminToken, credID); code != http.StatusForbidden {
			t.Fatalf("an admin token read secrets: %d", code)
		}
		rt := runtimeToken(t, env)
		code, rr := readRuntime(t, env, rt, credID)
		if code != http.StatusOK || rr.Token == nil || rr.Token.AccessToken == "" || rr.Values["clientSecret"] != m.ClientSecret {
			t.Fatalf("runtime read %d: %+v", code, rr)
		}
		first := rr.Token.AccessToken

		// Expire the token: the next read refreshes through mockoidc.
		ctx := auth.SystemContext(context.Background())
		id, _ := globalid.Decode(credID)
		past := time.Now().Add(-time.Minute)
		if err := env.App.Store.Client.Credential.UpdateOneID(id).SetTokenExpiresAt(past).SetNextRefreshAt(past).Exec(ctx); err != nil {
			t.Fatal(err)
		}
		code, rr = readRuntime(t, env, rt, credID)
		if code != http.StatusOK || rr.Token == nil || rr.Token.AccessToken == "" {
			t.Fatalf("runtime read after expiry %d: %+v", code, rr)
		}
		// mockoidc's tokens are JWTs of second precision: a refresh within
		// the same second may issue the same string, so look at the expiry.
		if rr.Token.ExpiresAt == nil || !rr.Token.ExpiresAt.After(time.Now()) {
			t.Fatalf("refreshed token expiry: %+v (now %s)", *rr.Token, time.Now())
		}
		refreshed := rr.Token.AccessToken

		// Disconnect: tokens erased, PENDING, runtime reads refused.
		r = env.Do(t, `mutation($id: ID!) { disconnectCredential(id: $id) { credential { status tokenExpiresAt } userErrors { message } } }`, map[string]any{"id": credID})
		mustOK(t, r)
		if servertest.Str(r.Data, "disconnectCredential.credential.status") != "PENDING" {
			t.Fatalf("disconnect: %s", r.Raw)
		}
		if code, rr = readRuntime(t, env, rt, credID); code != http.StatusConflict || rr.Error == nil || rr.Error.Code != "CONFLICT" {
			t.Fatalf("runtime read after disconnect %d: %+v", code, rr)
		}
		// The refusal names the credential by the id the runtime sent.
		if want := "credential " + credID + ": "; !strings.HasPrefix(rr.Error.Message, want) ||
			strings.Contains(rr.Error.Message, fmt.Sprint(id)) {
			t.Fatalf("runtime read after disconnect: the message %q does not start with %q, or names the row id %d", rr.Error.Message, want, id)
		}
		c, err := env.App.Store.Client.Credential.Get(ctx, id)
		if err != nil || len(c.Token) != 0 || c.Status != credential.StatusPENDING {
			t.Fatalf("stored after disconnect: %v status %s token %d bytes", err, c.Status, len(c.Token))
		}

		// The connection log has the flow.
		r = env.Do(t, `query($id: ID!) { node(id: $id) { ... on Credential { auditEvents(first: 50) { edges { node { action } } } } } }`, map[string]any{"id": credID})
		for _, a := range []string{"credential.authorized", "credential.refreshed", "credential.runtime_read", "credential.disconnected"} {
			if !strings.Contains(r.Raw, `"`+a+`"`) {
				t.Errorf("no %s audit event: %s", a, r.Raw)
			}
		}
		// No token or client secret in any GraphQL response or log line.
		for _, secret := range []string{m.ClientSecret, first, refreshed} {
			if secret == "" {
				continue
			}
			if strings.Contains(env.AllBodies(), secret) || strings.Contains(env.Logs.String(), secret) {
				t.Errorf("a secret leaked into a response or the log")
			}
		}
	})
}

// TestOAuthClientCredentialsEndToEnd saves the msgraph type against a local
// token endpoint: the token is fetched at save, a refused request is a
// field error that stores nothing, and the runtime read serves the token.
func TestOAuthClientCredentialsEndToEnd(t *testing.T) {
	const secret = "msgraph-CANARY-secret-9f1e"
	const accessToken = "msgraph-CANARY-access-77aa"
	var calls atomic.Int64
	idp := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		_ = r.ParseForm()
		w.Header().Set("Content-Type", "application/json")
		if r.URL.Path != "/contoso.onmicrosoft.com/oauth2/v2.0/token" || r.PostForm.Get("grant_type") != "client_credentials" {
			w.WriteHeader(http.StatusBadRequest)
			_, _ = w.Write([]byte(`{"error":"invalid_request"}`))
			return
		}
		if r.PostForm.Get("client_secret") != secret {
			w.WriteHeader(http.StatusUnauthorized)
			_, _ = w.Write([]byte(`{"error":"invalid_client","error_description":"AADSTS7000215: Invalid client secret provided."}`))
			return
		}
		_, _ = w.Write([]byte(`{"access_token":"` + accessToken + `","token_type":"Bearer","expires_in":3599}`))
	}))
	t.Cleanup(idp.Close)
	servertest.EachDB(t, servertest.Config{Plugins: []string{"msgraph"}}, func(t *testing.T, env *servertest.Env) {
		r := env.Do(t, `mutation { createConnection(input: {typeKey: "msgraph.clientCredentials", stableKey: "graph", name: "Graph", scope: ORGANIZATION_GLOBAL}) { connection { id } } }`, nil)
		mustOK(t, r)
		connID := servertest.Str(r.Data, "createConnection.connection.id")
		save := func(clientSecret string) *servertest.Response {
			val := func(k, v string) map[string]any { return map[string]any{"key": k, "value": v} }
			return env.Do(t, saveMutation, map[string]any{"in": map[string]any{"connectionID": connID, "values": []any{
				val("tenant", "contoso.onmicrosoft.com"), val("clientId", "11111111-2222-3333-4444-555555555555"),
				val("clientSecret", clientSecret), val("authorityHost", idp.URL),
			}}})
		}
		r = save("wrong-CANARY-secret")
		if r.Code() != "VALIDATION_FAILED" || !strings.Contains(r.Raw, "TOKEN_REQUEST_FAILED") || !strings.Contains(r.Raw, `"clientSecret"`) {
			t.Fatalf("a refused token request: %s", r.Raw)
		}
		r = env.Do(t, `{ credentials { totalCount } }`, nil)
		if servertest.Get(r.Data, "credentials.totalCount") != float64(0) {
			t.Fatalf("a credential was stored after a refused token request: %s", r.Raw)
		}
		r = save(secret)
		mustOK(t, r)
		if servertest.Str(r.Data, "saveCredential.credential.status") != "ACTIVE" {
			t.Fatalf("client credentials save: %s", r.Raw)
		}
		credID := servertest.Str(r.Data, "saveCredential.credential.id")
		code, rr := readRuntime(t, env, runtimeToken(t, env), credID)
		if code != http.StatusOK || rr.Token == nil || rr.Token.AccessToken != accessToken {
			t.Fatalf("runtime read %d: %+v", code, rr)
		}
		if strings.Contains(env.AllBodies(), "CANARY") || strings.Contains(env.Logs.String(), "CANARY") {
			t.Error("a secret leaked into a response or the log")
		}
	})
	if calls.Load() == 0 {
		t.Fatal("the token endpoint was never called")
	}
}

// TestConcurrentRuntimeReadsRefreshOnce: 200 integration runs read one
// expired credential at once through the runtime endpoint; the provider
// sees exactly one refresh.
func TestConcurrentRuntimeReadsRefreshOnce(t *testing.T) {
	var refreshes atomic.Int64
	idp := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		refreshes.Add(1)
		_ = r.ParseForm()
		w.Header().Set("Content-Type", "application/json")
		if r.PostForm.Get("grant_type") != "client_credentials" {
			w.WriteHeader(http.StatusBadRequest)
			_, _ = w.Write([]byte(`{"error":"unsupported_grant_type"}`))
			return
		}
		_, _ = w.Write([]byte(`{"access_token":"token-CANARY","token_type":"Bearer","expires_in":3600}`))
	}))
	t.Cleanup(idp.Close)
	servertest.EachDB(t, servertest.Config{Plugins: []string{"msgraph"}}, func(t *testing.T, env *servertest.Env) {
		r := env.Do(t, `mutation { createConnection(input: {typeKey: "msgraph.clientCredentials", stableKey: "graph", name: "Graph", scope: ORGANIZATION_GLOBAL}) { connection { id } } }`, nil)
		mustOK(t, r)
		val := func(k, v string) map[string]any { return map[string]any{"key": k, "value": v} }
		r = env.Do(t, saveMutation, map[string]any{"in": map[string]any{"connectionID": servertest.Str(r.Data, "createConnection.connection.id"), "values": []any{
			val("tenant", "contoso.onmicrosoft.com"), val("clientId", "11111111-2222-3333-4444-555555555555"),
			val("clientSecret", "s3cret-CANARY"), val("authorityHost", idp.URL),
		}}})
		mustOK(t, r)
		credID := servertest.Str(r.Data, "saveCredential.credential.id")
		id, _ := globalid.Decode(credID)
		past := time.Now().Add(-time.Minute)
		if err := env.App.Store.Client.Credential.UpdateOneID(id).SetTokenExpiresAt(past).SetNextRefreshAt(past).Exec(auth.SystemContext(context.Background())); err != nil {
			t.Fatal(err)
		}
		before := refreshes.Load()
		rt := runtimeToken(t, env)
		const n = 200
		codes := make(chan int, n)
		start := make(chan struct{})
		for i := 0; i < n; i++ {
			go func() {
				<-start
				req, _ := http.NewRequest(http.MethodGet, env.URL+"/runtime/v1/credentials/"+credID, nil)
				req.Header.Set("Authorization", "Bearer "+rt)
				res, err := http.DefaultClient.Do(req)
				if err != nil {
					codes <- 0
					return
				}
				_, _ = io.Copy(io.Discard, res.Body)
				res.Body.Close()
				codes <- res.StatusCode
			}()
		}
		close(start)
		for i := 0; i < n; i++ {
			if c := <-codes; c != http.StatusOK {
				t.Fatalf("a runtime read answered %d", c)
			}
		}
		if got := refreshes.Load() - before; got != 1 {
			t.Fatalf("%d concurrent runtime reads made %d token-endpoint calls, want 1", n, got)
		}
	})
}
