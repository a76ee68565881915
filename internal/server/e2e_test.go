package server_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/plugboard/plugboard/internal/server/servertest"
)

// canary is a secret value that must never come back in a response, a log
// line or an error.
const canary = "2/1200canary7f3a9c/1201:CANARYdeadbeef0042"

// fakeAsana answers GET /users/me like Asana for the canary token.
func fakeAsana(t *testing.T) (*httptest.Server, *atomic.Int64) {
	var calls atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		if r.URL.Path != "/users/me" {
			http.NotFound(w, r)
			return
		}
		if r.Header.Get("Authorization") != "Bearer "+canary {
			w.WriteHeader(http.StatusUnauthorized)
			_, _ = w.Write([]byte(`{"errors":[{"message":"Not Authorized"}]}`))
			return
		}
		_, _ = w.Write([]byte(`{"data":{"gid":"1","name":"Ada Lovelace"}}`))
	}))
	t.Cleanup(srv.Close)
	return srv, &calls
}

func mustOK(t *testing.T, r *servertest.Response) {
	t.Helper()
	if len(r.Errors) > 0 || r.Status != http.StatusOK {
		t.Fatalf("unexpected errors (%d): %s", r.Status, r.Raw)
	}
}

func createAsanaConnection(t *testing.T, env *servertest.Env) (connID, customerID string) {
	t.Helper()
	r := env.Do(t, `mutation { createConnection(input: {typeKey: "asana.apiKey", stableKey: "asana", name: "Asana", scope: CUSTOMER}) {
		connection { id stableKey scope buildOnly type { key authKind } } userErrors { field code message } } }`, nil)
	mustOK(t, r)
	connID = servertest.Str(r.Data, "createConnection.connection.id")
	if connID == "" || servertest.Str(r.Data, "createConnection.connection.type.key") != "asana.apiKey" {
		t.Fatalf("createConnection: %s", r.Raw)
	}
	r = env.Do(t, `mutation { createCustomer(input: {externalID: "acme", name: "Acme"}) { customer { id externalID } userErrors { code } } }`, nil)
	mustOK(t, r)
	return connID, servertest.Str(r.Data, "createCustomer.customer.id")
}

const saveMutation = `mutation($in: SaveCredentialInput!) { saveCredential(input: $in) {
	credential { id status statusDetail version values { key value secret isSet updatedAt } }
	testResult { ok message }
	userErrors { field code message } } }`

func TestCatalogDeclaresEveryAttribute(t *testing.T) {
	env := servertest.Start(t, servertest.Config{Plugins: []string{"asana", "slack", "postgres", "shopify"}})
	r := env.Do(t, `{
		plugins(orderBy: {field: NAME}) { totalCount edges { node { name key version sha256 protocolVersion status lastError
			connectionTypes { key } } } }
		connectionTypes(first: 50, orderBy: {field: KEY}) { totalCount edges { node {
			key label description iconURL authKind schemaVersion available plugin { name status }
			inputs { key label type required default example placeholder description shown secret
				options { value label } pattern patternMessage collection onPremControlled template }
			oauth2 { authorizeURL tokenURL revokeURL scopes scopeSeparator pkceMethod authStyle clientIDInput clientSecretInput }
		} } }
	}`, nil)
	mustOK(t, r)
	if n := servertest.Get(r.Data, "plugins.totalCount"); n != float64(4) {
		t.Fatalf("plugins.totalCount = %v, want 4: %s", n, r.Raw)
	}
	for i := 0; i < 4; i++ {
		p := servertest.Get(r.Data, fmt.Sprintf("plugins.edges.%d.node", i)).(map[string]any)
		if p["status"] != "LOADED" || p["protocolVersion"] != float64(1) || len(p["sha256"].(string)) != 64 {
			t.Errorf("plugin %v: %v", p["name"], p)
		}
	}
	types := map[string]map[string]any{}
	for _, e := range servertest.Get(r.Data, "connectionTypes.edges").([]any) {
		n := e.(map[string]any)["node"].(map[string]any)
		types[n["key"].(string)] = n
	}
	input := func(typeKey, key string) map[string]any {
		t.Helper()
		ct, ok := types[typeKey]
		if !ok {
			t.Fatalf("type %s not declared; have %v", typeKey, keys(types))
		}
		for _, in := range ct["inputs"].([]any) {
			if m := in.(map[string]any); m["key"] == key {
				return m
			}
		}
		t.Fatalf("type %s has no input %s", typeKey, key)
		return nil
	}
	// asana: a secret, required, patterned token; a hidden URL with a default.
	if ct := types["asana.apiKey"]; ct["authKind"] != "API_KEY" || ct["plugin"].(map[string]any)["name"] != "asana" {
		t.Errorf("asana type: %v", ct)
	}
	if in := input("asana.apiKey", "apiKey"); in["secret"] != true || in["required"] != true || in["type"] != "PASSWORD" || in["pattern"] == nil {
		t.Errorf("asana apiKey: %v", in)
	}
	// Every input with a pattern says in words what it expects.
	for typeKey, ct := range types {
		for _, raw := range ct["inputs"].([]any) {
			in := raw.(map[string]any)
			if p, _ := in["pattern"].(string); p != "" {
				if m, _ := in["patternMessage"].(string); m == "" || strings.Contains(m, p) {
					t.Errorf("%s input %s: patternMessage %q for pattern %s", typeKey, in["key"], m, p)
				}
			}
		}
	}
	if m := input("asana.apiKey", "apiKey")["patternMessage"]; m != "This does not look like an Asana personal access token: it starts with a digit and a slash, such as 2/1200…:0123…." {
		t.Errorf("asana apiKey patternMessage: %v", m)
	}
	if in := input("asana.apiKey", "baseUrl"); in["shown"] != false || in["default"] != "https://app.asana.com/api/1.0" || in["type"] != "URL" {
		t.Errorf("asana baseUrl: %v", in)
	}
	// slack: OAuth 2.0 with a complete spec over hidden inputs.
	sl := types["slack.oauth2"]
	if sl["authKind"] != "OAUTH2_AUTHORIZATION_CODE" {
		t.Errorf("slack authKind: %v", sl["authKind"])
	}
	o := sl["oauth2"].(map[string]any)
	if o["authorizeURL"] != "{{#authorizeUrl}}" || o["tokenURL"] != "{{#tokenUrl}}" || o["pkceMethod"] != "S256" || o["clientIDInput"] != "clientId" {
		t.Errorf("slack oauth2: %v", o)
	}
	if in := input("slack.oauth2", "clientSecret"); in["secret"] != true || in["shown"] != false {
		t.Errorf("slack clientSecret: %v", in)
	}
	// postgres: a picklist and on-premise controlled host and port.
	if in := input("postgres.basic", "sslmode"); in["type"] != "PICKLIST" || len(in["options"].([]any)) < 3 {
		t.Errorf("postgres sslmode: %v", in)
	}
	if in := input("postgres.basic", "host"); in["onPremControlled"] != true {
		t.Errorf("postgres host: %v", in)
	}
	// shopify: a template naming another input.
	var tmpl map[string]any
	for _, in := range types["shopify.apiKey"]["inputs"].([]any) {
		if m := in.(map[string]any); m["type"] == "TEMPLATE" {
			tmpl = m
		}
	}
	if tmpl == nil || !strings.Contains(tmpl["template"].(string), "{{#shop}}") {
		t.Errorf("shopify template input: %v", tmpl)
	}
	for key, ct := range types {
		for _, in := range ct["inputs"].([]any) {
			m := in.(map[string]any)
			if m["collection"] == nil || m["type"] == nil {
				t.Errorf("%s.%s lacks type or collection: %v", key, m["key"], m)
			}
		}
	}
	// connectionType(key) finds one type; an unknown key is null.
	r = env.Do(t, `{ a: connectionType(key: "asana.apiKey") { key } b: connectionType(key: "nope") { key } }`, nil)
	mustOK(t, r)
	if servertest.Str(r.Data, "a.key") != "asana.apiKey" || servertest.Get(r.Data, "b") != nil {
		t.Errorf("connectionType(key): %s", r.Raw)
	}
}

func keys(m map[string]map[string]any) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

func TestCredentialLifecycle(t *testing.T) {
	servertest.EachDB(t, servertest.Config{Plugins: []string{"asana"}}, func(t *testing.T, env *servertest.Env) {
		asana, calls := fakeAsana(t)
		connID, custID := createAsanaConnection(t, env)

		// Save with a live test against the fake Asana.
		r := env.Do(t, saveMutation, map[string]any{"in": map[string]any{
			"connectionID": connID, "customerID": custID, "test": true,
			"values": []any{
				map[string]any{"key": "apiKey", "value": canary},
				map[string]any{"key": "baseUrl", "value": asana.URL},
			},
		}})
		mustOK(t, r)
		cred := servertest.Get(r.Data, "saveCredential.credential").(map[string]any)
		if cred["status"] != "ACTIVE" || cred["version"] != float64(1) {
			t.Fatalf("saved credential: %s", r.Raw)
		}
		if ok := servertest.Get(r.Data, "saveCredential.testResult.ok"); ok != true || calls.Load() != 1 {
			t.Fatalf("test result %v after %d calls: %s", ok, calls.Load(), r.Raw)
		}
		credID := cred["id"].(string)
		vals := valuesByKey(cred)
		if v := vals["apiKey"]; v["isSet"] != true || v["value"] != nil || v["secret"] != true || v["updatedAt"] == nil {
			t.Errorf("apiKey value: %v", v)
		}
		if v := vals["baseUrl"]; v["value"] != asana.URL {
			t.Errorf("baseUrl value: %v", v)
		}
		firstSet := vals["apiKey"]["updatedAt"]

		// An update that leaves the secret out keeps it: the live test
		// still authenticates with it.
		r = env.Do(t, saveMutation, map[string]any{"in": map[string]any{
			"connectionID": connID, "customerID": custID,
			"values": []any{map[string]any{"key": "baseUrl", "value": asana.URL + "/"}},
		}})
		mustOK(t, r)
		cred = servertest.Get(r.Data, "saveCredential.credential").(map[string]any)
		if cred["id"] != credID || cred["version"] != float64(2) || valuesByKey(cred)["apiKey"]["updatedAt"] != firstSet {
			t.Fatalf("update kept the secret? %s", r.Raw)
		}
		r = env.Do(t, saveMutation, map[string]any{"in": map[string]any{
			"connectionID": connID, "customerID": custID,
			"values": []any{map[string]any{"key": "baseUrl", "value": asana.URL}},
		}})
		mustOK(t, r)
		r = env.Do(t, `mutation($id: ID!) { testCredential(id: $id) { result { ok message } credential { status lastTestedAt } userErrors { code } } }`,
			map[string]any{"id": credID})
		mustOK(t, r)
		if servertest.Get(r.Data, "testCredential.result.ok") != true || !strings.Contains(servertest.Str(r.Data, "testCredential.result.message"), "Ada") {
			t.Fatalf("testCredential: %s", r.Raw)
		}

		// node(id) returns the credential and its connection.
		r = env.Do(t, `query($id: ID!) { node(id: $id) { __typename ... on Credential { id status connection { stableKey } customer { externalID } } } }`,
			map[string]any{"id": credID})
		mustOK(t, r)
		if servertest.Str(r.Data, "node.__typename") != "Credential" || servertest.Str(r.Data, "node.customer.externalID") != "acme" {
			t.Fatalf("node: %s", r.Raw)
		}
		// The connection log has the saves, the test and the status change.
		r = env.Do(t, `query($id: ID!) { node(id: $id) { ... on Credential { auditEvents(first: 20, orderBy: {field: AT}) { totalCount edges { node { action message actor } } } } } }`,
			map[string]any{"id": credID})
		mustOK(t, r)
		if n := servertest.Get(r.Data, "node.auditEvents.totalCount").(float64); n < 5 {
			t.Errorf("audit events: %s", r.Raw)
		}
		assertNoCanary(t, env)
	})
}

func valuesByKey(cred map[string]any) map[string]map[string]any {
	out := map[string]map[string]any{}
	for _, v := range cred["values"].([]any) {
		m := v.(map[string]any)
		out[m["key"].(string)] = m
	}
	return out
}

func assertNoCanary(t *testing.T, env *servertest.Env) {
	t.Helper()
	if strings.Contains(env.AllBodies(), canary) || strings.Contains(env.AllBodies(), "CANARY") {
		t.Error("a response body contains the canary secret")
	}
	if strings.Contains(env.Logs.String(), canary) || strings.Contains(env.Logs.String(), "CANARY") {
		t.Error("the log contains the canary secret")
	}
}

func TestPaginationFiltersAndOrder(t *testing.T) {
	servertest.EachDB(t, servertest.Config{Plugins: []string{"asana"}}, func(t *testing.T, env *servertest.Env) {
		connID, _ := createAsanaConnection(t, env)
		const n = 7
		for i := 0; i < n; i++ {
			r := env.Do(t, `mutation($e: String!) { createCustomer(input: {externalID: $e, name: $e}) { customer { id } } }`,
				map[string]any{"e": fmt.Sprintf("c%02d", i)})
			mustOK(t, r)
			cid := servertest.Str(r.Data, "createCustomer.customer.id")
			mustOK(t, env.Do(t, saveMutation, map[string]any{"in": map[string]any{
				"connectionID": connID, "customerID": cid,
				"values": []any{map[string]any{"key": "apiKey", "value": fmt.Sprintf("1/%016d:abc", i)}},
			}}))
		}
		// Page through 3 at a time, newest first.
		var seen []string
		var after any
		for page := 0; page < 5; page++ {
			r := env.Do(t, `query($after: Cursor) { credentials(first: 3, after: $after, orderBy: {field: CREATED_AT, direction: DESC}, where: {status: ACTIVE}) {
				totalCount pageInfo { hasNextPage endCursor } edges { node { id customer { externalID } } } } }`,
				map[string]any{"after": after})
			mustOK(t, r)
			if servertest.Get(r.Data, "credentials.totalCount") != float64(n) {
				t.Fatalf("totalCount: %s", r.Raw)
			}
			for _, e := range servertest.Get(r.Data, "credentials.edges").([]any) {
				seen = append(seen, servertest.Str(e.(map[string]any), "node.customer.externalID"))
			}
			if servertest.Get(r.Data, "credentials.pageInfo.hasNextPage") != true {
				break
			}
			after = servertest.Get(r.Data, "credentials.pageInfo.endCursor")
		}
		if len(seen) != n || seen[0] != "c06" || seen[n-1] != "c00" {
			t.Fatalf("pages gave %v", seen)
		}
		// A filter that matches nothing.
		r := env.Do(t, `{ credentials(where: {status: FAILED}) { totalCount } connections(where: {scope: ORGANIZATION_GLOBAL}) { totalCount } }`, nil)
		mustOK(t, r)
		if servertest.Get(r.Data, "credentials.totalCount") != float64(0) || servertest.Get(r.Data, "connections.totalCount") != float64(0) {
			t.Fatalf("filters: %s", r.Raw)
		}
		r = env.Do(t, `{ connections(where: {hasTypeWith: {key: "asana.apiKey"}}) { totalCount edges { node { credentials { totalCount } } } } }`, nil)
		mustOK(t, r)
		if servertest.Get(r.Data, "connections.edges.0.node.credentials.totalCount") != float64(n) {
			t.Fatalf("connection credentials: %s", r.Raw)
		}
	})
}

func TestBadInputIsRejectedAndStoresNothing(t *testing.T) {
	servertest.EachDB(t, servertest.Config{Plugins: []string{"asana", "postgres", "shopify"}}, func(t *testing.T, env *servertest.Env) {
		connID, custID := createAsanaConnection(t, env)
		mustOK(t, env.Do(t, saveMutation, map[string]any{"in": map[string]any{
			"connectionID": connID, "customerID": custID,
			"values": []any{map[string]any{"key": "apiKey", "value": canary}},
		}}))
		pg := env.Do(t, `mutation { createConnection(input: {typeKey: "postgres.basic", stableKey: "pg", name: "PG", scope: ORGANIZATION_GLOBAL}) { connection { id } } }`, nil)
		mustOK(t, pg)
		pgID := servertest.Str(pg.Data, "createConnection.connection.id")
		shop := env.Do(t, `mutation { createConnection(input: {typeKey: "shopify.apiKey", stableKey: "shop", name: "Shop", scope: ORGANIZATION_GLOBAL}) { connection { id } } }`, nil)
		mustOK(t, shop)
		shopID := servertest.Str(shop.Data, "createConnection.connection.id")

		snapshot := func() string {
			r := env.Do(t, `{ credentials(first: 100, orderBy: {field: CREATED_AT}) { edges { node { id version status values { key value isSet updatedAt } } } } connections { totalCount } }`, nil)
			mustOK(t, r)
			b, _ := json.Marshal(r.Data)
			return string(b)
		}
		before := snapshot()
		val := func(k, v string) map[string]any { return map[string]any{"key": k, "value": v} }
		cases := []struct {
			name      string
			query     string
			vars      map[string]any
			code      string
			userField string
		}{
			{"unknown type", `mutation { createConnection(input: {typeKey: "nope.nope", stableKey: "x", name: "X"}) { connection { id } userErrors { field code } } }`,
				nil, "VALIDATION_FAILED", "typeKey"},
			{"taken stable key", `mutation { createConnection(input: {typeKey: "asana.apiKey", stableKey: "asana", name: "X"}) { connection { id } userErrors { field code } } }`,
				nil, "CONFLICT", "stableKey"},
			{"missing required", saveMutation, map[string]any{"in": map[string]any{"connectionID": pgID,
				"values": []any{val("host", "db.example.com"), val("database", "app")}}}, "VALIDATION_FAILED", "user"},
			{"wrong type", saveMutation, map[string]any{"in": map[string]any{"connectionID": pgID,
				"values": []any{val("host", "h"), val("database", "d"), val("user", "u"), val("port", "five")}}}, "VALIDATION_FAILED", "port"},
			{"not an option", saveMutation, map[string]any{"in": map[string]any{"connectionID": pgID,
				"values": []any{val("host", "h"), val("database", "d"), val("user", "u"), val("sslmode", "maybe")}}}, "VALIDATION_FAILED", "sslmode"},
			{"pattern mismatch", saveMutation, map[string]any{"in": map[string]any{"connectionID": connID, "customerID": custID,
				"values": []any{val("apiKey", "Bearer abc")}}}, "VALIDATION_FAILED", "apiKey"},
			{"unknown input", saveMutation, map[string]any{"in": map[string]any{"connectionID": connID, "customerID": custID,
				"values": []any{val("apiKey", canary), val("nope", "x")}}}, "VALIDATION_FAILED", "nope"},
			{"template slot missing", saveMutation, map[string]any{"in": map[string]any{"connectionID": shopID,
				"values": []any{val("accessToken", "shpat_0123456789")}}}, "VALIDATION_FAILED", "shop"},
			{"template slot malformed", saveMutation, map[string]any{"in": map[string]any{"connectionID": shopID,
				"values": []any{val("shop", "Not A Shop!"), val("accessToken", "shpat_0123456789")}}}, "VALIDATION_FAILED", "shop"},
			{"template set directly", saveMutation, map[string]any{"in": map[string]any{"connectionID": shopID,
				"values": []any{val("shop", "acme"), val("storeUrl", "https://evil.example"), val("accessToken", "shpat_0123456789")}}}, "VALIDATION_FAILED", "storeUrl"},
			{"oversized value", saveMutation, map[string]any{"in": map[string]any{"connectionID": connID, "customerID": custID,
				"values": []any{val("apiKey", "2/"+strings.Repeat("a", 20000))}}}, "VALIDATION_FAILED", "apiKey"},
			{"customer required", saveMutation, map[string]any{"in": map[string]any{"connectionID": connID,
				"values": []any{val("apiKey", canary)}}}, "VALIDATION_FAILED", "customerID"},
			{"unknown connection", saveMutation, map[string]any{"in": map[string]any{"connectionID": "cGIxOjk5OTk5OTk5",
				"values": []any{val("apiKey", canary)}}}, "VALIDATION_FAILED", "connectionID"},
		}
		for _, c := range cases {
			t.Run(c.name, func(t *testing.T) {
				r := env.Do(t, c.query, c.vars)
				if r.Code() != c.code {
					t.Fatalf("code = %q, want %q: %s", r.Code(), c.code, r.Raw)
				}
				if !strings.Contains(r.Raw, `"`+c.userField+`"`) {
					t.Errorf("no user error names %q: %s", c.userField, r.Raw)
				}
				if msg := r.Errors[0].Message; msg == "" {
					t.Error("empty message")
				}
			})
		}
		// Errors outside mutations.
		for _, c := range []struct{ name, query, code string }{
			{"unknown node id", `{ node(id: "cGIxOjEyMzQ1Njc4OQ") { id } }`, "NOT_FOUND"},
			{"undecodable node id", `{ node(id: "not-an-id") { id } }`, "NOT_FOUND"},
			{"malformed GraphQL", `{ connections { edges { node { id } }`, "GRAPHQL_PARSE_FAILED"},
			{"unknown field", `{ connections { nope } }`, "GRAPHQL_VALIDATION_FAILED"},
		} {
			t.Run(c.name, func(t *testing.T) {
				r := env.Do(t, c.query, nil)
				if r.Code() != c.code {
					t.Fatalf("code = %q, want %q: %s", r.Code(), c.code, r.Raw)
				}
				if strings.Contains(r.Raw, "123456789") {
					t.Errorf("the error reveals the raw id: %s", r.Raw)
				}
			})
		}
		if after := snapshot(); after != before {
			t.Errorf("stored data changed:\nbefore %s\nafter  %s", before, after)
		}
		assertNoCanary(t, env)
	})
}

func TestAuthentication(t *testing.T) {
	env := servertest.Start(t, servertest.Config{Plugins: []string{"asana"}})
	r := env.DoAs(t, "", `{ connections { totalCount } }`, nil)
	if r.Code() != "UNAUTHENTICATED" {
		t.Fatalf("no token: %s", r.Raw)
	}
	r = env.DoAs(t, "pb_admin_not-a-real-token", `{ connections { totalCount } }`, nil)
	if r.Status != http.StatusUnauthorized || r.Code() != "UNAUTHENTICATED" {
		t.Fatalf("bad token: %d %s", r.Status, r.Raw)
	}
	r = env.Do(t, `{ viewer { role organization { slug } } }`, nil)
	mustOK(t, r)
	if servertest.Str(r.Data, "viewer.role") != "ORG_ADMIN" || servertest.Str(r.Data, "viewer.organization.slug") != "default" {
		t.Fatalf("viewer: %s", r.Raw)
	}
	for path, want := range map[string]int{"/healthz": 200, "/readyz": 200} {
		res, err := http.Get(env.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != want {
			t.Errorf("%s: %d", path, res.StatusCode)
		}
	}
	req, _ := http.NewRequest(http.MethodGet, env.URL+"/graphql", nil)
	req.Header.Set("Accept", "text/html")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != 200 || !strings.HasPrefix(res.Header.Get("Content-Type"), "text/html") {
		t.Errorf("GraphiQL: %d %s", res.StatusCode, res.Header.Get("Content-Type"))
	}
}

func TestDevModeNeedsNoToken(t *testing.T) {
	env := servertest.Start(t, servertest.Config{Plugins: []string{"asana"}, Dev: true})
	r := env.DoAs(t, "", `{ viewer { role } }`, nil)
	mustOK(t, r)
	if env.App.DevToken == "" || !strings.HasPrefix(env.App.DevToken, "pb_admin_") {
		t.Fatalf("dev token %q", env.App.DevToken)
	}
	r = env.DoAs(t, env.App.DevToken, `{ viewer { role } }`, nil)
	mustOK(t, r)
}

func faultyConnection(t *testing.T, env *servertest.Env) string {
	t.Helper()
	r := env.Do(t, `mutation { createConnection(input: {typeKey: "faulty.echo", stableKey: "faulty", name: "Faulty", scope: ORGANIZATION_GLOBAL}) { connection { id } userErrors { message } } }`, nil)
	mustOK(t, r)
	return servertest.Str(r.Data, "createConnection.connection.id")
}

// waitRestarted waits until the named plugin runs in a process other than
// oldPID and is LOADED again, and returns how long that took.
func waitRestarted(t *testing.T, env *servertest.Env, name string, oldPID int, within time.Duration) time.Duration {
	t.Helper()
	start := time.Now()
	for time.Since(start) < within {
		pid := env.PluginPID(name)
		if pid != 0 && pid != oldPID {
			r := env.Do(t, `query($n: String!) { plugins(where: {name: $n}) { edges { node { status } } } }`, map[string]any{"n": name})
			if servertest.Str(r.Data, "plugins.edges.0.node.status") == "LOADED" && env.App.Host.Ready() {
				return time.Since(start)
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("plugin %s not restarted and LOADED within %s", name, within)
	return 0
}

func TestPluginKilledMidRequest(t *testing.T) {
	env := servertest.Start(t, servertest.Config{Plugins: []string{"faulty", "asana"}, CallTimeout: 20 * time.Second})
	id := faultyConnection(t, env)
	pid := env.PluginPID("faulty")
	if pid == 0 {
		t.Fatal("faulty plugin process not found")
	}
	done := make(chan *servertest.Response, 1)
	go func() {
		done <- env.Do(t, saveMutation, map[string]any{"in": map[string]any{"connectionID": id,
			"values": []any{map[string]any{"key": "mode", "value": "hang"}, map[string]any{"key": "secret", "value": canary}}}})
	}()
	time.Sleep(300 * time.Millisecond) // let the request reach the plugin
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	select {
	case r := <-done:
		if r.Code() != "PLUGIN_UNAVAILABLE" {
			t.Fatalf("code = %q: %s", r.Code(), r.Raw)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the request did not end after its plugin was killed")
	}
	// The server lives and other plugins answer meanwhile.
	mustOK(t, env.Do(t, `{ connectionTypes { totalCount } }`, nil))
	took := waitRestarted(t, env, "faulty", pid, 15*time.Second)
	t.Logf("faulty plugin LOADED again %s after the failed request", took)
	r := env.Do(t, saveMutation, map[string]any{"in": map[string]any{"connectionID": id,
		"values": []any{map[string]any{"key": "mode", "value": "ok"}}}})
	mustOK(t, r)
	if servertest.Str(r.Data, "saveCredential.credential.status") != "ACTIVE" {
		t.Fatalf("save after restart: %s", r.Raw)
	}
	assertNoCanary(t, env)
}

func TestHungPluginHitsDeadline(t *testing.T) {
	env := servertest.Start(t, servertest.Config{Plugins: []string{"faulty"}, CallTimeout: time.Second})
	id := faultyConnection(t, env)
	pid := env.PluginPID("faulty")
	r := env.Do(t, saveMutation, map[string]any{"in": map[string]any{"connectionID": id,
		"values": []any{map[string]any{"key": "mode", "value": "hang"}, map[string]any{"key": "secret", "value": canary}}}})
	if r.Code() != "PLUGIN_UNAVAILABLE" || !strings.Contains(strings.ToLower(r.Errors[0].Message), "time") {
		t.Fatalf("hung plugin: %s", r.Raw)
	}
	r = env.Do(t, `{ credentials { totalCount } }`, nil)
	if servertest.Get(r.Data, "credentials.totalCount") != float64(0) {
		t.Fatalf("a credential was stored: %s", r.Raw)
	}
	// The hung plugin was killed and restarted.
	waitRestarted(t, env, "faulty", pid, 15*time.Second)
	// A panicking plugin is an error, and the plugin keeps serving.
	r = env.Do(t, saveMutation, map[string]any{"in": map[string]any{"connectionID": id,
		"values": []any{map[string]any{"key": "mode", "value": "panic"}}}})
	if r.Code() != "PLUGIN_UNAVAILABLE" {
		t.Fatalf("panicking plugin: %s", r.Raw)
	}
	// A plugin's own diagnostics come back per field.
	r = env.Do(t, saveMutation, map[string]any{"in": map[string]any{"connectionID": id,
		"values": []any{map[string]any{"key": "mode", "value": "invalid"}}}})
	if r.Code() != "VALIDATION_FAILED" || !strings.Contains(r.Raw, `"PLUGIN_REJECTED"`) {
		t.Fatalf("plugin diagnostics: %s", r.Raw)
	}
	assertNoCanary(t, env)
}

func TestUnpinnedPluginIsRefused(t *testing.T) {
	env := servertest.Start(t, servertest.Config{Plugins: []string{"asana"}})
	// A binary dropped in after pinning is refused and shown as such.
	b, err := os.ReadFile(servertest.Binaries(t) + "/slack")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(env.PluginDir+"/slack", b, 0o755); err != nil {
		t.Fatal(err)
	}
	r := env.Do(t, `mutation { reloadPlugins { plugins { name status lastError } } }`, nil)
	mustOK(t, r)
	if !strings.Contains(r.Raw, `"slack"`) || !strings.Contains(r.Raw, "DISABLED") || !strings.Contains(strings.ToLower(r.Raw), "pin") {
		t.Fatalf("unpinned plugin: %s", r.Raw)
	}
	r = env.Do(t, `{ connectionType(key: "slack.oauth2") { key } }`, nil)
	if servertest.Get(r.Data, "connectionType") != nil {
		t.Fatalf("an unpinned plugin's type was loaded: %s", r.Raw)
	}
	if !strings.Contains(env.Logs.String(), "slack") {
		t.Error("no log line names the refused plugin")
	}
}
