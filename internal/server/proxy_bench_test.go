package server_test

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"testing"

	"github.com/plugboard/plugboard/internal/auth"
	"github.com/plugboard/plugboard/internal/egress"
	"github.com/plugboard/plugboard/internal/server"
)

// BenchmarkProxy measures a call through the credential proxy (RUNTIME
// token checked, credential resolved and decrypted, the key injected, the
// call sent over a pooled connection, an audit row committed before the
// answer) beside the same local upstream called directly, in the same run,
// 50 concurrent clients each, on SQLite and, with
// PLUGBOARD_TEST_POSTGRES_URL, PostgreSQL.
//
//	go test ./internal/server -run '^$' -bench Proxy -count 3
func BenchmarkProxy(b *testing.B) {
	answer := bytes.Repeat([]byte("a"), 1024)
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(answer)
	}))
	b.Cleanup(up.Close)
	dbs := map[string]string{"sqlite": ""}
	if u := os.Getenv("PLUGBOARD_TEST_POSTGRES_URL"); u != "" {
		dbs["postgres"] = u
	}
	for _, name := range []string{"sqlite", "postgres"} {
		dbURL, ok := dbs[name]
		if !ok {
			continue
		}
		b.Run(name, func(b *testing.B) {
			env := startBenchOptions(b, server.Options{DatabaseURL: dbURL, Egress: egress.Policy{AllowLoopback: true}})
			proxyURL, rt := benchProxyCredential(b, env, up.URL)
			run := func(b *testing.B, url, token string) {
				c := benchClient(b, loadClients)
				runLoad(b, c, url, token, nil, loadClients*2, loadClients, wantSize(len(answer)))
				b.ReportAllocs()
				runLoad(b, c, url, token, nil, b.N, loadClients, wantSize(len(answer))).report(b)
			}
			b.Run("direct", func(b *testing.B) { run(b, up.URL+"/api/1.0/users/me", benchAsanaKey) })
			b.Run("proxied", func(b *testing.B) { run(b, proxyURL, rt) })
		})
	}
}

const benchAsanaKey = "2/1200000000000000/1200000000000001:0123456789abcdef0123456789abcdef"

// benchProxyCredential saves an Asana credential aimed at upstream and
// returns its proxy URL for /users/me and a RUNTIME token.
func benchProxyCredential(b *testing.B, env *benchEnv, upstream string) (string, string) {
	setup := benchClient(b, 1)
	raw := mustQuery(b, setup, env.URL+"/graphql", env.AdminToken,
		`mutation { createConnection(input: {typeKey: "asana.apiKey", stableKey: "asana", name: "Asana", scope: ORGANIZATION_GLOBAL}) { connection { id } } }`, nil)
	var created struct {
		Data struct {
			CreateConnection struct{ Connection struct{ ID string } }
		}
	}
	if err := json.Unmarshal(raw, &created); err != nil {
		b.Fatal(err)
	}
	val := func(k, v string) map[string]any { return map[string]any{"key": k, "value": v} }
	raw = mustQuery(b, setup, env.URL+"/graphql", env.AdminToken,
		`mutation($in: SaveCredentialInput!) { saveCredential(input: $in) { credential { id status } userErrors { message } } }`,
		map[string]any{"in": map[string]any{"connectionID": created.Data.CreateConnection.Connection.ID, "values": []any{
			val("apiKey", benchAsanaKey), val("baseUrl", upstream+"/api/1.0"),
		}}})
	var saved struct {
		Data struct {
			SaveCredential struct{ Credential struct{ ID, Status string } }
		}
	}
	if err := json.Unmarshal(raw, &saved); err != nil || saved.Data.SaveCredential.Credential.ID == "" {
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
	return env.URL + "/proxy/v1/credentials/" + saved.Data.SaveCredential.Credential.ID + "/users/me", rt
}
