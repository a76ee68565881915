package server_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/oauth2-proxy/mockoidc"

	"github.com/plugboard/plugboard/internal/server/servertest"
)

// TestCustomerConnectsFromTheWizard is the product flow end to end: the
// vendor presets its own OAuth 2.0 app in a template, builds an integration
// with an INTEGRATION-scope Slack slot and a CUSTOMER Asana slot, deploys it
// to a customer; the customer's user, signed in through an embedding token,
// opens the wizard, fills the Asana form, clicks Connect for Slack, and the
// instance is configured. The customer never sees the vendor's client
// secret or hidden inputs.
func TestCustomerConnectsFromTheWizard(t *testing.T) {
	servertest.EachDB(t, servertest.Config{Plugins: []string{"asana", "slack"}}, func(t *testing.T, env *servertest.Env) {
		m, err := mockoidc.Run()
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = m.Shutdown() })
		admin := func(q string, vars map[string]any) *servertest.Response {
			t.Helper()
			r := env.Do(t, q, vars)
			mustOK(t, r)
			return r
		}
		val := func(k, v string) map[string]any { return map[string]any{"key": k, "value": v} }

		admin(`mutation { updateOrganization(input: {autoCreateCustomers: true, redirectAllowlist: ["https://app.example.com/"]}) { organization { id } } }`, nil)
		key := newEmbedKey(t, "web-1")
		registerKey(t, env, env.AdminToken, key)
		r := admin(`mutation($p: [CredentialValueInput!]!) { createConnectionTemplate(input: {typeKey: "slack.oauth2", name: "Our Slack app", presets: $p}) { template { id } userErrors { message } } }`,
			map[string]any{"p": []any{
				val("clientId", m.ClientID), val("clientSecret", m.ClientSecret),
				val("authorizeUrl", m.AuthorizationEndpoint()), val("tokenUrl", m.TokenEndpoint()), val("scopes", "openid"),
			}})
		tmpl := servertest.Str(r.Data, "createConnectionTemplate.template.id")
		r = admin(`mutation { createConnection(input: {typeKey: "asana.apiKey", stableKey: "asana", name: "Asana", scope: CUSTOMER}) { connection { id } } }`, nil)
		asanaConn := servertest.Str(r.Data, "createConnection.connection.id")
		r = admin(`mutation($t: ID!, $a: ID!) { createIntegration(input: {key: "sync", name: "Sync", slots: [
			{key: "asana", label: "Asana", connectionID: $a}, {key: "slack", label: "Slack", typeKey: "slack.oauth2", templateID: $t}]}) {
			integration { id connectionSlots { key connection { id } } } userErrors { message } } }`,
			map[string]any{"t": tmpl, "a": asanaConn})
		integ := servertest.Str(r.Data, "createIntegration.integration.id")
		slackConn := servertest.Str(r.Data, "createIntegration.integration.connectionSlots.1.connection.id")

		// The customer's user signs in; the customer is created on first sight.
		tok := key.token(t, "default", "acme", "ada")
		r = env.DoAs(t, tok, `{ viewer { role customer { id externalID } } }`, nil)
		mustOK(t, r)
		customer := servertest.Str(r.Data, "viewer.customer.id")
		r = admin(`mutation($i: ID!, $c: ID!) { createInstance(input: {integrationID: $i, customerID: $c, name: "Acme sync"}) { instance { id configState } userErrors { message } } }`,
			map[string]any{"i": integ, "c": customer})
		inst := servertest.Str(r.Data, "createInstance.instance.id")
		if servertest.Str(r.Data, "createInstance.instance.configState") != "NEEDS_CONFIGURATION" {
			t.Fatalf("a new instance: %s", r.Raw)
		}

		const wizard = `query($i: ID!) { configWizard(instanceID: $i) { pages { elements { slotKey action status connected fields { key secret value isSet } } } } }`
		r = env.DoAs(t, tok, wizard, map[string]any{"i": inst})
		mustOK(t, r)
		for _, hidden := range []string{"clientSecret", "clientId", "authorizeUrl", "baseUrl", m.ClientSecret} {
			if strings.Contains(r.Raw, hidden) {
				t.Fatalf("the customer's wizard shows %q: %s", hidden, r.Raw)
			}
		}
		if !strings.Contains(r.Raw, `"OAUTH_CONNECT"`) || !strings.Contains(r.Raw, `"FORM"`) {
			t.Fatalf("wizard actions: %s", r.Raw)
		}
		// The Slack slot is a single Connect button: no field of the
		// organization's Slack app (its signing secret) is asked for.
		if servertest.Str(r.Data, "configWizard.pages.0.elements.1.slotKey") != "slack" ||
			servertest.Str(r.Data, "configWizard.pages.0.elements.1.action") != "OAUTH_CONNECT" {
			t.Fatalf("the second slot is not Slack's Connect button: %s", r.Raw)
		}
		if fields, _ := servertest.Get(r.Data, "configWizard.pages.0.elements.1.fields").([]any); len(fields) != 0 {
			t.Fatalf("the customer's Slack slot asks for fields %v: %s", fields, r.Raw)
		}

		// Fill the Asana form.
		r = env.DoAs(t, tok, saveMutation, map[string]any{"in": map[string]any{"connectionID": asanaConn,
			"values": []any{val("apiKey", canary)}}})
		mustOK(t, r)
		// A hidden input is not the customer's to set.
		r = env.DoAs(t, tok, saveMutation, map[string]any{"in": map[string]any{"connectionID": asanaConn,
			"values": []any{val("baseUrl", "https://evil.example")}}})
		if r.Code() != "VALIDATION_FAILED" {
			t.Fatalf("a customer set a hidden input: %s", r.Raw)
		}

		// Connect Slack: the instance's credential, then the one button.
		r = env.DoAs(t, tok, saveMutation, map[string]any{"in": map[string]any{"connectionID": slackConn, "instanceID": inst, "values": []any{}}})
		mustOK(t, r)
		slackCred := servertest.Str(r.Data, "saveCredential.credential.id")
		r = env.DoAs(t, tok, `mutation($id: ID!) { startOAuth2(input: {credentialID: $id, redirectURL: "https://app.example.com/done"}) { authorizeURL userErrors { message } } }`,
			map[string]any{"id": slackCred})
		mustOK(t, r)
		authURL := servertest.Str(r.Data, "startOAuth2.authorizeURL")
		if strings.Contains(r.Raw, m.ClientSecret) {
			t.Fatal("the authorize URL answer carries the client secret")
		}
		res, _ := get(t, noFollow, authURL, nil)
		res, body := get(t, noFollow, res.Header.Get("Location"), nil)
		back, _ := url.Parse(res.Header.Get("Location"))
		if res.StatusCode != http.StatusSeeOther || back.Query().Get("status") != "ACTIVE" {
			t.Fatalf("callback %d %s: %s", res.StatusCode, res.Header.Get("Location"), body)
		}

		r = env.DoAs(t, tok, wizard, map[string]any{"i": inst})
		mustOK(t, r)
		if strings.Count(r.Raw, `"status":"ACTIVE"`) != 2 || !strings.Contains(r.Raw, `"connected":true`) {
			t.Fatalf("wizard after connecting: %s", r.Raw)
		}
		r = admin(`query($i: ID!) { node(id: $i) { ... on Instance { configState } } }`, map[string]any{"i": inst})
		if servertest.Str(r.Data, "node.configState") != "CONFIGURED" {
			t.Fatalf("instance after the wizard: %s", r.Raw)
		}
		r = admin(`mutation($i: ID!) { deployInstance(id: $i) { instance { deployedAt } userErrors { message } } }`, map[string]any{"i": inst})
		if servertest.Get(r.Data, "deployInstance.instance.deployedAt") == nil {
			t.Fatalf("deploy: %s", r.Raw)
		}
		if strings.Contains(env.AllBodies(), "CANARY") || strings.Contains(env.AllBodies(), m.ClientSecret) ||
			strings.Contains(env.Logs.String(), "CANARY") || strings.Contains(env.Logs.String(), m.ClientSecret) {
			t.Error("a secret leaked into a response or the log")
		}
	})
}
