package server_test

import (
	"strings"
	"testing"

	"github.com/plugboard/plugboard/internal/server/servertest"
)

// asanaTokenPattern is the Asana plugin's declared token pattern.
const asanaTokenPattern = `^[0-9]/[0-9A-Za-z:/._~+=-]{16,}$`

// userErrorsOf returns the save's userErrors by field ("values.apiKey").
func userErrorsOf(t *testing.T, r *servertest.Response) map[string]map[string]any {
	t.Helper()
	list, _ := servertest.Get(r.Data, "saveCredential.userErrors").([]any)
	out := map[string]map[string]any{}
	for _, e := range list {
		m := e.(map[string]any)
		var path []string
		for _, p := range m["field"].([]any) {
			path = append(path, p.(string))
		}
		out[strings.Join(path, ".")] = m
	}
	return out
}

// assertNoPattern fails if a response shows a declared pattern.
func assertNoPattern(t *testing.T, raw string, patterns ...string) {
	t.Helper()
	for _, p := range patterns {
		if strings.Contains(raw, p) || strings.Contains(raw, strings.ReplaceAll(p, `\`, `\\`)) {
			t.Errorf("the response shows the pattern %s: %s", p, raw)
		}
	}
	if strings.Contains(raw, "must match the pattern") {
		t.Errorf("the response speaks of a pattern: %s", raw)
	}
}

// A plugin's own message for a field reaches the user although the value
// also fails the declared pattern; a pattern failure without one gets the
// input's patternMessage; no pattern is shown; nothing is stored. A secret
// input of a type that tests through the host (Asana's token) is checked by
// the host alone, against its declaration: the plugin never sees it.
func TestSaveAnswersInWordsNotPatterns(t *testing.T) {
	env := servertest.Start(t, servertest.Config{Plugins: []string{"asana", "shopify", "postgres", "faulty"}})
	connID, custID := createAsanaConnection(t, env)
	val := func(k, v string) map[string]any { return map[string]any{"key": k, "value": v} }
	save := func(in map[string]any) *servertest.Response {
		r := env.Do(t, saveMutation, map[string]any{"in": in})
		if r.Code() != "VALIDATION_FAILED" {
			t.Fatalf("code = %q, want VALIDATION_FAILED: %s", r.Code(), r.Raw)
		}
		return r
	}

	r := save(map[string]any{"connectionID": connID, "customerID": custID, "values": []any{
		val("apiKey", "Bearer 2/1200000000000000/1200000000000001:0123456789abcdef0123456789abcdef")}})
	ue := userErrorsOf(t, r)
	wantKey := "This does not look like an Asana personal access token: it starts with a digit and a slash, such as 2/1200…:0123…."
	if e := ue["values.apiKey"]; e == nil || e["message"] != wantKey || e["code"] != "INVALID_VALUE" {
		t.Errorf("apiKey error %v, want INVALID_VALUE %q from the host's check: %s", e, wantKey, r.Raw)
	}
	if len(ue) != 1 {
		t.Errorf("userErrors %v, want one for apiKey", ue)
	}
	assertNoPattern(t, r.Raw, asanaTokenPattern)

	shop := env.Do(t, `mutation { createConnection(input: {typeKey: "shopify.apiKey", stableKey: "shop", name: "Shop", scope: ORGANIZATION_GLOBAL}) { connection { id } } }`, nil)
	mustOK(t, shop)
	r = save(map[string]any{"connectionID": servertest.Str(shop.Data, "createConnection.connection.id"), "values": []any{
		val("shop", "acme.myshopify.com"), val("accessToken", "shpat_0123456789abcdef")}})
	ue = userErrorsOf(t, r)
	if e := ue["values.shop"]; e == nil || e["message"] != "Enter only the store name (acme), not the domain (acme.myshopify.com)." || e["code"] != "PLUGIN_REJECTED" {
		t.Errorf("shop error %v, want the Shopify plugin's own message: %s", e, r.Raw)
	}
	if len(ue) != 1 {
		t.Errorf("userErrors %v, want one for shop", ue)
	}
	assertNoPattern(t, r.Raw, "^[a-z0-9][a-z0-9-]*$")

	pg := env.Do(t, `mutation { createConnection(input: {typeKey: "postgres.basic", stableKey: "pg", name: "PG", scope: ORGANIZATION_GLOBAL}) { connection { id } } }`, nil)
	mustOK(t, pg)
	r = save(map[string]any{"connectionID": servertest.Str(pg.Data, "createConnection.connection.id"), "values": []any{
		val("host", "db.example.com:5432"), val("database", "app"), val("user", "app")}})
	ue = userErrorsOf(t, r)
	want := "Enter one host name or IP address, such as db.example.com: no port, URL or socket path."
	if e := ue["values.host"]; e == nil || e["message"] != want || e["code"] != "INVALID_VALUE" {
		t.Errorf("host error %v, want INVALID_VALUE %q: %s", e, want, r.Raw)
	}
	assertNoPattern(t, r.Raw, "[A-Za-z0-9]")

	// A plugin that cannot answer: the static errors, with their codes.
	r = save(map[string]any{"connectionID": faultyConnection(t, env), "values": []any{
		val("mode", "panic"), val("count", "many")}})
	ue = userErrorsOf(t, r)
	if e := ue["values.count"]; e == nil || e["code"] != "INVALID_VALUE" || e["message"] != "Count must be a number." {
		t.Errorf("count error %v, want INVALID_VALUE from the static check: %s", e, r.Raw)
	}

	r = env.Do(t, `{ credentials { totalCount } }`, nil)
	if servertest.Get(r.Data, "credentials.totalCount") != float64(0) {
		t.Fatalf("a credential was stored: %s", r.Raw)
	}
}
