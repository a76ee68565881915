package server_test

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/plugboard/plugboard/internal/auth"
	"github.com/plugboard/plugboard/internal/secrets"
	"github.com/plugboard/plugboard/internal/server"
	"github.com/plugboard/plugboard/internal/server/servertest"
)

const (
	rotateOnPremMutation = `mutation($id: ID!) { rotateOnPremResourceToken(id: $id) { resource { id tokenPrefix } token userErrors { field code message } } }`
	deleteOnPremMutation = `mutation($id: ID!) { deleteOnPremResource(id: $id) { deletedID userErrors { field code message } } }`
	boundSaveMutation    = `mutation($in: SaveCredentialInput!) { saveCredential(input: $in) {
	credential { id status onPremResource { id name } values { key value isSet } }
	userErrors { field code message } } }`
)

// onPremHashes reads every stored token_hash and token_prefix, and the
// audit rows' messages.
func onPremRows(t *testing.T, env *servertest.Env) (hashes, prefixes []string, audit string) {
	t.Helper()
	ctx := context.Background()
	rows, err := env.App.Store.DB.QueryContext(ctx, `SELECT token_hash, token_prefix FROM on_prem_resources ORDER BY id`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	for rows.Next() {
		var h, p string
		if err := rows.Scan(&h, &p); err != nil {
			t.Fatal(err)
		}
		hashes, prefixes = append(hashes, h), append(prefixes, p)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	arows, err := env.App.Store.DB.QueryContext(ctx, `SELECT actor, action, message FROM audit_events`)
	if err != nil {
		t.Fatal(err)
	}
	defer arows.Close()
	var b strings.Builder
	for arows.Next() {
		var a, act, m string
		if err := arows.Scan(&a, &act, &m); err != nil {
			t.Fatal(err)
		}
		b.WriteString(a + " " + act + " " + m + "\n")
	}
	return hashes, prefixes, b.String()
}

// TestOnPremTokenHashedAndRotated: the agent token is answered once and
// only its SHA-256 is stored (the token, a canary, is in no column, no
// audit row, no log line); a rotation replaces the hash, so the old one is
// gone from the store.
func TestOnPremTokenHashedAndRotated(t *testing.T) {
	servertest.EachDB(t, servertest.Config{Plugins: []string{"postgres"}}, func(t *testing.T, env *servertest.Env) {
		acme := createOnPremCustomer(t, env, "acme")
		id, token := createOnPrem(t, env, acme, "warehouse db", "db.internal:5432")
		hashes, prefixes, audit := onPremRows(t, env)
		if len(hashes) != 1 || hashes[0] != secrets.HashToken(token) || !strings.HasPrefix(token, prefixes[0]) ||
			len(prefixes[0]) > 12 {
			t.Fatalf("stored %v %v for token prefix %q", hashes, prefixes, token[:12])
		}
		if strings.Contains(audit, token) || !strings.Contains(audit, "onprem.resource_created") {
			t.Fatalf("audit rows: %s", audit)
		}
		r := env.Do(t, rotateOnPremMutation, map[string]any{"id": id})
		mustOK(t, r)
		rotated := servertest.Str(r.Data, "rotateOnPremResourceToken.token")
		hashes, _, audit = onPremRows(t, env)
		if len(hashes) != 1 || hashes[0] != secrets.HashToken(rotated) || hashes[0] == secrets.HashToken(token) {
			t.Fatalf("after rotate: %v", hashes)
		}
		if !strings.Contains(audit, "onprem.token_rotated") || strings.Contains(audit, rotated) {
			t.Fatalf("audit rows after rotate: %s", audit)
		}
		var n int
		if err := env.App.Store.DB.QueryRowContext(context.Background(),
			`SELECT COUNT(*) FROM on_prem_resources WHERE token_hash = `+bindParam(env), secrets.HashToken(token)).Scan(&n); err != nil || n != 0 {
			t.Fatalf("the old hash is still stored (%d, %v)", n, err)
		}
		for _, secret := range []string{token, rotated} {
			if strings.Contains(env.Logs.String(), secret) || strings.Count(env.AllBodies(), secret) != 1 {
				t.Fatal("an agent token leaked or was answered twice")
			}
		}
	})
}

// bindParam is the first bind parameter of env's database.
func bindParam(env *servertest.Env) string {
	if env.App.Store.Dialect == "postgres" {
		return "$1"
	}
	return "?"
}

// TestOnPremAccess: a customer's user lists only its own customer's
// resources and manages none; another organization's admin does not find
// them (NOT_FOUND).
func TestOnPremAccess(t *testing.T) {
	servertest.EachDB(t, servertest.Config{Plugins: []string{"postgres"}}, func(t *testing.T, env *servertest.Env) {
		acme := createOnPremCustomer(t, env, "acme")
		globex := createOnPremCustomer(t, env, "globex")
		acmeRes, _ := createOnPrem(t, env, acme, "acme db", "db.acme.internal:5432")
		globexRes, _ := createOnPrem(t, env, globex, "globex db", "db.globex.internal:5432")
		key := newEmbedKey(t, "web-1")
		registerKey(t, env, env.AdminToken, key)
		ada := key.token(t, "default", "acme", "ada")

		r := env.DoAs(t, ada, onPremListQuery, map[string]any{"c": acme})
		mustOK(t, r)
		if list := servertest.Get(r.Data, "onPremResources").([]any); len(list) != 1 || servertest.Str(r.Data, "onPremResources.0.id") != acmeRes {
			t.Fatalf("the customer's own list: %s", r.Raw)
		}
		r = env.DoAs(t, ada, onPremListQuery, map[string]any{"c": globex})
		mustOK(t, r)
		if list := servertest.Get(r.Data, "onPremResources").([]any); len(list) != 0 || strings.Contains(r.Raw, "globex db") {
			t.Fatalf("a customer's user lists another customer's resources: %s", r.Raw)
		}
		r = env.DoAs(t, ada, `query($id: ID!) { node(id: $id) { id } }`, map[string]any{"id": globexRes})
		if r.Code() != "NOT_FOUND" {
			t.Fatalf("node of another customer's resource: %s", r.Raw)
		}
		for _, q := range []string{rotateOnPremMutation, deleteOnPremMutation} {
			if r := env.DoAs(t, ada, q, map[string]any{"id": acmeRes}); r.Code() != "FORBIDDEN" {
				t.Fatalf("a customer's user manages a resource: %s", r.Raw)
			}
		}
		r = env.DoAs(t, ada, createOnPremMutation, map[string]any{"in": map[string]any{"customerID": acme, "name": "x", "target": "x:1"}})
		if r.Code() != "FORBIDDEN" {
			t.Fatalf("a customer's user creates a resource: %s", r.Raw)
		}

		ctx := context.Background()
		other, err := server.EnsureOrganization(ctx, env.App.Store.Client, "other")
		if err != nil {
			t.Fatal(err)
		}
		tok, _, err := env.App.Tokens.Create(ctx, other.ID, auth.RoleOrgAdmin, "other admin")
		if err != nil {
			t.Fatal(err)
		}
		for _, q := range []string{rotateOnPremMutation, deleteOnPremMutation} {
			if r := env.DoAs(t, tok, q, map[string]any{"id": acmeRes}); r.Code() != "NOT_FOUND" || strings.Contains(r.Raw, "pbagent_") {
				t.Fatalf("another organization's admin: %s", r.Raw)
			}
		}
		r = env.DoAs(t, tok, onPremListQuery, map[string]any{"c": acme})
		if list, _ := servertest.Get(r.Data, "onPremResources").([]any); len(list) != 0 {
			t.Fatalf("another organization lists the resources: %s", r.Raw)
		}
		if hashes, _, _ := onPremRows(t, env); len(hashes) != 2 {
			t.Fatalf("%d resources after the refusals", len(hashes))
		}
	})
}

// onPremWorld is a postgres CUSTOMER connection and an Asana one, two
// customers, and a resource of each.
type onPremWorld struct {
	pgConn, asanaConn, acme, globex, acmeRes, globexRes string
}

func newOnPremWorld(t *testing.T, env *servertest.Env) onPremWorld {
	t.Helper()
	var w onPremWorld
	r := env.Do(t, `mutation { createConnection(input: {typeKey: "postgres.basic", stableKey: "pg", name: "Warehouse", scope: CUSTOMER}) { connection { id } } }`, nil)
	mustOK(t, r)
	w.pgConn = servertest.Str(r.Data, "createConnection.connection.id")
	r = env.Do(t, `mutation { createConnection(input: {typeKey: "asana.apiKey", stableKey: "asana", name: "Asana", scope: CUSTOMER}) { connection { id } } }`, nil)
	mustOK(t, r)
	w.asanaConn = servertest.Str(r.Data, "createConnection.connection.id")
	w.acme = createOnPremCustomer(t, env, "acme")
	w.globex = createOnPremCustomer(t, env, "globex")
	w.acmeRes, _ = createOnPrem(t, env, w.acme, "acme warehouse", "db.acme.internal:5432")
	w.globexRes, _ = createOnPrem(t, env, w.globex, "globex warehouse", "db.globex.internal:5432")
	return w
}

func credentialCount(t *testing.T, env *servertest.Env) int {
	t.Helper()
	var n int
	if err := env.App.Store.DB.QueryRowContext(context.Background(), `SELECT COUNT(*) FROM credentials`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// TestOnPremBinding: a postgres credential of a customer is bound to its
// customer's resource without a host or port; another customer's resource
// is not found, a type without onPremControlled inputs is refused on the
// field, a host given with a binding is refused, and nothing is stored by a
// refusal. The bound resource cannot be deleted (IN_USE); without a
// connected agent the credential's test is ON_PREM_AGENT_DISCONNECTED and
// changes nothing.
func TestOnPremBinding(t *testing.T) {
	servertest.EachDB(t, servertest.Config{Plugins: []string{"postgres", "asana"}}, func(t *testing.T, env *servertest.Env) {
		w := newOnPremWorld(t, env)
		val := func(k, v string) map[string]any { return map[string]any{"key": k, "value": v} }
		pgValues := []any{val("database", "app"), val("user", "plugboard"), val("password", canary)}
		save := func(in map[string]any) *servertest.Response {
			return env.Do(t, boundSaveMutation, map[string]any{"in": in})
		}
		refused := []struct {
			name, code, field string
			in                map[string]any
		}{
			{"another customer's resource", "NOT_FOUND", "",
				map[string]any{"connectionID": w.pgConn, "customerID": w.acme, "onPremResourceID": w.globexRes, "values": pgValues}},
			{"a type without onPremControlled inputs", "VALIDATION_FAILED", "onPremResourceID",
				map[string]any{"connectionID": w.asanaConn, "customerID": w.acme, "onPremResourceID": w.acmeRes, "values": []any{val("apiKey", canary)}}},
			{"a host with a binding", "VALIDATION_FAILED", "values.host",
				map[string]any{"connectionID": w.pgConn, "customerID": w.acme, "onPremResourceID": w.acmeRes, "values": append([]any{val("host", "db.example.com")}, pgValues...)}},
		}
		for _, c := range refused {
			r := save(c.in)
			if r.Code() != c.code || servertest.Get(r.Data, "saveCredential.credential") != nil {
				t.Fatalf("%s: %s", c.name, r.Raw)
			}
			if c.field != "" && !strings.Contains(r.Raw, `"field":["`+strings.ReplaceAll(c.field, ".", `","`)+`"]`) {
				t.Fatalf("%s: not refused on %s: %s", c.name, c.field, r.Raw)
			}
			if strings.Contains(r.Raw, "globex warehouse") {
				t.Fatalf("%s: the answer names another customer's resource: %s", c.name, r.Raw)
			}
		}
		if n := credentialCount(t, env); n != 0 {
			t.Fatalf("%d credentials stored by refused saves", n)
		}

		r := save(map[string]any{"connectionID": w.pgConn, "customerID": w.acme, "onPremResourceID": w.acmeRes, "values": pgValues})
		mustOK(t, r)
		credID := servertest.Str(r.Data, "saveCredential.credential.id")
		if servertest.Str(r.Data, "saveCredential.credential.onPremResource.id") != w.acmeRes ||
			servertest.Str(r.Data, "saveCredential.credential.status") != "ACTIVE" {
			t.Fatalf("bound save: %s", r.Raw)
		}
		// A later save keeps the binding without naming it.
		r = save(map[string]any{"connectionID": w.pgConn, "customerID": w.acme, "values": []any{val("database", "app2")}})
		mustOK(t, r)
		if servertest.Str(r.Data, "saveCredential.credential.onPremResource.id") != w.acmeRes {
			t.Fatalf("a save without onPremResourceID dropped the binding: %s", r.Raw)
		}

		r = env.Do(t, deleteOnPremMutation, map[string]any{"id": w.acmeRes})
		if servertest.Get(r.Data, "deleteOnPremResource.deletedID") != nil ||
			servertest.Str(r.Data, "deleteOnPremResource.userErrors.0.code") != "IN_USE" {
			t.Fatalf("delete of a bound resource: %s", r.Raw)
		}
		r = env.Do(t, onPremListQuery, map[string]any{"c": w.acme})
		if list, _ := servertest.Get(r.Data, "onPremResources").([]any); len(list) != 1 {
			t.Fatalf("the bound resource is gone: %s", r.Raw)
		}

		// No agent is connected: the test says so, and changes nothing.
		const testCred = `mutation($id: ID!) { testCredential(id: $id) { credential { status } result { ok message } userErrors { code message } } }`
		r = env.Do(t, testCred, map[string]any{"id": credID})
		if r.Code() != "ON_PREM_AGENT_DISCONNECTED" || !strings.Contains(r.Errors[0].Message, "agent") {
			t.Fatalf("test without an agent: %s", r.Raw)
		}
		r = env.Do(t, `query($id: ID!) { node(id: $id) { ... on Credential { status version } } }`, map[string]any{"id": credID})
		mustOK(t, r)
		if servertest.Str(r.Data, "node.status") != "ACTIVE" || servertest.Get(r.Data, "node.version") != float64(2) {
			t.Fatalf("the refused test changed the credential: %s", r.Raw)
		}
		if status, body := runtimeGet(t, env, onPremRuntimeToken(t, env), credID); status != http.StatusServiceUnavailable ||
			!strings.Contains(body, `"code":"ON_PREM_AGENT_DISCONNECTED"`) || strings.Contains(body, "CANARY") {
			t.Fatalf("runtime read without an agent: %d %s", status, body)
		}
		r = save(map[string]any{"connectionID": w.pgConn, "customerID": w.acme, "test": true, "values": []any{val("database", "app3")}})
		if r.Code() != "ON_PREM_AGENT_DISCONNECTED" {
			t.Fatalf("a save with a test without an agent: %s", r.Raw)
		}
		if strings.Contains(env.AllBodies(), "CANARY") || strings.Contains(env.Logs.String(), "CANARY") {
			t.Fatal("the password leaked")
		}
	})
}

// TestOnPremWizard: the customer's wizard slot of a bound postgres
// credential says the connection goes through its agent, with the
// resource's name and status, and asks for no host or port; an unbound
// slot asks for them and names no agent.
func TestOnPremWizard(t *testing.T) {
	servertest.EachDB(t, servertest.Config{Plugins: []string{"postgres", "asana"}}, func(t *testing.T, env *servertest.Env) {
		w := newOnPremWorld(t, env)
		r := env.Do(t, `mutation($c: ID!) { createIntegration(input: {key: "sync", name: "Sync", slots: [{key: "pg", label: "Warehouse", connectionID: $c}]}) {
			integration { id } userErrors { message } } }`, map[string]any{"c": w.pgConn})
		mustOK(t, r)
		r = env.Do(t, `mutation($i: ID!, $c: ID!) { createInstance(input: {integrationID: $i, customerID: $c, name: "Acme sync"}) { instance { id } userErrors { message } } }`,
			map[string]any{"i": servertest.Str(r.Data, "createIntegration.integration.id"), "c": w.acme})
		mustOK(t, r)
		inst := servertest.Str(r.Data, "createInstance.instance.id")
		key := newEmbedKey(t, "web-1")
		registerKey(t, env, env.AdminToken, key)
		ada := key.token(t, "default", "acme", "ada")
		const wizard = `query($i: ID!) { configWizard(instanceID: $i) { pages { elements { slotKey fields { key }
			onPrem { message resource { id name status } } } } } }`
		fieldKeys := func(r *servertest.Response) string {
			var keys []string
			fields, _ := servertest.Get(r.Data, "configWizard.pages.0.elements.0.fields").([]any)
			for _, f := range fields {
				keys = append(keys, f.(map[string]any)["key"].(string))
			}
			return strings.Join(keys, ",")
		}
		r = env.DoAs(t, ada, wizard, map[string]any{"i": inst})
		mustOK(t, r)
		if servertest.Get(r.Data, "configWizard.pages.0.elements.0.onPrem") != nil || !strings.Contains(fieldKeys(r), "host") {
			t.Fatalf("the unbound slot: %s", r.Raw)
		}
		val := func(k, v string) map[string]any { return map[string]any{"key": k, "value": v} }
		r = env.DoAs(t, ada, boundSaveMutation, map[string]any{"in": map[string]any{"connectionID": w.pgConn, "onPremResourceID": w.acmeRes,
			"values": []any{val("database", "app"), val("user", "plugboard"), val("password", canary)}}})
		mustOK(t, r)
		r = env.DoAs(t, ada, wizard, map[string]any{"i": inst})
		mustOK(t, r)
		if got := fieldKeys(r); strings.Contains(got, "host") || strings.Contains(got, "port") || !strings.Contains(got, "database") {
			t.Fatalf("the bound slot asks for %s: %s", got, r.Raw)
		}
		if servertest.Str(r.Data, "configWizard.pages.0.elements.0.onPrem.resource.id") != w.acmeRes ||
			servertest.Str(r.Data, "configWizard.pages.0.elements.0.onPrem.resource.name") != "acme warehouse" ||
			servertest.Str(r.Data, "configWizard.pages.0.elements.0.onPrem.resource.status") != "DISCONNECTED" ||
			!strings.Contains(servertest.Str(r.Data, "configWizard.pages.0.elements.0.onPrem.message"), "agent") {
			t.Fatalf("the bound slot's onPrem: %s", r.Raw)
		}
		// The customer's user binds only to its own customer's resource.
		r = env.DoAs(t, ada, boundSaveMutation, map[string]any{"in": map[string]any{"connectionID": w.pgConn, "onPremResourceID": w.globexRes,
			"values": []any{}}})
		if r.Code() != "NOT_FOUND" || strings.Contains(r.Raw, "globex") {
			t.Fatalf("a customer's user bound another customer's resource: %s", r.Raw)
		}
		if strings.Contains(env.AllBodies(), "CANARY") {
			t.Fatal("the password leaked")
		}
	})
}
