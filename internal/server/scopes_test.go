package server_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/plugboard/plugboard/ent"
	"github.com/plugboard/plugboard/internal/auth"
	"github.com/plugboard/plugboard/internal/connection"
	"github.com/plugboard/plugboard/internal/globalid"
	"github.com/plugboard/plugboard/internal/server"
	"github.com/plugboard/plugboard/internal/server/servertest"
)

// A second Asana token, accepted by the plugin's pattern (the fake Asana
// accepts only the canary).
const otherToken = "2/1200000000000000/1200000000000001:0123456789abcdef0123456789abcdef"

// scOK runs a query as the admin and fails on any error.
func scOK(t *testing.T, env *servertest.Env, q string, vars map[string]any) map[string]any {
	t.Helper()
	r := env.Do(t, q, vars)
	mustOK(t, r)
	return r.Data
}

// scUserErrors runs a mutation that must be refused with field errors and
// returns "code field.path message" lines of the payload at path.
func scRefused(t *testing.T, env *servertest.Env, q string, vars map[string]any, path, wantExt string) []string {
	t.Helper()
	r := env.Do(t, q, vars)
	if r.Code() != wantExt {
		t.Fatalf("want %s, got: %s", wantExt, r.Raw)
	}
	ues, _ := servertest.Get(r.Data, path+".userErrors").([]any)
	if len(ues) == 0 {
		t.Fatalf("no userErrors at %s: %s", path, r.Raw)
	}
	var out []string
	for _, u := range ues {
		m := u.(map[string]any)
		var f []string
		for _, p := range m["field"].([]any) {
			f = append(f, p.(string))
		}
		out = append(out, fmt.Sprintf("%s %s %s", m["code"], strings.Join(f, "."), m["message"]))
	}
	return out
}

func scHas(t *testing.T, got []string, prefix string, contains ...string) {
	t.Helper()
	for _, g := range got {
		if !strings.HasPrefix(g, prefix) {
			continue
		}
		ok := true
		for _, c := range contains {
			ok = ok && strings.Contains(g, c)
		}
		if ok {
			return
		}
	}
	t.Fatalf("no error %q containing %q in %q", prefix, contains, got)
}

func scConnection(t *testing.T, env *servertest.Env, typeKey, key, scope string, extra string) string {
	t.Helper()
	d := scOK(t, env, fmt.Sprintf(`mutation { createConnection(input: {typeKey: %q, stableKey: %q, name: %q, scope: %s %s}) {
		connection { id } userErrors { field code message } } }`, typeKey, key, key, scope, extra), nil)
	id := servertest.Str(d, "createConnection.connection.id")
	if id == "" {
		t.Fatalf("createConnection %s: %v", key, d)
	}
	return id
}

func scCustomer(t *testing.T, env *servertest.Env, ext string) string {
	t.Helper()
	d := scOK(t, env, `mutation($e: String!) { createCustomer(input: {externalID: $e, name: $e}) { customer { id } } }`, map[string]any{"e": ext})
	return servertest.Str(d, "createCustomer.customer.id")
}

func scUser(t *testing.T, env *servertest.Env, customerID, ext string) string {
	t.Helper()
	d := scOK(t, env, `mutation($c: ID!, $e: String!) { createUser(input: {customerID: $c, externalID: $e, email: "u@example.com"}) {
		user { id customer { id } } userErrors { code } } }`, map[string]any{"c": customerID, "e": ext})
	if servertest.Str(d, "createUser.user.customer.id") != customerID {
		t.Fatalf("createUser: %v", d)
	}
	return servertest.Str(d, "createUser.user.id")
}

// scIntegration creates an integration; slots are "key=connectionGID" or
// "key:typeKey".
func scIntegration(t *testing.T, env *servertest.Env, key string, slots ...string) string {
	t.Helper()
	var in []any
	for _, s := range slots {
		if k, conn, ok := strings.Cut(s, "="); ok {
			in = append(in, map[string]any{"key": k, "label": k, "connectionID": conn})
		} else {
			k, typ, _ := strings.Cut(s, ":")
			in = append(in, map[string]any{"key": k, "label": k, "typeKey": typ})
		}
	}
	d := scOK(t, env, `mutation($in: CreateIntegrationInput!) { createIntegration(input: $in) {
		integration { id } userErrors { field code message } } }`, map[string]any{"in": map[string]any{"key": key, "name": key, "slots": in}})
	id := servertest.Str(d, "createIntegration.integration.id")
	if id == "" {
		t.Fatalf("createIntegration: %v", d)
	}
	return id
}

const scInstanceFields = `id name environment configState needsDeploy deployedAt
	slots { slot { key connection { stableKey scope } } credential { id holder isTest } status }`

func scInstance(t *testing.T, env *servertest.Env, integrationID, customerID, name, environment string) map[string]any {
	t.Helper()
	d := scOK(t, env, `mutation($in: CreateInstanceInput!) { createInstance(input: $in) { instance { `+scInstanceFields+` } userErrors { code } } }`,
		map[string]any{"in": map[string]any{"integrationID": integrationID, "customerID": customerID, "name": name, "environment": environment}})
	inst, _ := servertest.Get(d, "createInstance.instance").(map[string]any)
	if inst == nil {
		t.Fatalf("createInstance: %v", d)
	}
	return inst
}

func scGetInstance(t *testing.T, env *servertest.Env, id string) map[string]any {
	t.Helper()
	d := scOK(t, env, `query($id: ID!) { node(id: $id) { ... on Instance { `+scInstanceFields+` } } }`, map[string]any{"id": id})
	return d["node"].(map[string]any)
}

// scSlot returns the slot of an instance by key.
func scSlot(t *testing.T, inst map[string]any, key string) map[string]any {
	t.Helper()
	for _, s := range inst["slots"].([]any) {
		m := s.(map[string]any)
		if m["slot"].(map[string]any)["key"] == key {
			return m
		}
	}
	t.Fatalf("no slot %s in %v", key, inst)
	return nil
}

func scSlotCred(t *testing.T, inst map[string]any, key string) string {
	t.Helper()
	c, _ := scSlot(t, inst, key)["credential"].(map[string]any)
	if c == nil {
		return ""
	}
	return c["id"].(string)
}

func scSave(t *testing.T, env *servertest.Env, in map[string]any) map[string]any {
	t.Helper()
	d := scOK(t, env, `mutation($in: SaveCredentialInput!) { saveCredential(input: $in) {
		credential { id status holder isTest customerID instanceID userID version }
		testResult { ok message } userErrors { field code message } } }`, map[string]any{"in": in})
	c, _ := servertest.Get(d, "saveCredential.credential").(map[string]any)
	if c == nil {
		t.Fatalf("saveCredential: %v", d)
	}
	return c
}

const scSaveMutation = `mutation($in: SaveCredentialInput!) { saveCredential(input: $in) { credential { id } userErrors { field code message } } }`

const scBindMutation = `mutation($in: BindInstanceConnectionInput!) { bindInstanceConnection(input: $in) {
	instance { id configState } userErrors { field code message } } }`

func scBind(t *testing.T, env *servertest.Env, instID, slot, credID string) map[string]any {
	t.Helper()
	d := scOK(t, env, scBindMutation, map[string]any{"in": map[string]any{"instanceID": instID, "slotKey": slot, "credentialID": credID}})
	return servertest.Get(d, "bindInstanceConnection.instance").(map[string]any)
}

func scVals(key, value string) []any {
	return []any{map[string]any{"key": key, "value": value}}
}

func scID(t *testing.T, gid string) int {
	t.Helper()
	id, err := globalid.Decode(gid)
	if err != nil {
		t.Fatal(err)
	}
	return id
}

func scOrg(t *testing.T, env *servertest.Env) *ent.Organization {
	t.Helper()
	org, err := server.EnsureOrganization(context.Background(), env.App.Store.Client, server.DefaultOrgSlug)
	if err != nil {
		t.Fatal(err)
	}
	return org
}

// scResolved returns the values a runtime would get for a credential.
func scResolved(t *testing.T, env *servertest.Env, credGID string) map[string]string {
	t.Helper()
	ctx := auth.SystemContext(context.Background())
	c, err := env.App.Store.Client.Credential.Get(ctx, scID(t, credGID))
	if err != nil {
		t.Fatal(err)
	}
	_, vals, err := env.App.Service.Resolved(ctx, c)
	if err != nil {
		t.Fatal(err)
	}
	return vals
}

// TestScopeOrganizationCustomer: ORG inputs are the organization's, saved
// once; CUSTOMER inputs each customer's; the customer's credential works
// with both, merged at read time.
func TestScopeOrganizationCustomer(t *testing.T) {
	servertest.EachDB(t, servertest.Config{Plugins: []string{"asana"}}, func(t *testing.T, env *servertest.Env) {
		asana, calls := fakeAsana(t)
		// apiKey is shown: CUSTOMER by default; baseUrl hidden: ORG.
		connID := scConnection(t, env, "asana.apiKey", "asana-oc", "ORGANIZATION_CUSTOMER", "")
		acme := scCustomer(t, env, "acme")

		// The organization may not set a customer's input, nor the reverse.
		got := scRefused(t, env, scSaveMutation, map[string]any{"in": map[string]any{
			"connectionID": connID, "values": scVals("apiKey", canary)}}, "saveCredential", "VALIDATION_FAILED")
		scHas(t, got, "WRONG_SOURCE values.apiKey", "customerID")
		got = scRefused(t, env, scSaveMutation, map[string]any{"in": map[string]any{
			"connectionID": connID, "customerID": acme, "values": scVals("baseUrl", asana.URL)}}, "saveCredential", "VALIDATION_FAILED")
		scHas(t, got, "WRONG_SOURCE values.baseUrl", "organization")

		// The organization's part: valid without the customers' apiKey.
		org := scSave(t, env, map[string]any{"connectionID": connID, "values": scVals("baseUrl", asana.URL)})
		if org["holder"] != "ORGANIZATION" || org["status"] != "ACTIVE" || org["customerID"] != nil {
			t.Fatalf("org credential: %v", org)
		}
		// The customer's part, tested live: the plugin got the org's baseUrl.
		cust := scSave(t, env, map[string]any{"connectionID": connID, "customerID": acme, "test": true, "values": scVals("apiKey", canary)})
		if cust["holder"] != "CUSTOMER" || cust["status"] != "ACTIVE" || calls.Load() != 1 {
			t.Fatalf("customer credential after %d calls: %v", calls.Load(), cust)
		}
		vals := scResolved(t, env, cust["id"].(string))
		if vals["baseUrl"] != asana.URL || vals["apiKey"] != canary {
			t.Fatalf("resolved: baseUrl=%q apiKey set=%v", vals["baseUrl"], vals["apiKey"] != "")
		}
		// Only each holder's own inputs are stored.
		r := env.Do(t, `query($id: ID!) { node(id: $id) { ... on Credential { values { key value isSet } } } }`, map[string]any{"id": cust["id"]})
		mustOK(t, r)
		if strings.Contains(r.Raw, asana.URL) {
			t.Fatalf("the customer's credential shows the org's values: %s", r.Raw)
		}
		// A change of the org's values reaches the customer at once.
		scSave(t, env, map[string]any{"connectionID": connID, "values": scVals("baseUrl", asana.URL+"/v2")})
		if vals := scResolved(t, env, cust["id"].(string)); vals["baseUrl"] != asana.URL+"/v2" {
			t.Fatalf("after the org update: baseUrl=%q", vals["baseUrl"])
		}
		assertNoCanary(t, env)
	})
}

// TestScopesInstancesAndConfigState: one integration with a slot of each
// customer-facing scope; the instance is configured once every slot has an
// ACTIVE credential; deleting it deletes its INTEGRATION credential.
func TestScopesInstancesAndConfigState(t *testing.T) {
	servertest.EachDB(t, servertest.Config{Plugins: []string{"asana"}}, func(t *testing.T, env *servertest.Env) {
		global := scConnection(t, env, "asana.apiKey", "asana-global", "ORGANIZATION_GLOBAL", "")
		cust := scConnection(t, env, "asana.apiKey", "asana-cust", "CUSTOMER", "")
		usr := scConnection(t, env, "asana.apiKey", "asana-user", "USER", "")
		ig := scIntegration(t, env, "crm", "global="+global, "cust="+cust, "inline:asana.apiKey", "user="+usr)
		acme := scCustomer(t, env, "acme")
		u1 := scUser(t, env, acme, "u1")

		d := scOK(t, env, `query($id: ID!) { node(id: $id) { ... on Integration { key connectionSlots { key position connection { stableKey scope } } } } }`, map[string]any{"id": ig})
		slots := servertest.Get(d, "node.connectionSlots").([]any)
		if len(slots) != 4 || servertest.Str(d, "node.connectionSlots.2.connection.stableKey") != "crm.inline" ||
			servertest.Str(d, "node.connectionSlots.2.connection.scope") != "INTEGRATION" || servertest.Str(d, "node.connectionSlots.0.key") != "global" {
			t.Fatalf("connectionSlots: %v", d)
		}
		d = scOK(t, env, `{ connections(where: {stableKey: "crm.inline"}) { edges { node { id } } } }`, nil)
		inline := servertest.Str(d, "connections.edges.0.node.id")

		inst := scInstance(t, env, ig, acme, "Acme CRM", "PRODUCTION")
		instID := inst["id"].(string)
		if inst["configState"] != "NEEDS_CONFIGURATION" || len(inst["slots"].([]any)) != 4 || scSlotCred(t, inst, "global") != "" {
			t.Fatalf("new instance: %v", inst)
		}

		// ORGANIZATION_GLOBAL: one credential, no customer.
		got := scRefused(t, env, scSaveMutation, map[string]any{"in": map[string]any{
			"connectionID": global, "customerID": acme, "values": scVals("apiKey", otherToken)}}, "saveCredential", "VALIDATION_FAILED")
		scHas(t, got, "INVALID_VALUE customerID")
		g := scSave(t, env, map[string]any{"connectionID": global, "values": scVals("apiKey", otherToken)})
		// CUSTOMER: the customer's, used by the slot without a binding.
		asana, _ := fakeAsana(t) // it refuses every token but the canary
		c := scSave(t, env, map[string]any{"connectionID": cust, "customerID": acme, "values": []any{
			map[string]any{"key": "apiKey", "value": otherToken}, map[string]any{"key": "baseUrl", "value": asana.URL}}})
		// INTEGRATION: only through an instance.
		got = scRefused(t, env, scSaveMutation, map[string]any{"in": map[string]any{
			"connectionID": inline, "customerID": acme, "values": scVals("apiKey", otherToken)}}, "saveCredential", "VALIDATION_FAILED")
		scHas(t, got, "INVALID_VALUE customerID")
		got = scRefused(t, env, scSaveMutation, map[string]any{"in": map[string]any{
			"connectionID": inline, "values": scVals("apiKey", otherToken)}}, "saveCredential", "VALIDATION_FAILED")
		scHas(t, got, "REQUIRED instanceID")
		ic := scSave(t, env, map[string]any{"connectionID": inline, "instanceID": instID, "values": scVals("apiKey", otherToken)})
		if ic["holder"] != "INSTANCE" || ic["instanceID"] != instID || ic["customerID"] != acme {
			t.Fatalf("instance credential: %v", ic)
		}
		// USER: per user.
		got = scRefused(t, env, scSaveMutation, map[string]any{"in": map[string]any{
			"connectionID": usr, "values": scVals("apiKey", otherToken)}}, "saveCredential", "VALIDATION_FAILED")
		scHas(t, got, "REQUIRED userID")
		uc := scSave(t, env, map[string]any{"connectionID": usr, "userID": u1, "values": scVals("apiKey", otherToken)})
		if uc["holder"] != "USER" || uc["userID"] != u1 {
			t.Fatalf("user credential: %v", uc)
		}

		inst = scGetInstance(t, env, instID)
		if scSlotCred(t, inst, "global") != g["id"] || scSlotCred(t, inst, "cust") != c["id"] || scSlotCred(t, inst, "inline") != ic["id"] {
			t.Fatalf("slots after the saves: %v", inst)
		}
		if inst["configState"] != "NEEDS_CONFIGURATION" || scSlotCred(t, inst, "user") != "" {
			t.Fatalf("the USER slot needs a binding: %v", inst)
		}
		// A credential of another connection or customer does not bind.
		r := env.Do(t, scBindMutation, map[string]any{"in": map[string]any{"instanceID": instID, "slotKey": "user", "credentialID": g["id"]}})
		if r.Code() != "VALIDATION_FAILED" {
			t.Fatalf("binding another connection's credential: %s", r.Raw)
		}
		if b := scBind(t, env, instID, "user", uc["id"].(string)); b["configState"] != "CONFIGURED" {
			t.Fatalf("after binding the last slot: %v", b)
		}
		// A status change it can see sets it back (a failed live test).
		if ok := scResolved(t, env, c["id"].(string))["apiKey"] == otherToken; !ok {
			t.Fatal("customer values")
		}
		r = env.Do(t, `mutation($id: ID!) { testCredential(id: $id) { credential { status } result { ok } } }`, map[string]any{"id": c["id"]})
		mustOK(t, r)
		if servertest.Str(r.Data, "testCredential.credential.status") != "ERROR" {
			t.Fatalf("a test with a refused token should fail: %s", r.Raw)
		}
		if inst = scGetInstance(t, env, instID); inst["configState"] != "NEEDS_CONFIGURATION" || scSlot(t, inst, "cust")["status"] != "ERROR" {
			t.Fatalf("after the credential went to ERROR: %v", inst)
		}
		scSave(t, env, map[string]any{"connectionID": cust, "customerID": acme, "values": scVals("apiKey", otherToken+"0")})
		if inst = scGetInstance(t, env, instID); inst["configState"] != "CONFIGURED" {
			t.Fatalf("after a good save: %v", inst)
		}
		d = scOK(t, env, `mutation($id: ID!) { deployInstance(id: $id) { instance { deployedAt needsDeploy configState } userErrors { code } } }`, map[string]any{"id": instID})
		if servertest.Get(d, "deployInstance.instance.deployedAt") == nil {
			t.Fatalf("deploy: %v", d)
		}

		// Deleting the instance deletes its INTEGRATION credential only.
		d = scOK(t, env, `mutation($id: ID!) { deleteInstance(id: $id) { deletedID userErrors { code } } }`, map[string]any{"id": instID})
		if servertest.Str(d, "deleteInstance.deletedID") != instID {
			t.Fatalf("deleteInstance: %v", d)
		}
		for id, want := range map[string]string{instID: "NOT_FOUND", ic["id"].(string): "NOT_FOUND", c["id"].(string): "", uc["id"].(string): "", g["id"].(string): ""} {
			r := env.Do(t, `query($id: ID!) { node(id: $id) { id } }`, map[string]any{"id": id})
			if r.Code() != want {
				t.Errorf("node(%s) after deleteInstance: %s", id, r.Raw)
			}
		}
	})
}

// TestBuildOnlyAndTestCredentials: build-only connections serve only TEST
// instances; test credentials serve TEST instances and never PRODUCTION.
func TestBuildOnlyAndTestCredentials(t *testing.T) {
	servertest.EachDB(t, servertest.Config{Plugins: []string{"asana"}}, func(t *testing.T, env *servertest.Env) {
		dev := scConnection(t, env, "asana.apiKey", "asana-dev", "CUSTOMER", "buildOnly: true")
		global := scConnection(t, env, "asana.apiKey", "asana-global", "ORGANIZATION_GLOBAL", "")
		ig := scIntegration(t, env, "sync", "dev="+dev, "global="+global)
		acme := scCustomer(t, env, "acme")
		prod := scInstance(t, env, ig, acme, "Acme prod", "PRODUCTION")["id"].(string)
		test := scInstance(t, env, ig, acme, "Acme test", "TEST")["id"].(string)

		dc := scSave(t, env, map[string]any{"connectionID": dev, "customerID": acme, "values": scVals("apiKey", otherToken)})
		real := scSave(t, env, map[string]any{"connectionID": global, "values": scVals("apiKey", otherToken)})
		tc := scSave(t, env, map[string]any{"connectionID": global, "isTest": true, "values": scVals("apiKey", otherToken+"1")})
		if tc["isTest"] != true || tc["id"] == real["id"] {
			t.Fatalf("test credential: %v", tc)
		}

		// Binding or deploying the build-only connection on PRODUCTION.
		got := scRefused(t, env, scBindMutation, map[string]any{"in": map[string]any{"instanceID": prod, "slotKey": "dev", "credentialID": dc["id"]}},
			"bindInstanceConnection", "VALIDATION_FAILED")
		scHas(t, got, "BUILD_ONLY credentialID", `"asana-dev"`, "build-only", "TEST")
		got = scRefused(t, env, `mutation($id: ID!) { deployInstance(id: $id) { instance { id } userErrors { field code message } } }`,
			map[string]any{"id": prod}, "deployInstance", "VALIDATION_FAILED")
		scHas(t, got, "BUILD_ONLY slots.dev", `"asana-dev"`)
		p := scGetInstance(t, env, prod)
		if p["configState"] != "NEEDS_CONFIGURATION" || p["deployedAt"] != nil {
			t.Fatalf("PRODUCTION instance: %v", p)
		}
		// The PRODUCTION instance uses the real org credential.
		if scSlotCred(t, p, "global") != real["id"] {
			t.Fatalf("PRODUCTION global slot: %v", p)
		}
		// A test credential never binds to PRODUCTION.
		got = scRefused(t, env, scBindMutation, map[string]any{"in": map[string]any{"instanceID": prod, "slotKey": "global", "credentialID": tc["id"]}},
			"bindInstanceConnection", "VALIDATION_FAILED")
		scHas(t, got, "TEST_CREDENTIAL credentialID", `"asana-global"`)

		// On TEST all is well: the test credential serves it.
		if b := scBind(t, env, test, "dev", dc["id"].(string)); b["configState"] != "CONFIGURED" {
			t.Fatalf("TEST instance after binding: %v", b)
		}
		ti := scGetInstance(t, env, test)
		if scSlotCred(t, ti, "global") != tc["id"] {
			t.Fatalf("TEST instance should use the test credential: %v", ti)
		}
		// Even when bound to the real one.
		scBind(t, env, test, "global", real["id"].(string))
		if ti = scGetInstance(t, env, test); scSlotCred(t, ti, "global") != tc["id"] {
			t.Fatalf("TEST instance bound to the real credential: %v", ti)
		}
		d := scOK(t, env, `mutation($id: ID!) { deployInstance(id: $id) { instance { deployedAt } userErrors { code } } }`, map[string]any{"id": test})
		if servertest.Get(d, "deployInstance.instance.deployedAt") == nil {
			t.Fatalf("deploying TEST: %v", d)
		}
	})
}

// TestTemplatesAndUsage: template presets fill what a credential leaves
// empty, secrets sealed and never returned; the usage of a connection
// follows an org update with needsDeploy; a connection in use is not
// deleted.
func TestTemplatesAndUsage(t *testing.T) {
	servertest.EachDB(t, servertest.Config{Plugins: []string{"asana", "slack"}}, func(t *testing.T, env *servertest.Env) {
		const presetSecret = "PRESETsecretCANARY-42"
		d := scOK(t, env, `mutation($in: CreateConnectionTemplateInput!) { createConnectionTemplate(input: $in) {
			template { id name type { key } } userErrors { field code message } } }`, map[string]any{"in": map[string]any{
			"typeKey": "slack.oauth2", "name": "Our Slack app",
			"presets": []any{map[string]any{"key": "clientId", "value": "123.456"}, map[string]any{"key": "clientSecret", "value": presetSecret}},
		}})
		tmpl := servertest.Str(d, "createConnectionTemplate.template.id")
		if tmpl == "" || servertest.Str(d, "createConnectionTemplate.template.type.key") != "slack.oauth2" {
			t.Fatalf("createConnectionTemplate: %v", d)
		}
		// A template of another type is refused.
		got := scRefused(t, env, `mutation($t: ID!) { createConnection(input: {typeKey: "asana.apiKey", stableKey: "x", name: "x", templateID: $t}) {
			connection { id } userErrors { field code message } } }`, map[string]any{"t": tmpl}, "createConnection", "VALIDATION_FAILED")
		scHas(t, got, "INVALID_VALUE templateID")

		slack := scConnection(t, env, "slack.oauth2", "slack", "ORGANIZATION_GLOBAL", fmt.Sprintf("templateID: %q", tmpl))
		// Required clientId and clientSecret come from the presets.
		sc := scSave(t, env, map[string]any{"connectionID": slack, "values": []any{}})
		if sc["status"] != "PENDING" {
			t.Fatalf("slack credential: %v", sc)
		}
		vals := scResolved(t, env, sc["id"].(string))
		if vals["clientId"] != "123.456" || vals["clientSecret"] != presetSecret {
			t.Fatalf("presets not resolved: clientId=%q", vals["clientId"])
		}
		// The credential's own value wins over the preset.
		scSave(t, env, map[string]any{"connectionID": slack, "values": scVals("clientId", "999.1")})
		if vals = scResolved(t, env, sc["id"].(string)); vals["clientId"] != "999.1" || vals["clientSecret"] != presetSecret {
			t.Fatalf("own value over preset: clientId=%q", vals["clientId"])
		}
		if strings.Contains(env.AllBodies(), presetSecret) || strings.Contains(env.Logs.String(), presetSecret) {
			t.Fatal("the secret preset came back in a response or a log")
		}
		var sealed []byte
		if err := env.App.Store.DB.QueryRowContext(context.Background(), `SELECT secret_presets FROM connection_templates`).Scan(&sealed); err != nil {
			t.Fatal(err)
		}
		if len(sealed) < 30 || strings.Contains(string(sealed), presetSecret) {
			t.Fatal("the secret preset is not sealed at rest")
		}

		// Usage of a reusable ORGANIZATION_CUSTOMER connection.
		asana, _ := fakeAsana(t)
		shared := scConnection(t, env, "asana.apiKey", "asana-shared", "ORGANIZATION_CUSTOMER", "")
		ig := scIntegration(t, env, "tasks", "asana="+shared)
		scSave(t, env, map[string]any{"connectionID": shared, "values": scVals("baseUrl", asana.URL)})
		var insts []string
		for _, name := range []string{"acme", "globex"} {
			c := scCustomer(t, env, name)
			scSave(t, env, map[string]any{"connectionID": shared, "customerID": c, "values": scVals("apiKey", otherToken)})
			inst := scInstance(t, env, ig, c, name+" tasks", "PRODUCTION")
			if inst["configState"] != "CONFIGURED" {
				t.Fatalf("ORGANIZATION_CUSTOMER slot resolved without binding: %v", inst)
			}
			insts = append(insts, inst["id"].(string))
		}
		const usageQuery = `query($id: ID!) { connectionUsage(connectionID: $id) {
			connection { stableKey } integrations { key } customers { externalID }
			instances { instance { id name } customer { externalID } slotKey credential { holder } needsDeploy } } }`
		usage := func() map[string]any {
			return scOK(t, env, usageQuery, map[string]any{"id": shared})["connectionUsage"].(map[string]any)
		}
		// Never deployed: each instance needs its first deploy.
		for _, iu := range usage()["instances"].([]any) {
			if m := iu.(map[string]any); m["needsDeploy"] != true {
				t.Fatalf("an instance never deployed: %v", m)
			}
		}
		for _, inst := range insts {
			scOK(t, env, `mutation($id: ID!) { deployInstance(id: $id) { instance { id } } }`, map[string]any{"id": inst})
		}
		// Another organization's admin gets the answer node gives: NOT_FOUND.
		orgB, err := server.EnsureOrganization(context.Background(), env.App.Store.Client, "usage-other-org")
		if err != nil {
			t.Fatal(err)
		}
		adminB, _, err := env.App.Tokens.Create(context.Background(), orgB.ID, auth.RoleOrgAdmin, "other admin")
		if err != nil {
			t.Fatal(err)
		}
		for _, q := range []string{usageQuery, `query($id: ID!) { node(id: $id) { id } }`} {
			if r := env.DoAs(t, adminB, q, map[string]any{"id": shared}); r.Code() != "NOT_FOUND" || strings.Contains(r.Raw, "asana-shared") {
				t.Fatalf("another organization's admin: want NOT_FOUND, got %s", r.Raw)
			}
		}
		u := usage()
		if len(u["integrations"].([]any)) != 1 || len(u["customers"].([]any)) != 2 || len(u["instances"].([]any)) != 2 {
			t.Fatalf("usage: %v", u)
		}
		for _, iu := range u["instances"].([]any) {
			m := iu.(map[string]any)
			if m["needsDeploy"] != false || m["slotKey"] != "asana" || m["credential"].(map[string]any)["holder"] != "CUSTOMER" {
				t.Fatalf("instance usage before the update: %v", m)
			}
		}
		// The organization's values change: every deployed instance must
		// be deployed again.
		scSave(t, env, map[string]any{"connectionID": shared, "values": scVals("baseUrl", asana.URL+"/v2")})
		for _, iu := range usage()["instances"].([]any) {
			if m := iu.(map[string]any); m["needsDeploy"] != true {
				t.Fatalf("instance usage after the update: %v", m)
			}
		}
		scOK(t, env, `mutation($id: ID!) { deployInstance(id: $id) { instance { id } } }`, map[string]any{"id": insts[0]})
		if m := usage()["instances"].([]any)[0].(map[string]any); m["needsDeploy"] != false {
			t.Fatalf("after deploying again: %v", m)
		}

		// In use: refused, naming the integration and its instances.
		got = scRefused(t, env, `mutation($id: ID!) { deleteConnection(id: $id) { deletedID userErrors { field code message } } }`,
			map[string]any{"id": shared}, "deleteConnection", "CONFLICT")
		scHas(t, got, "IN_USE id", "integration tasks", `"acme tasks"`, `"globex tasks"`)
	})
}

// TestCustomerUserRules drives the service as a customer's user, as its
// embedding token will.
func TestCustomerUserRules(t *testing.T) {
	servertest.EachDB(t, servertest.Config{Plugins: []string{"asana"}}, func(t *testing.T, env *servertest.Env) {
		cust := scConnection(t, env, "asana.apiKey", "asana-cust", "CUSTOMER", "")
		global := scConnection(t, env, "asana.apiKey", "asana-global", "ORGANIZATION_GLOBAL", "")
		oc := scConnection(t, env, "asana.apiKey", "asana-oc", "ORGANIZATION_CUSTOMER", "")
		usr := scConnection(t, env, "asana.apiKey", "asana-user", "USER", "")
		ig := scIntegration(t, env, "crm", "cust="+cust, "inline:asana.apiKey", "user="+usr)
		acme, globex := scCustomer(t, env, "acme"), scCustomer(t, env, "globex")
		u1, u2 := scUser(t, env, acme, "u1"), scUser(t, env, acme, "u2")
		mine := scInstance(t, env, ig, acme, "mine", "PRODUCTION")["id"].(string)
		theirs := scInstance(t, env, ig, globex, "theirs", "PRODUCTION")["id"].(string)
		d := scOK(t, env, `{ connections(where: {stableKey: "crm.inline"}) { edges { node { id } } } }`, nil)
		inline := scID(t, servertest.Str(d, "connections.edges.0.node.id"))
		otherUserCred := scSave(t, env, map[string]any{"connectionID": usr, "userID": u2, "values": scVals("apiKey", otherToken)})

		svc := env.App.Service
		org := scOrg(t, env)
		ctx := auth.NewContext(context.Background(), &auth.Viewer{Role: auth.RoleCustomerUser, OrganizationID: org.ID,
			CustomerID: scID(t, acme), UserID: scID(t, u1), Actor: "user:u1"})
		tok := otherToken
		save := func(in connection.SaveCredentialInput) (*ent.Credential, error) {
			c, _, err := svc.SaveCredential(ctx, in)
			return c, err
		}
		fieldCode := func(t *testing.T, err error, code string, field ...string) {
			t.Helper()
			var ve *connection.ValidationError
			if !errors.As(err, &ve) {
				t.Fatalf("want %s on %v, got %v", code, field, err)
			}
			for _, f := range ve.Fields {
				if f.Code == code && strings.Join(f.Field, ".") == strings.Join(field, ".") {
					return
				}
			}
			t.Fatalf("want %s on %v, got %v", code, field, ve)
		}
		apiKey := []connection.ValueInput{{Key: "apiKey", Value: &tok}}
		baseURL := "https://proxy.example.com"

		// CUSTOMER: its own customer (the default), shown inputs only.
		c, err := save(connection.SaveCredentialInput{ConnectionID: scID(t, cust), Values: apiKey})
		if err != nil || c.CustomerID == nil || *c.CustomerID != scID(t, acme) {
			t.Fatalf("own CUSTOMER credential: %v %v", c, err)
		}
		_, err = save(connection.SaveCredentialInput{ConnectionID: scID(t, cust), Values: []connection.ValueInput{{Key: "baseUrl", Value: &baseURL}}})
		fieldCode(t, err, connection.CodeForbidden, "values", "baseUrl")
		_, err = save(connection.SaveCredentialInput{ConnectionID: scID(t, cust), CustomerID: scID(t, globex), Values: apiKey})
		fieldCode(t, err, connection.CodeNotFound, "customerID")
		_, err = save(connection.SaveCredentialInput{ConnectionID: scID(t, cust), IsTest: true, Values: apiKey})
		fieldCode(t, err, connection.CodeForbidden, "isTest")
		// ORGANIZATION_*: as if they did not exist.
		for _, id := range []string{global, oc} {
			_, err = save(connection.SaveCredentialInput{ConnectionID: scID(t, id), Values: apiKey})
			fieldCode(t, err, connection.CodeNotFound, "connectionID")
			_, err = save(connection.SaveCredentialInput{ConnectionID: scID(t, id), CustomerID: scID(t, acme), Values: apiKey})
			fieldCode(t, err, connection.CodeNotFound, "connectionID")
		}
		// INTEGRATION: its own instances only.
		ic, err := save(connection.SaveCredentialInput{ConnectionID: inline, InstanceID: scID(t, mine), Values: apiKey})
		if err != nil || ic.Holder != "INSTANCE" {
			t.Fatalf("own INTEGRATION credential: %v %v", ic, err)
		}
		_, err = save(connection.SaveCredentialInput{ConnectionID: inline, InstanceID: scID(t, theirs), Values: apiKey})
		fieldCode(t, err, connection.CodeNotFound, "instanceID")
		// USER: itself only.
		uc, err := save(connection.SaveCredentialInput{ConnectionID: scID(t, usr), Values: apiKey})
		if err != nil || uc.UserID == nil || *uc.UserID != scID(t, u1) {
			t.Fatalf("own USER credential: %v %v", uc, err)
		}
		_, err = save(connection.SaveCredentialInput{ConnectionID: scID(t, usr), UserID: scID(t, u2), Values: apiKey})
		fieldCode(t, err, connection.CodeNotFound, "userID")

		// Binding: its own instance, with its own credentials.
		_, err = svc.BindInstanceConnection(ctx, connection.BindInput{InstanceID: scID(t, mine), SlotKey: "user", CredentialID: scID(t, otherUserCred["id"].(string))})
		fieldCode(t, err, connection.CodeNotFound, "credentialID")
		_, err = svc.BindInstanceConnection(ctx, connection.BindInput{InstanceID: scID(t, theirs), SlotKey: "user", CredentialID: uc.ID})
		fieldCode(t, err, connection.CodeNotFound, "instanceID")
		inst, err := svc.BindInstanceConnection(ctx, connection.BindInput{InstanceID: scID(t, mine), SlotKey: "user", CredentialID: uc.ID})
		if err != nil || inst.ConfigState != "CONFIGURED" {
			t.Fatalf("binding its own: %v %v", inst, err)
		}

		// Everything else is the admin's.
		if _, err := svc.CreateIntegration(ctx, connection.CreateIntegrationInput{Key: "x", Name: "x"}); !errors.Is(err, auth.ErrForbidden) {
			t.Fatalf("createIntegration as a customer: %v", err)
		}
		if _, err := svc.DeployInstance(ctx, scID(t, mine)); !errors.Is(err, auth.ErrForbidden) {
			t.Fatalf("deployInstance as a customer: %v", err)
		}
		if err := svc.DeleteInstance(ctx, scID(t, mine)); !errors.Is(err, auth.ErrForbidden) {
			t.Fatalf("deleteInstance as a customer: %v", err)
		}
		if _, err := svc.ConnectionUsage(ctx, scID(t, cust)); !errors.Is(err, auth.ErrForbidden) {
			t.Fatalf("connectionUsage as a customer: %v", err)
		}
	})
}

// TestRejectedSaveKeepsItsErrors: the field errors of a rejected save of
// an existing credential are kept for the wizard, the values are not; a
// good save clears them.
func TestRejectedSaveKeepsItsErrors(t *testing.T) {
	servertest.EachDB(t, servertest.Config{Plugins: []string{"asana"}}, func(t *testing.T, env *servertest.Env) {
		connID, custID := createAsanaConnection(t, env)
		c := scSave(t, env, map[string]any{"connectionID": connID, "customerID": custID, "values": scVals("apiKey", otherToken)})
		sys := auth.SystemContext(context.Background())
		db := env.App.Store.Client
		before, err := db.Credential.Get(sys, scID(t, c["id"].(string)))
		if err != nil {
			t.Fatal(err)
		}
		const bad = "Bearer not-a-token"
		got := scRefused(t, env, scSaveMutation, map[string]any{"in": map[string]any{
			"connectionID": connID, "customerID": custID, "values": scVals("apiKey", bad)}}, "saveCredential", "VALIDATION_FAILED")
		scHas(t, got, "INVALID_VALUE values.apiKey") // the host's check: Asana never sees the token
		after, err := db.Credential.Get(sys, before.ID)
		if err != nil {
			t.Fatal(err)
		}
		if after.Version != before.Version || string(after.Secrets) != string(before.Secrets) || len(after.LastErrors) == 0 ||
			strings.Join(after.LastErrors[0].Field, ".") != "values.apiKey" || after.LastErrors[0].Code != "INVALID_VALUE" {
			t.Fatalf("after the rejected save: version %d→%d, last errors %v", before.Version, after.Version, after.LastErrors)
		}
		var raw string
		if err := env.App.Store.DB.QueryRowContext(context.Background(), `SELECT last_errors FROM credentials WHERE id = `+fmt.Sprint(before.ID)).Scan(&raw); err != nil {
			t.Fatal(err)
		}
		if strings.Contains(raw, "not-a-token") {
			t.Fatal("last_errors holds the rejected value")
		}
		scSave(t, env, map[string]any{"connectionID": connID, "customerID": custID, "values": scVals("apiKey", otherToken+"2")})
		if after, _ = db.Credential.Get(sys, before.ID); len(after.LastErrors) != 0 {
			t.Fatalf("a good save keeps last errors: %v", after.LastErrors)
		}
	})
}
