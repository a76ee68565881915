package server_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/plugboard/plugboard/internal/auth"
	"github.com/plugboard/plugboard/internal/server"
)

// BenchmarkRuntimeRead measures the runtime read of an OAuth 2.0 credential
// whose token is fresh (GET /runtime/v1/credentials/{id} with a RUNTIME
// token: token check, credential and values decrypted, token unsealed, an
// audit row written) beside the connectionTypes query, in the same run, 50
// concurrent clients each, over loopback HTTP on SQLite.
//
//	go test ./internal/server -run '^$' -bench RuntimeRead -count 6
func BenchmarkRuntimeRead(b *testing.B) {
	idp := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"access_token":"bench-access-token","token_type":"Bearer","expires_in":86400}`))
	}))
	b.Cleanup(idp.Close)
	env := startBench(b, "")
	id, rt := benchSaveCredential(b, env, "msgraph.clientCredentials", [][2]string{
		{"tenant", "contoso.onmicrosoft.com"}, {"clientId", "11111111-2222-3333-4444-555555555555"},
		{"clientSecret", "bench-secret"}, {"authorityHost", idp.URL},
	})
	runtimeURL := env.URL + "/runtime/v1/credentials/" + id
	ok := func(status int, raw []byte) error {
		if status != http.StatusOK {
			return fmt.Errorf("status %d: %.300s", status, raw)
		}
		return nil
	}
	ctBody := gqlBody(connectionTypesQuery, nil)
	run := func(b *testing.B, url, token string, body []byte) {
		c := benchClient(b, loadClients)
		runLoad(b, c, url, token, body, loadClients*2, loadClients, ok)
		b.ReportAllocs()
		runLoad(b, c, url, token, body, b.N, loadClients, ok).report(b)
	}
	b.Run("runtime-read", func(b *testing.B) { run(b, runtimeURL, rt, nil) })
	b.Run("connectionTypes", func(b *testing.B) { run(b, env.URL+"/graphql", env.AdminToken, ctBody) })
}

// benchSaveCredential creates an ORGANIZATION_GLOBAL connection of
// typeKey, saves its credential with values (key → value), checks the
// credential is ACTIVE, and returns the credential's id and a RUNTIME
// token.
func benchSaveCredential(b *testing.B, env *benchEnv, typeKey string, values [][2]string) (string, string) {
	b.Helper()
	setup := benchClient(b, 1)
	raw := mustQuery(b, setup, env.URL+"/graphql", env.AdminToken,
		`mutation($t: String!) { createConnection(input: {typeKey: $t, stableKey: "bench", name: "Bench", scope: ORGANIZATION_GLOBAL}) { connection { id } } }`,
		map[string]any{"t": typeKey})
	var created struct {
		Data struct {
			CreateConnection struct{ Connection struct{ ID string } }
		}
	}
	if err := json.Unmarshal(raw, &created); err != nil {
		b.Fatal(err)
	}
	vals := make([]any, len(values))
	for i, kv := range values {
		vals[i] = map[string]any{"key": kv[0], "value": kv[1]}
	}
	raw = mustQuery(b, setup, env.URL+"/graphql", env.AdminToken,
		`mutation($in: SaveCredentialInput!) { saveCredential(input: $in) { credential { id status } userErrors { message } } }`,
		map[string]any{"in": map[string]any{"connectionID": created.Data.CreateConnection.Connection.ID, "values": vals}})
	var saved struct {
		Data struct {
			SaveCredential struct{ Credential struct{ ID, Status string } }
		}
	}
	if err := json.Unmarshal(raw, &saved); err != nil || saved.Data.SaveCredential.Credential.Status != "ACTIVE" {
		b.Fatalf("saving the credential: %s", raw)
	}
	ctx := context.Background()
	org, err := server.EnsureOrganization(ctx, env.App.Store.Client, server.DefaultOrgSlug)
	if err != nil {
		b.Fatal(err)
	}
	rt, _, err := env.App.Tokens.Create(ctx, org.ID, auth.RoleRuntime, "bench")
	if err != nil {
		b.Fatal(err)
	}
	return saved.Data.SaveCredential.Credential.ID, rt
}
