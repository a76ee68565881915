package server_test

import (
	"net/http"
	"testing"
	"time"

	"github.com/plugboard/plugboard/internal/secrets"
	"github.com/plugboard/plugboard/internal/server/servertest"
	"github.com/plugboard/plugboard/internal/store/storetest"
)

// twoReplicas starts two plugboard replicas on one PostgreSQL database.
func twoReplicas(t *testing.T) (a, b *servertest.Env) {
	t.Helper()
	cfg := replicasConfig(t, servertest.Config{Plugins: []string{"asana"}})
	return servertest.Start(t, cfg), servertest.Start(t, cfg)
}

// replicasConfig is cfg on a fresh PostgreSQL database with a master key:
// what replicas sharing the database need in common.
func replicasConfig(t *testing.T, cfg servertest.Config) servertest.Config {
	t.Helper()
	key, err := secrets.GenerateMasterKey()
	if err != nil {
		t.Fatal(err)
	}
	cfg.DatabaseURL, cfg.MasterKey = storetest.PostgresURL(t), key.ExportBase64()
	return cfg
}

// refusedOn reports whether env refuses token as UNAUTHENTICATED.
func refusedOn(t *testing.T, env *servertest.Env, token string) bool {
	t.Helper()
	r := env.DoAs(t, token, `{ viewer { role } }`, nil)
	if r.Status == http.StatusUnauthorized && r.Code() == "UNAUTHENTICATED" {
		return true
	}
	mustOK(t, r)
	return false
}

// refusedSoon asserts that env refuses token within a second, polling:
// the notification of a revocation reaches another replica
// asynchronously (in practice before the next request). A second is a
// fifth of how long the replica's cache would otherwise serve the token
// (auth.CacheTTL). It returns how many requests were still accepted.
func refusedSoon(t *testing.T, env *servertest.Env, token, what string) int {
	t.Helper()
	accepted := 0
	for deadline := time.Now().Add(time.Second); !refusedOn(t, env, token); accepted++ {
		if time.Now().After(deadline) {
			t.Fatalf("%s: still accepted on the other replica after %d requests", what, accepted)
		}
		time.Sleep(time.Millisecond)
	}
	return accepted
}

// TestRevocationReachesEveryReplica: an API token and an embedding token,
// each remembered by both replicas' token caches, are refused on replica B
// right after they are revoked on replica A, not when B's cache entry runs
// out (auth.CacheTTL, 5 s).
func TestRevocationReachesEveryReplica(t *testing.T) {
	a, b := twoReplicas(t)

	// An API token, used on both replicas (so both caches hold it).
	r := a.Do(t, `mutation { createAPIToken(input: {role: RUNTIME, name: "leaky"}) { token apiToken { id } } }`, nil)
	mustOK(t, r)
	tok, id := servertest.Str(r.Data, "createAPIToken.token"), servertest.Str(r.Data, "createAPIToken.apiToken.id")
	for _, env := range []*servertest.Env{a, b, a, b} {
		if refusedOn(t, env, tok) {
			t.Fatal("a fresh token is refused")
		}
	}
	mustOK(t, a.Do(t, `mutation($id: ID!) { revokeAPIToken(id: $id) { apiToken { revokedAt } } }`, map[string]any{"id": id}))
	if !refusedOn(t, a, tok) {
		t.Fatal("the revoked token is accepted on the replica that revoked it")
	}
	late := refusedSoon(t, b, tok, "revoked API token")
	t.Logf("API token: %d requests accepted on B after revokeAPIToken answered", late)

	// An embedding token, used on both replicas.
	k := newEmbedKey(t, "leaked")
	keyID := registerKey(t, a, a.AdminToken, k)
	mustOK(t, a.Do(t, `mutation { updateOrganization(input: {autoCreateCustomers: true}) { organization { id } } }`, nil))
	jwt := k.token(t, "default", "acme", "ann")
	for _, env := range []*servertest.Env{a, b, a, b} {
		if refusedOn(t, env, jwt) {
			t.Fatal("a fresh embedding token is refused")
		}
	}
	r = a.Do(t, `mutation($id: ID!) { revokeSigningKey(id: $id) { signingKey { id kid revokedAt } userErrors { code } } }`, map[string]any{"id": keyID})
	mustOK(t, r)
	if servertest.Str(r.Data, "revokeSigningKey.signingKey.kid") != "leaked" || servertest.Get(r.Data, "revokeSigningKey.signingKey.revokedAt") == nil {
		t.Fatalf("revokeSigningKey: %s", r.Raw)
	}
	if !refusedOn(t, a, jwt) {
		t.Fatal("a token of the revoked key is accepted on the replica that revoked it")
	}
	late = refusedSoon(t, b, jwt, "token of a revoked signing key")
	t.Logf("embedding token: %d requests accepted on B after revokeSigningKey answered", late)
	// A new token signed with the revoked key is refused too.
	if !refusedOn(t, b, k.token(t, "default", "acme", "bob")) {
		t.Fatal("a new token of the revoked key is accepted")
	}
}
