package server_test

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/oauth2-proxy/mockoidc"

	"github.com/plugboard/plugboard/internal/secrets/sealed"
	"github.com/plugboard/plugboard/internal/server/servertest"
)

// TestEverySealedColumnSurvivesRotation writes a value into every column of
// the sealed registry through plugboard's own writers (template, save,
// versions, the OAuth 2.0 flow), rotates with the real rotator, and reads
// every value back through plugboard's own readers. A writer whose AAD
// drifted from the registry makes the rotation fail the value.
func TestEverySealedColumnSurvivesRotation(t *testing.T) {
	servertest.EachDB(t, servertest.Config{Plugins: []string{"slack"}}, func(t *testing.T, env *servertest.Env) {
		m, err := mockoidc.Run()
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = m.Shutdown() })
		credID := writeEverySealedColumn(t, env, m)
		pendingCallback := oauthCallbackURL(t, env, credID) // an unused state: its verifier stays sealed
		// webhook_endpoints.secret and .previous_secret
		endpoint, _ := registerEndpoint(t, env, "http://127.0.0.1:9/hooks", "credential.created")
		mustOK(t, env.Do(t, `mutation($e: ID!) { rotateWebhookSecret(id: $e) { secret } }`, map[string]any{"e": endpoint}))

		rows := map[string]int{}
		rot := &sealed.Rotator{DB: env.App.Store.Client, Keys: env.App.Keys, Batch: 1,
			OnBatch: func(p sealed.Progress) { rows[p.Column] += p.Rows }}
		res, err := rot.Rotate(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		total := 0
		for _, col := range sealed.Columns() {
			if rows[col.Name()] == 0 {
				t.Errorf("no value of %s was written, so none was rotated", col.Name())
			}
			total += rows[col.Name()]
		}
		if res.Failed != 0 || res.Remaining != 0 || res.Reencrypted != total {
			t.Fatalf("Rotate = %+v over %v; want every value re-encrypted, none failed", res, rows)
		}
		readEverySealedColumn(t, env, m, credID, pendingCallback)
		// Rotating the webhook secret again opens the re-sealed one.
		r := env.Do(t, `mutation($e: ID!) { rotateWebhookSecret(id: $e) { secret } }`, map[string]any{"e": endpoint})
		if mustOK(t, r); !strings.HasPrefix(servertest.Str(r.Data, "rotateWebhookSecret.secret"), "whsec_") {
			t.Fatalf("the webhook secret after the rotation: %s", r.Raw)
		}
	})
}

// writeEverySealedColumn seals a value into every registry column through
// the API and returns the credential's id.
func writeEverySealedColumn(t *testing.T, env *servertest.Env, m *mockoidc.MockOIDC) string {
	t.Helper()
	val := func(k, v string) map[string]any { return map[string]any{"key": k, "value": v} }
	mustOK(t, env.Do(t, `mutation { updateOrganization(input: {redirectAllowlist: ["https://app.example.com/"]}) { organization { id } } }`, nil))
	// connection_templates.secret_presets
	r := env.Do(t, `mutation($p: [CredentialValueInput!]!) { createConnectionTemplate(input: {typeKey: "slack.oauth2", name: "Slack app", presets: $p}) { template { id } userErrors { message } } }`,
		map[string]any{"p": []any{
			val("clientId", m.ClientID), val("clientSecret", m.ClientSecret),
			val("authorizeUrl", m.AuthorizationEndpoint()), val("tokenUrl", m.TokenEndpoint()), val("scopes", "openid"),
		}})
	mustOK(t, r)
	r = env.Do(t, `mutation($t: ID!) { createConnection(input: {typeKey: "slack.oauth2", stableKey: "slack", name: "Slack", scope: ORGANIZATION_GLOBAL, templateID: $t}) { connection { id } userErrors { message } } }`,
		map[string]any{"t": servertest.Str(r.Data, "createConnectionTemplate.template.id")})
	mustOK(t, r)
	connID := servertest.Str(r.Data, "createConnection.connection.id")
	// credentials.secrets, and credential_versions.secrets of versions 1
	// and 2
	var credID string
	for _, signing := range []string{"signing-v1", "signing-v2"} {
		r = env.Do(t, saveMutation, map[string]any{"in": map[string]any{"connectionID": connID,
			"values": []any{val("signingSecret", signing), val("revokeUrl", m.Issuer()+"/revoke")}}})
		mustOK(t, r)
		credID = servertest.Str(r.Data, "saveCredential.credential.id")
	}
	// oauth_states.verifier, then credentials.token
	res, body := get(t, noFollow, oauthCallbackURL(t, env, credID), nil)
	if back, _ := url.Parse(res.Header.Get("Location")); res.StatusCode != http.StatusSeeOther || back.Query().Get("status") != "ACTIVE" {
		t.Fatalf("callback answered %d %s: %s", res.StatusCode, res.Header.Get("Location"), body)
	}
	return credID
}

// oauthCallbackURL starts an authorization of credID and returns the
// callback URL the provider sends the browser to.
func oauthCallbackURL(t *testing.T, env *servertest.Env, credID string) string {
	t.Helper()
	r := env.Do(t, `mutation($id: ID!) { startOAuth2(input: {credentialID: $id, redirectURL: "https://app.example.com/done"}) { authorizeURL userErrors { message } } }`,
		map[string]any{"id": credID})
	mustOK(t, r)
	res, _ := get(t, noFollow, servertest.Str(r.Data, "startOAuth2.authorizeURL"), nil)
	loc := res.Header.Get("Location")
	if res.StatusCode != http.StatusFound || !strings.HasPrefix(loc, env.URL+"/oauth2/callback?") {
		t.Fatalf("the provider answered %d %s", res.StatusCode, loc)
	}
	return loc
}

// readEverySealedColumn opens every value written by writeEverySealedColumn
// through plugboard's readers.
func readEverySealedColumn(t *testing.T, env *servertest.Env, m *mockoidc.MockOIDC, credID, pendingCallback string) {
	t.Helper()
	rt := runtimeToken(t, env)
	// credentials.secrets, credentials.token and the template's presets.
	code, rr := readRuntime(t, env, rt, credID)
	if code != http.StatusOK || rr.Token == nil || rr.Token.AccessToken == "" ||
		rr.Values["signingSecret"] != "signing-v2" || rr.Values["clientSecret"] != m.ClientSecret {
		t.Fatalf("runtime read after the rotation %d: values %v, token set %v", code, rr.Values != nil, rr.Token != nil)
	}
	// credential_versions.secrets: roll back to version 1.
	mustOK(t, env.Do(t, rollbackMutation, map[string]any{"id": credID, "v": 1}))
	if code, rr = readRuntime(t, env, rt, credID); code != http.StatusOK || rr.Values["signingSecret"] != "signing-v1" {
		t.Fatalf("runtime read after rolling back to version 1: %d", code)
	}
	// oauth_states.verifier: the authorization started before the
	// rotation completes after it.
	res, body := get(t, noFollow, pendingCallback, nil)
	if back, _ := url.Parse(res.Header.Get("Location")); res.StatusCode != http.StatusSeeOther || back.Query().Get("status") != "ACTIVE" {
		t.Fatalf("callback after the rotation answered %d %s: %s", res.StatusCode, res.Header.Get("Location"), body)
	}
}
