package server_test

import (
	"context"
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
