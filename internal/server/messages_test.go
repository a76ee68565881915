package server_test

import (
	"regexp"
	"strings"
	"testing"

	"github.com/plugboard/plugboard/internal/server/servertest"
)

// scopeEnumWord is a connection scope's enum name, which a message for
// people never shows.
var scopeEnumWord = regexp.MustCompile(`\b(CUSTOMER|ORGANIZATION_CUSTOMER|ORGANIZATION_GLOBAL|INTEGRATION|USER)\b`)

// TestMessagesNameScopesInWords: every refusal whose message speaks of a
// connection's scope names it in words ("an integration-scoped
// connection"), never by its enum name.
func TestMessagesNameScopesInWords(t *testing.T) {
	env := servertest.Start(t, servertest.Config{Plugins: []string{"asana"}})
	cust := scConnection(t, env, "asana.apiKey", "m-cust", "CUSTOMER", "")
	global := scConnection(t, env, "asana.apiKey", "m-global", "ORGANIZATION_GLOBAL", "")
	oc := scConnection(t, env, "asana.apiKey", "m-oc", "ORGANIZATION_CUSTOMER", "")
	usr := scConnection(t, env, "asana.apiKey", "m-user", "USER", "")
	inline := scConnection(t, env, "asana.apiKey", "m-inline", "INTEGRATION", "")
	acme := scCustomer(t, env, "m-acme")
	ig := scIntegration(t, env, "m-crm", "org="+global)
	inst := scInstance(t, env, ig, acme, "m-inst", "PRODUCTION")["id"].(string)
	ocOrg := scSave(t, env, map[string]any{"connectionID": oc, "values": scVals("baseUrl", "https://app.asana.com/api/1.0")})["id"].(string)
	custCred := scSave(t, env, map[string]any{"connectionID": cust, "customerID": acme, "values": scVals("apiKey", otherToken)})["id"].(string)

	const save = `mutation($in: SaveCredentialInput!) { saveCredential(input: $in) { credential { id } userErrors { field code message } } }`
	cases := []struct {
		name, query, path, words string
		vars                     map[string]any
	}{
		{"organization-wide with a customer", save, "saveCredential", "organization-wide connection",
			map[string]any{"in": map[string]any{"connectionID": global, "customerID": acme, "values": scVals("apiKey", otherToken)}}},
		{"customer-scoped without a customer", save, "saveCredential", "customer-scoped connection",
			map[string]any{"in": map[string]any{"connectionID": cust, "values": scVals("apiKey", otherToken)}}},
		{"customer-scoped with an instance", save, "saveCredential", "customer-scoped connection",
			map[string]any{"in": map[string]any{"connectionID": cust, "customerID": acme, "instanceID": inst, "values": scVals("apiKey", otherToken)}}},
		{"integration-scoped with a customer", save, "saveCredential", "integration-scoped connection",
			map[string]any{"in": map[string]any{"connectionID": inline, "customerID": acme, "values": scVals("apiKey", otherToken)}}},
		{"integration-scoped without an instance", save, "saveCredential", "integration-scoped connection",
			map[string]any{"in": map[string]any{"connectionID": inline, "values": scVals("apiKey", otherToken)}}},
		{"user-scoped without a user", save, "saveCredential", "user-scoped connection",
			map[string]any{"in": map[string]any{"connectionID": usr, "values": scVals("apiKey", otherToken)}}},
		{"organization's part tested", save, "saveCredential", "organization-managed per-customer connection",
			map[string]any{"in": map[string]any{"connectionID": oc, "test": true, "values": scVals("baseUrl", "https://app.asana.com/api/1.0")}}},
		{"organization's part tested on its own", `mutation($id: ID!) { testCredential(id: $id) { credential { id } userErrors { field code message } } }`,
			"testCredential", "organization-managed per-customer connection", map[string]any{"id": ocOrg}},
		{"input sources outside a per-customer connection", `mutation { createConnection(input: {typeKey: "asana.apiKey", stableKey: "m-src", name: "m-src",
			scope: CUSTOMER, inputSettings: [{key: "apiKey", source: "ORG"}]}) { connection { id } userErrors { field code message } } }`,
			"createConnection", "organization-managed per-customer connections", nil},
		{"an integration-scoped connection in a slot", `mutation($c: ID!) { createIntegration(input: {key: "m-ig2", name: "m-ig2",
			slots: [{key: "s", label: "s", connectionID: $c}]}) { integration { id } userErrors { field code message } } }`,
			"createIntegration", "integration-scoped", map[string]any{"c": inline}},
		{"another connection's credential in an organization-wide slot", scBindMutation, "bindInstanceConnection", "customer-scoped connection",
			map[string]any{"in": map[string]any{"instanceID": inst, "slotKey": "org", "credentialID": custCred}}},
	}
	for _, tc := range cases {
		got := scRefused(t, env, tc.query, tc.vars, tc.path, "VALIDATION_FAILED")
		joined := strings.Join(got, "\n")
		if w := scopeEnumWord.FindString(joined); w != "" {
			t.Errorf("%s: a message names the scope %s: %s", tc.name, w, joined)
		}
		if !strings.Contains(joined, tc.words) {
			t.Errorf("%s: want a message naming %q: %s", tc.name, tc.words, joined)
		}
	}
}

// TestControlCharactersRefused: identifiers and display texts holding
// control characters are refused the same way on both databases, naming
// the field, and nothing is stored.
func TestControlCharactersRefused(t *testing.T) {
	servertest.EachDB(t, servertest.Config{Plugins: []string{"asana"}}, func(t *testing.T, env *servertest.Env) {
		acme := scCustomer(t, env, "cc-acme")
		ig := scIntegration(t, env, "cc-crm", "s:asana.apiKey")
		const customer = `mutation($e: String!, $n: String!) { createCustomer(input: {externalID: $e, name: $n}) { customer { id } userErrors { field code message } } }`
		cases := []struct {
			name, query, path, field string
			vars                     map[string]any
		}{
			{"a NUL in a customer's external id", customer, "createCustomer", "INVALID_VALUE externalID",
				map[string]any{"e": "nul\u0000id", "n": "Nul Ltd"}},
			{"a line break in a customer's external id", customer, "createCustomer", "INVALID_VALUE externalID",
				map[string]any{"e": "two\nlines", "n": "Two Lines Ltd"}},
			{"a bell in a customer's name", customer, "createCustomer", "INVALID_VALUE name",
				map[string]any{"e": "cc-bell", "n": "Bell\u0007 Ltd"}},
			{"a NUL in a user's external id", `mutation($c: ID!) { createUser(input: {customerID: $c, externalID: "u\u00001"}) { user { id } userErrors { field code message } } }`,
				"createUser", "INVALID_VALUE externalID", map[string]any{"c": acme}},
			{"a NUL in a connection's name", `mutation { createConnection(input: {typeKey: "asana.apiKey", stableKey: "cc-conn", name: "Asana\u0000", scope: CUSTOMER}) {
				connection { id } userErrors { field code message } } }`, "createConnection", "INVALID_VALUE name", nil},
			{"an escape in an integration's description", `mutation { createIntegration(input: {key: "cc-ig", name: "CC", description: "esc\u001b[0m", slots: []}) {
				integration { id } userErrors { field code message } } }`, "createIntegration", "INVALID_VALUE description", nil},
			{"a NUL in a slot's label", `mutation { createIntegration(input: {key: "cc-ig2", name: "CC", slots: [{key: "s", label: "S\u0000", typeKey: "asana.apiKey"}]}) {
				integration { id } userErrors { field code message } } }`, "createIntegration", "INVALID_VALUE slots.0.label", nil},
			{"a NUL in an instance's name", `mutation($i: ID!, $c: ID!) { createInstance(input: {integrationID: $i, customerID: $c, name: "inst\u0000"}) {
				instance { id } userErrors { field code message } } }`, "createInstance", "INVALID_VALUE name", map[string]any{"i": ig, "c": acme}},
			{"a NUL in a stable key", `mutation { createConnection(input: {typeKey: "asana.apiKey", stableKey: "cc\u0000key", name: "x", scope: CUSTOMER}) {
				connection { id } userErrors { field code message } } }`, "createConnection", "INVALID_VALUE stableKey", nil},
		}
		for _, tc := range cases {
			got := scRefused(t, env, tc.query, tc.vars, tc.path, "VALIDATION_FAILED")
			scHas(t, got, tc.field)
		}
		// Nothing was stored; display text keeps its tabs and line breaks.
		d := scOK(t, env, `{ customers(first: 100) { totalCount } connections(first: 100) { totalCount } integrations(first: 100) { totalCount } instances(first: 100) { totalCount } }`, nil)
		for path, want := range map[string]float64{"customers.totalCount": 1, "connections.totalCount": 1, "integrations.totalCount": 1, "instances.totalCount": 0} {
			if servertest.Get(d, path) != want {
				t.Errorf("%s = %v, want %v: %v", path, servertest.Get(d, path), want, d)
			}
		}
		d = scOK(t, env, customer, map[string]any{"e": "cc-ok", "n": "Two\tpart\nname"})
		if servertest.Str(d, "createCustomer.customer.id") == "" {
			t.Fatalf("a name with a tab and a line break: %v", d)
		}
	})
}
