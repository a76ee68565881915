package server_test

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/plugboard/plugboard/internal/server/servertest"
)

// embedKey is a signing key of an organization, for minting embedding
// tokens in tests.
type embedKey struct {
	kid  string
	priv ed25519.PrivateKey
}

func newEmbedKey(t testing.TB, kid string) embedKey {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return embedKey{kid: kid, priv: priv}
}

func (k embedKey) publicPEM(t testing.TB) string {
	t.Helper()
	der, err := x509.MarshalPKIXPublicKey(k.priv.Public())
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}))
}

// token mints an embedding token of org for user of customer, valid for
// five minutes.
func (k embedKey) token(t testing.TB, org, customer, user string) string {
	t.Helper()
	now := time.Now()
	tok := jwt.NewWithClaims(jwt.SigningMethodEdDSA, jwt.MapClaims{
		"iss": org, "sub": user, "customer": customer, "aud": "plugboard",
		"iat": now.Unix(), "exp": now.Add(5 * time.Minute).Unix(),
	})
	tok.Header["kid"] = k.kid
	s, err := tok.SignedString(k.priv)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

const registerKeyMutation = `mutation($in: RegisterSigningKeyInput!) { registerSigningKey(input: $in) {
	signingKey { id kid algorithm revokedAt } userErrors { field code message } } }`

// registerKey registers k for the organization of token through GraphQL.
func registerKey(t *testing.T, env *servertest.Env, token string, k embedKey) string {
	t.Helper()
	r := env.DoAs(t, token, registerKeyMutation, map[string]any{"in": map[string]any{
		"kid": k.kid, "algorithm": "EdDSA", "publicKeyPEM": k.publicPEM(t),
	}})
	mustOK(t, r)
	if servertest.Str(r.Data, "registerSigningKey.signingKey.kid") != k.kid {
		t.Fatalf("registerSigningKey: %s", r.Raw)
	}
	return servertest.Str(r.Data, "registerSigningKey.signingKey.id")
}

func TestEmbeddingTokenEndToEnd(t *testing.T) {
	servertest.EachDB(t, servertest.Config{Plugins: []string{"asana"}}, func(t *testing.T, env *servertest.Env) {
		key := newEmbedKey(t, "web-1")
		registerKey(t, env, env.AdminToken, key)
		// The same kid again: CONFLICT, with a userError on kid.
		r := env.Do(t, registerKeyMutation, map[string]any{"in": map[string]any{
			"kid": key.kid, "algorithm": "EdDSA", "publicKeyPEM": key.publicPEM(t),
		}})
		if r.Code() != "CONFLICT" || servertest.Str(r.Data, "registerSigningKey.userErrors.0.code") != "TAKEN" ||
			servertest.Str(r.Data, "registerSigningKey.userErrors.0.field.0") != "kid" {
			t.Fatalf("duplicate kid: %s", r.Raw)
		}
		// A key that does not fit its algorithm: VALIDATION_FAILED.
		r = env.Do(t, registerKeyMutation, map[string]any{"in": map[string]any{
			"kid": "web-2", "algorithm": "RS256", "publicKeyPEM": key.publicPEM(t),
		}})
		if r.Code() != "VALIDATION_FAILED" || servertest.Str(r.Data, "registerSigningKey.userErrors.0.field.0") != "publicKeyPEM" {
			t.Fatalf("Ed25519 key for RS256: %s", r.Raw)
		}
		mustOK(t, env.Do(t, `mutation { createCustomer(input: {externalID: "cust-42", name: "Customer 42"}) { customer { id } } }`, nil))

		jwtTok := key.token(t, "default", "cust-42", "user-7")
		r = env.DoAs(t, jwtTok, `{ viewer { role organization { slug } customer { externalID } } }`, nil)
		mustOK(t, r)
		if servertest.Str(r.Data, "viewer.role") != "CUSTOMER_USER" || servertest.Str(r.Data, "viewer.customer.externalID") != "cust-42" ||
			servertest.Str(r.Data, "viewer.organization.slug") != "default" {
			t.Fatalf("viewer: %s", r.Raw)
		}

		// Over a websocket, the token in connection_init authenticates the
		// connection.
		conn := dialWS(t, env, jwtTok)
		if m, err := receive(conn); err != nil || m.Type != "connection_ack" {
			t.Fatalf("expected connection_ack, got %+v %v", m, err)
		}
		p, _ := json.Marshal(map[string]any{"query": `{ viewer { role customer { externalID } } }`})
		send(t, conn, wsMessage{ID: "1", Type: "subscribe", Payload: p})
		m, err := receive(conn)
		if err != nil || m.Type != "next" || !strings.Contains(string(m.Payload), `"CUSTOMER_USER"`) ||
			!strings.Contains(string(m.Payload), `"cust-42"`) {
			t.Fatalf("viewer over websocket: %+v %v", m, err)
		}

		// A token signed by another key with the same kid, an unknown
		// customer, an unsigned token: 401 UNAUTHENTICATED, here and on a
		// websocket.
		forged := newEmbedKey(t, "web-1").token(t, "default", "cust-42", "user-7")
		unknown := key.token(t, "default", "cust-unknown", "user-7")
		for name, bad := range map[string]string{"forged": forged, "unknown customer": unknown, "garbage": "abc.def.ghi"} {
			r = env.DoAs(t, bad, `{ viewer { role } }`, nil)
			if r.Status != http.StatusUnauthorized || r.Code() != "UNAUTHENTICATED" || r.Data != nil {
				t.Errorf("%s token: %d %s", name, r.Status, r.Raw)
			}
			if strings.Contains(r.Raw, "cust-") || strings.Contains(r.Raw, "web-1") {
				t.Errorf("%s token: the refusal says why: %s", name, r.Raw)
			}
			conn := dialWS(t, env, bad)
			if m, err := receive(conn); err == nil && m.Type == "connection_ack" {
				t.Errorf("%s token: websocket acknowledged", name)
			}
		}
		if strings.Contains(env.Logs.String(), jwtTok) || strings.Contains(env.Logs.String(), forged) {
			t.Error("the log holds an embedding token")
		}
	})
}

func TestAPITokensOverGraphQL(t *testing.T) {
	servertest.EachDB(t, servertest.Config{Plugins: []string{"asana"}}, func(t *testing.T, env *servertest.Env) {
		r := env.Do(t, `mutation { createAPIToken(input: {role: RUNTIME, name: "worker"}) {
			token apiToken { id role name revokedAt } userErrors { code } } }`, nil)
		mustOK(t, r)
		tok := servertest.Str(r.Data, "createAPIToken.token")
		id := servertest.Str(r.Data, "createAPIToken.apiToken.id")
		if !strings.HasPrefix(tok, "pb_rt_") || servertest.Str(r.Data, "createAPIToken.apiToken.role") != "RUNTIME" {
			t.Fatalf("createAPIToken: %s", r.Raw)
		}
		// Only the hash is stored: the list never shows the token again.
		r = env.Do(t, `{ apiTokens { edges { node { id name role } } } }`, nil)
		mustOK(t, r)
		if strings.Contains(r.Raw, tok) || !strings.Contains(r.Raw, id) {
			t.Fatalf("apiTokens: %s", r.Raw)
		}
		r = env.DoAs(t, tok, `{ viewer { role } }`, nil)
		mustOK(t, r)
		if servertest.Str(r.Data, "viewer.role") != "RUNTIME" {
			t.Fatalf("runtime viewer: %s", r.Raw)
		}
		// A runtime token administers nothing, its own kind included.
		r = env.DoAs(t, tok, `mutation { createAPIToken(input: {role: ORG_ADMIN}) { token } }`, nil)
		if r.Code() != "FORBIDDEN" || strings.Contains(r.Raw, "pb_admin_") {
			t.Fatalf("runtime creating a token: %s", r.Raw)
		}
		// Revoked: refused at once (the token was just used, so it is in
		// the cache), and revoking twice is fine.
		for i := 0; i < 2; i++ {
			r = env.Do(t, `mutation($id: ID!) { revokeAPIToken(id: $id) { apiToken { id revokedAt } userErrors { code } } }`, map[string]any{"id": id})
			mustOK(t, r)
			if servertest.Get(r.Data, "revokeAPIToken.apiToken.revokedAt") == nil {
				t.Fatalf("revokeAPIToken: %s", r.Raw)
			}
		}
		r = env.DoAs(t, tok, `{ viewer { role } }`, nil)
		if r.Status != http.StatusUnauthorized || r.Code() != "UNAUTHENTICATED" {
			t.Fatalf("a revoked token: %d %s", r.Status, r.Raw)
		}
		// An unknown id: NOT_FOUND.
		r = env.Do(t, `mutation { revokeAPIToken(id: "cGIxOjk5OTk5OQ") { apiToken { id } } }`, nil)
		if r.Code() != "NOT_FOUND" {
			t.Fatalf("revoking an unknown token: %s", r.Raw)
		}
	})
}
