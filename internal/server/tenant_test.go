package server_test

import (
	"context"
	"strings"
	"testing"

	"github.com/plugboard/plugboard/internal/auth"
	"github.com/plugboard/plugboard/internal/server"
	"github.com/plugboard/plugboard/internal/server/servertest"
)

// TestSecretsAreEncryptedAtRest reads the stored rows directly: the canary
// is nowhere in them, in plain or in any column.
func TestSecretsAreEncryptedAtRest(t *testing.T) {
	servertest.EachDB(t, servertest.Config{Plugins: []string{"asana"}}, func(t *testing.T, env *servertest.Env) {
		connID, custID := createAsanaConnection(t, env)
		mustOK(t, env.Do(t, saveMutation, map[string]any{"in": map[string]any{
			"connectionID": connID, "customerID": custID,
			"values": []any{map[string]any{"key": "apiKey", "value": canary}},
		}}))
		rows, err := env.App.Store.DB.QueryContext(context.Background(), `SELECT inputs, secrets FROM credentials`)
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		n := 0
		for rows.Next() {
			var inputs, sealed []byte
			if err := rows.Scan(&inputs, &sealed); err != nil {
				t.Fatal(err)
			}
			n++
			if strings.Contains(string(inputs), "CANARY") || strings.Contains(string(sealed), "CANARY") {
				t.Fatal("the stored row holds the secret in plain text")
			}
			if len(sealed) < 30 || sealed[0] != 1 {
				t.Fatalf("secrets column is not a sealed envelope (%d bytes)", len(sealed))
			}
		}
		if n != 1 {
			t.Fatalf("%d credential rows", n)
		}
	})
}

// TestTenantIsolation: an admin of another organization sees none of the
// first one's data, by list or by id, and cannot change it.
func TestTenantIsolation(t *testing.T) {
	servertest.EachDB(t, servertest.Config{Plugins: []string{"asana"}}, func(t *testing.T, env *servertest.Env) {
		connID, custID := createAsanaConnection(t, env)
		r := env.Do(t, saveMutation, map[string]any{"in": map[string]any{
			"connectionID": connID, "customerID": custID,
			"values": []any{map[string]any{"key": "apiKey", "value": canary}},
		}})
		mustOK(t, r)
		credID := servertest.Str(r.Data, "saveCredential.credential.id")

		ctx := context.Background()
		other, err := server.EnsureOrganization(ctx, env.App.Store.Client, "other")
		if err != nil {
			t.Fatal(err)
		}
		tok, _, err := env.App.Tokens.Create(ctx, other.ID, auth.RoleOrgAdmin, "other admin")
		if err != nil {
			t.Fatal(err)
		}
		r = env.DoAs(t, tok, `{ connections { totalCount } credentials { totalCount } customers { totalCount } auditEvents { totalCount } viewer { organization { slug } } }`, nil)
		mustOK(t, r)
		for _, k := range []string{"connections", "credentials", "customers", "auditEvents"} {
			if servertest.Get(r.Data, k+".totalCount") != float64(0) {
				t.Errorf("the other organization sees %s: %s", k, r.Raw)
			}
		}
		for _, id := range []string{connID, custID, credID} {
			r = env.DoAs(t, tok, `query($id: ID!) { node(id: $id) { id } }`, map[string]any{"id": id})
			if r.Code() != "NOT_FOUND" {
				t.Errorf("node(%s) from another organization: %s", id, r.Raw)
			}
			r = env.DoAs(t, tok, `query($ids: [ID!]!) { nodes(ids: $ids) { id } }`, map[string]any{"ids": []string{id}})
			if strings.Contains(r.Raw, id) && r.Code() == "" {
				t.Errorf("nodes(%s) from another organization: %s", id, r.Raw)
			}
		}
		// Mutations on the first organization's objects fail as not found
		// and change nothing.
		r = env.DoAs(t, tok, saveMutation, map[string]any{"in": map[string]any{
			"connectionID": connID, "customerID": custID,
			"values": []any{map[string]any{"key": "apiKey", "value": "1/0000000000000000:abc"}},
		}})
		if r.Code() != "VALIDATION_FAILED" || !strings.Contains(r.Raw, "NOT_FOUND") {
			t.Errorf("save into another organization: %s", r.Raw)
		}
		for _, m := range []string{
			`mutation($id: ID!) { testCredential(id: $id) { result { ok } } }`,
			`mutation($id: ID!) { deleteConnection(id: $id) { deletedID } }`,
			`mutation($id: ID!) { updateConnection(input: {id: $id, name: "x"}) { connection { id } } }`,
		} {
			id := connID
			if strings.Contains(m, "testCredential") {
				id = credID
			}
			r = env.DoAs(t, tok, m, map[string]any{"id": id})
			if r.Code() != "NOT_FOUND" {
				t.Errorf("%s from another organization: %s", m, r.Raw)
			}
		}
		r = env.Do(t, `query($id: ID!) { node(id: $id) { ... on Credential { version } } }`, map[string]any{"id": credID})
		if servertest.Get(r.Data, "node.version") != float64(1) {
			t.Errorf("the credential changed: %s", r.Raw)
		}
		// A runtime token may not administer.
		rt, _, err := env.App.Tokens.Create(ctx, other.ID, auth.RoleRuntime, "runtime")
		if err != nil {
			t.Fatal(err)
		}
		r = env.DoAs(t, rt, `{ connections { totalCount } }`, nil)
		if r.Code() != "FORBIDDEN" {
			t.Errorf("runtime listing connections: %s", r.Raw)
		}
		assertNoCanary(t, env)
	})
}
