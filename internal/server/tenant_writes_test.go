package server_test

import (
	"context"
	"testing"

	"github.com/plugboard/plugboard/internal/auth"
	"github.com/plugboard/plugboard/internal/server"
	"github.com/plugboard/plugboard/internal/server/servertest"
)

// TestTenantIsolationOfWrites: an admin of another organization cannot
// deploy, delete, roll back or revoke the first organization's instances,
// credentials and tokens. Each is refused as not found and changes nothing;
// the tenant filter and write hook alone hold these writes to the viewer's
// organization.
func TestTenantIsolationOfWrites(t *testing.T) {
	servertest.EachDB(t, servertest.Config{Plugins: []string{"asana"}}, func(t *testing.T, env *servertest.Env) {
		global := scConnection(t, env, "asana.apiKey", "crm-global", "ORGANIZATION_GLOBAL", "")
		ig := scIntegration(t, env, "crm", "global="+global)
		acme := scCustomer(t, env, "acme")
		instID := scInstance(t, env, ig, acme, "Acme CRM", "PRODUCTION")["id"].(string)
		scSave(t, env, map[string]any{"connectionID": global, "values": scVals("apiKey", otherToken)})
		credID := scSave(t, env, map[string]any{"connectionID": global, "values": scVals("apiKey", otherToken+"0")})["id"].(string)
		d := scOK(t, env, `mutation { createAPIToken(input: {role: RUNTIME, name: "ci"}) { apiToken { id } } }`, nil)
		tokID := servertest.Str(d, "createAPIToken.apiToken.id")

		ctx := context.Background()
		other, err := server.EnsureOrganization(ctx, env.App.Store.Client, "other")
		if err != nil {
			t.Fatal(err)
		}
		tok, _, err := env.App.Tokens.Create(ctx, other.ID, auth.RoleOrgAdmin, "other admin")
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range []struct{ query, id string }{
			{`mutation($id: ID!) { deployInstance(id: $id) { instance { id } } }`, instID},
			{`mutation($id: ID!) { deleteInstance(id: $id) { deletedID } }`, instID},
			{`mutation($id: ID!) { rollbackCredential(id: $id, version: 1) { credential { id } } }`, credID},
			{`mutation($id: ID!) { revokeAPIToken(id: $id) { apiToken { id } } }`, tokID},
		} {
			r := env.DoAs(t, tok, m.query, map[string]any{"id": m.id})
			if r.Code() != "NOT_FOUND" {
				t.Errorf("%s from another organization: %s", m.query, r.Raw)
			}
		}
		inst := scGetInstance(t, env, instID)
		if inst["deployedAt"] != nil {
			t.Errorf("the instance was deployed: %v", inst)
		}
		d = scOK(t, env, `query($c: ID!, $t: ID!) {
			c: node(id: $c) { ... on Credential { version } }
			t: node(id: $t) { ... on APIToken { revokedAt } } }`, map[string]any{"c": credID, "t": tokID})
		if servertest.Get(d, "c.version") != float64(2) {
			t.Errorf("the credential was rolled back: %v", d)
		}
		if servertest.Get(d, "t") == nil || servertest.Get(d, "t.revokedAt") != nil {
			t.Errorf("the token was revoked: %v", d)
		}
	})
}
