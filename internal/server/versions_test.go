package server_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/plugboard/plugboard/ent/credentialversion"
	"github.com/plugboard/plugboard/internal/auth"
	"github.com/plugboard/plugboard/internal/globalid"
	"github.com/plugboard/plugboard/internal/secrets"
	"github.com/plugboard/plugboard/internal/secrets/sealed"
	"github.com/plugboard/plugboard/internal/server"
	"github.com/plugboard/plugboard/internal/server/servertest"
)

// Asana tokens of the version tests: every one carries "CANARY" so a leak
// of any is caught by assertNoCanary.
var (
	verTokA   = canary
	verTokB   = "2/1200canary7f3a9c/1201:CANARYdeadbeef00b2"
	verTokC   = "2/1200canary7f3a9c/1201:CANARYdeadbeef00c3"
	verTokD   = "2/1200canary7f3a9c/1201:CANARYdeadbeef00d4"
	verTokBad = "2/1200canary7f3a9c/1201:CANARYwrongwrong0666"
)

// versionAsana is a fake Asana accepting a set of tokens and remembering
// which one it saw last.
type versionAsana struct {
	*httptest.Server
	mu   sync.Mutex
	last string
}

func (a *versionAsana) lastToken() string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.last
}

func newVersionAsana(t *testing.T, good ...string) *versionAsana {
	a := &versionAsana{}
	ok := map[string]bool{}
	for _, g := range good {
		ok[g] = true
	}
	a.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		tok := strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")
		a.mu.Lock()
		a.last = tok
		a.mu.Unlock()
		if r.URL.Path != "/users/me" {
			http.NotFound(w, r)
			return
		}
		if !ok[tok] {
			w.WriteHeader(http.StatusUnauthorized)
			_, _ = w.Write([]byte(`{"errors":[{"message":"Not Authorized"}]}`))
			return
		}
		_, _ = w.Write([]byte(`{"data":{"gid":"1","name":"Ada Lovelace"}}`))
	}))
	t.Cleanup(a.Close)
	return a
}

const versionsQuery = `query($id: ID!) { node(id: $id) { ... on Credential { id version status
	versions(first: 50, orderBy: {field: VERSION}) { totalCount edges { node { id version state actor message } } } } } }`

const rollbackMutation = `mutation($id: ID!, $v: Int!) { rollbackCredential(id: $id, version: $v) {
	credential { id version status statusDetail } userErrors { field code message } } }`

const testMutation = `mutation($id: ID!) { testCredential(id: $id) { result { ok message } credential { status } userErrors { code } } }`

// versionStates returns version → state of credential credID.
func versionStates(t *testing.T, env *servertest.Env, credID string) (map[int]string, map[string]any) {
	t.Helper()
	r := env.Do(t, versionsQuery, map[string]any{"id": credID})
	mustOK(t, r)
	out := map[int]string{}
	for _, e := range servertest.Get(r.Data, "node.versions.edges").([]any) {
		n := e.(map[string]any)["node"].(map[string]any)
		out[int(n["version"].(float64))] = n["state"].(string)
	}
	return out, servertest.Get(r.Data, "node").(map[string]any)
}

func wantStates(t *testing.T, got map[int]string, want map[int]string) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("versions %v; want %v", got, want)
	}
	for v, s := range want {
		if got[v] != s {
			t.Fatalf("versions %v; want %v", got, want)
		}
	}
}

func TestCredentialVersions(t *testing.T) {
	servertest.EachDB(t, servertest.Config{Plugins: []string{"asana"}}, func(t *testing.T, env *servertest.Env) {
		ctx := context.Background()
		sys := auth.SystemContext(ctx)
		db := env.App.Store.Client
		asana := newVersionAsana(t, verTokA, verTokB, verTokC, verTokD)
		connID, custID := createAsanaConnection(t, env)
		save := func(tok string, verify bool) *servertest.Response {
			t.Helper()
			return env.Do(t, saveMutation, map[string]any{"in": map[string]any{
				"connectionID": connID, "customerID": custID, "verify": verify,
				"values": []any{
					map[string]any{"key": "apiKey", "value": tok},
					map[string]any{"key": "baseUrl", "value": asana.URL},
				},
			}})
		}

		// Saves make versions 1..3; the last is LIVE.
		var credID string
		for i, tok := range []string{verTokA, verTokB, verTokC} {
			r := save(tok, false)
			mustOK(t, r)
			if v := servertest.Get(r.Data, "saveCredential.credential.version"); v != float64(i+1) {
				t.Fatalf("save %d: version %v: %s", i+1, v, r.Raw)
			}
			credID = servertest.Str(r.Data, "saveCredential.credential.id")
		}
		states, _ := versionStates(t, env, credID)
		wantStates(t, states, map[int]string{1: "SUPERSEDED", 2: "SUPERSEDED", 3: "LIVE"})

		// verify with a passing test promotes version 4.
		r := save(verTokD, true)
		mustOK(t, r)
		if servertest.Get(r.Data, "saveCredential.credential.version") != float64(4) ||
			servertest.Str(r.Data, "saveCredential.credential.status") != "ACTIVE" ||
			servertest.Get(r.Data, "saveCredential.testResult.ok") != true {
			t.Fatalf("verified save: %s", r.Raw)
		}
		if asana.lastToken() != verTokD {
			t.Fatal("the verify test did not use the new token")
		}
		states, _ = versionStates(t, env, credID)
		wantStates(t, states, map[int]string{1: "SUPERSEDED", 2: "SUPERSEDED", 3: "SUPERSEDED", 4: "LIVE"})

		// verify with a failing test: version 5 REJECTED, version 4 stays live.
		r = save(verTokBad, true)
		if r.Code() != "VALIDATION_FAILED" || servertest.Str(r.Data, "saveCredential.userErrors.0.code") != "TEST_FAILED" ||
			servertest.Get(r.Data, "saveCredential.testResult.ok") != false {
			t.Fatalf("failed verify: %s", r.Raw)
		}
		if asana.lastToken() != verTokBad {
			t.Fatal("the verify test did not use the new token")
		}
		states, node := versionStates(t, env, credID)
		wantStates(t, states, map[int]string{1: "SUPERSEDED", 2: "SUPERSEDED", 3: "SUPERSEDED", 4: "LIVE", 5: "REJECTED"})
		if node["version"] != float64(4) || node["status"] != "ACTIVE" {
			t.Fatalf("credential after a failed verify: %v", node)
		}
		r = env.Do(t, testMutation, map[string]any{"id": credID})
		mustOK(t, r)
		if servertest.Get(r.Data, "testCredential.result.ok") != true || asana.lastToken() != verTokD {
			t.Fatalf("live credential after a failed verify: %s", r.Raw)
		}

		// Rollback to version 1 makes version 6 with version 1's values.
		r = env.Do(t, rollbackMutation, map[string]any{"id": credID, "v": 1})
		mustOK(t, r)
		if servertest.Get(r.Data, "rollbackCredential.credential.version") != float64(6) ||
			servertest.Str(r.Data, "rollbackCredential.credential.status") != "ACTIVE" {
			t.Fatalf("rollback: %s", r.Raw)
		}
		states, _ = versionStates(t, env, credID)
		wantStates(t, states, map[int]string{1: "SUPERSEDED", 2: "SUPERSEDED", 3: "SUPERSEDED", 4: "SUPERSEDED", 5: "REJECTED", 6: "LIVE"})
		r = env.Do(t, testMutation, map[string]any{"id": credID})
		mustOK(t, r)
		if servertest.Get(r.Data, "testCredential.result.ok") != true || asana.lastToken() != verTokA {
			t.Fatalf("credential after the rollback: %s", r.Raw)
		}

		// Refused rollbacks: a rejected version, the live one, a missing one.
		for v, code := range map[int]string{5: "INVALID_VALUE", 6: "INVALID_VALUE", 99: "NOT_FOUND"} {
			r = env.Do(t, rollbackMutation, map[string]any{"id": credID, "v": v})
			if r.Code() != "VALIDATION_FAILED" || servertest.Str(r.Data, "rollbackCredential.userErrors.0.code") != code ||
				servertest.Get(r.Data, "rollbackCredential.credential") != nil {
				t.Errorf("rollback to %d: %s", v, r.Raw)
			}
		}
		if _, node := versionStates(t, env, credID); node["version"] != float64(6) {
			t.Fatalf("a refused rollback changed the credential: %v", node)
		}

		// A rejected version cannot be swapped into the live row: its
		// ciphertext is bound to its own version.
		credInt, err := globalid.Decode(credID)
		if err != nil {
			t.Fatal(err)
		}
		v1, err := db.CredentialVersion.Query().
			Where(credentialversion.CredentialID(credInt), credentialversion.Version(1)).Only(sys)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := env.App.Keys.Decrypt(sys, v1.Secrets, sealed.CredentialSecrets.AAD(credInt)); err == nil {
			t.Error("a version's secrets decrypt with the credential's AAD")
		}

		// Audit events of every step.
		r = env.Do(t, `query($id: ID!) { node(id: $id) { ... on Credential { auditEvents(first: 100) { edges { node { action message } } } } } }`,
			map[string]any{"id": credID})
		mustOK(t, r)
		actions := map[string]int{}
		for _, e := range servertest.Get(r.Data, "node.auditEvents.edges").([]any) {
			n := e.(map[string]any)["node"].(map[string]any)
			actions[n["action"].(string)]++
			if n["action"] == "credential.rolled_back" &&
				(!strings.Contains(n["message"].(string), "version 1") || !strings.Contains(n["message"].(string), "version 4")) {
				t.Errorf("rolled_back names both versions? %v", n["message"])
			}
		}
		for _, a := range []string{"credential.version_saved", "credential.version_promoted", "credential.version_rejected", "credential.rolled_back"} {
			if actions[a] == 0 {
				t.Errorf("no %s audit event; have %v", a, actions)
			}
		}
		if actions["credential.version_saved"] != 5 {
			t.Errorf("version_saved events: %v", actions)
		}

		// A customer's user sees its credential but none of its versions.
		key := newEmbedKey(t, "versions")
		registerKey(t, env, env.AdminToken, key)
		custTok := key.token(t, server.DefaultOrgSlug, "acme", "u-acme-1")
		cr := env.DoAs(t, custTok, `{ credentials { totalCount edges { node { id versions { totalCount edges { node { version } } } } } } }`, nil)
		if servertest.Get(cr.Data, "credentials.totalCount") != float64(1) ||
			servertest.Get(cr.Data, "credentials.edges.0.node.versions.totalCount") != float64(0) {
			t.Errorf("customer user's view of versions: %s", cr.Raw)
		}
		cr = env.DoAs(t, custTok, `query($id: ID!) { node(id: $id) { id } }`,
			map[string]any{"id": globalid.Encode(v1.ID)})
		if servertest.Get(cr.Data, "node") != nil {
			t.Errorf("customer user reads a version by node id: %s", cr.Raw)
		}
		if cr := env.DoAs(t, custTok, rollbackMutation, map[string]any{"id": credID, "v": 1}); cr.Code() != "FORBIDDEN" {
			t.Errorf("customer user's rollback: %s", cr.Raw)
		}

		// Only the last KeepVersions (10) are kept: versions 7..14 push out
		// 1..4; the rejected 5 is still among the last 10.
		for i := 0; i < 8; i++ {
			mustOK(t, save([]string{verTokA, verTokB}[i%2], false))
		}
		states, node = versionStates(t, env, credID)
		if node["version"] != float64(14) || len(states) != 10 || states[4] != "" || states[5] != "REJECTED" || states[6] != "SUPERSEDED" || states[14] != "LIVE" {
			t.Fatalf("after 14 versions: %v (%v)", states, node["version"])
		}
		if n, err := db.CredentialVersion.Query().Where(credentialversion.CredentialID(credInt)).Count(sys); err != nil || n != 10 {
			t.Fatalf("%d stored versions (%v); want 10", n, err)
		}

		// A rotation re-encrypts the versions' secrets too.
		before, err := db.CredentialVersion.Query().Where(credentialversion.CredentialID(credInt)).All(sys)
		if err != nil {
			t.Fatal(err)
		}
		oldKey, _ := secrets.ParseCiphertext(before[0].Secrets)
		rot := &sealed.Rotator{DB: db, Keys: env.App.Keys}
		res, err := rot.Rotate(ctx)
		if err != nil || res.Remaining != 0 || res.Failed != 0 || res.KeyID == oldKey.KeyID {
			t.Fatalf("rotation: %+v, %v", res, err)
		}
		if res.Reencrypted < 11 { // 10 versions and the credential
			t.Errorf("rotation re-encrypted %d values; want at least 11", res.Reencrypted)
		}
		after, err := db.CredentialVersion.Query().Where(credentialversion.CredentialID(credInt)).All(sys)
		if err != nil {
			t.Fatal(err)
		}
		for _, v := range after {
			hdr, err := secrets.ParseCiphertext(v.Secrets)
			if err != nil || hdr.KeyID != res.KeyID {
				t.Errorf("version %d is under key %q (%v); want %s", v.Version, hdr.KeyID, err, res.KeyID)
			}
			if _, err := env.App.Keys.Decrypt(sys, v.Secrets, sealed.CredentialVersionSecrets.AAD(sealed.VersionKey{CredentialID: v.CredentialID, Version: v.Version})); err != nil {
				t.Errorf("version %d does not decrypt after the rotation: %v", v.Version, err)
			}
		}
		// The rolled-back-to values still work after the rotation.
		r = env.Do(t, rollbackMutation, map[string]any{"id": credID, "v": 13})
		mustOK(t, r)
		r = env.Do(t, testMutation, map[string]any{"id": credID})
		mustOK(t, r)
		if servertest.Get(r.Data, "testCredential.result.ok") != true || asana.lastToken() != verTokA {
			t.Fatalf("credential rolled back after a rotation: %s", r.Raw)
		}
		assertNoCanary(t, env)
	})
}

// TestVerifyOnNewCredentialIsATest checks that verify on a credential not
// saved yet stores nothing when the test fails (nothing is live to keep).
func TestVerifyOnNewCredentialIsATest(t *testing.T) {
	servertest.EachDB(t, servertest.Config{Plugins: []string{"asana"}}, func(t *testing.T, env *servertest.Env) {
		asana := newVersionAsana(t, verTokA)
		connID, custID := createAsanaConnection(t, env)
		r := env.Do(t, saveMutation, map[string]any{"in": map[string]any{
			"connectionID": connID, "customerID": custID, "verify": true,
			"values": []any{
				map[string]any{"key": "apiKey", "value": verTokBad},
				map[string]any{"key": "baseUrl", "value": asana.URL},
			},
		}})
		if servertest.Str(r.Data, "saveCredential.userErrors.0.code") != "TEST_FAILED" {
			t.Fatalf("verify of a new credential with a bad token: %s", r.Raw)
		}
		sys := auth.SystemContext(context.Background())
		if n, _ := env.App.Store.Client.CredentialVersion.Query().Count(sys); n != 0 {
			t.Fatalf("%d versions stored by a failed first save", n)
		}
		r = env.Do(t, saveMutation, map[string]any{"in": map[string]any{
			"connectionID": connID, "customerID": custID, "verify": true,
			"values": []any{
				map[string]any{"key": "apiKey", "value": verTokA},
				map[string]any{"key": "baseUrl", "value": asana.URL},
			},
		}})
		mustOK(t, r)
		states, _ := versionStates(t, env, servertest.Str(r.Data, "saveCredential.credential.id"))
		wantStates(t, states, map[int]string{1: "LIVE"})
		// A connection whose credentials have versions is deleted with them.
		r = env.Do(t, `mutation($id: ID!) { deleteConnection(id: $id) { deletedID userErrors { code message } } }`, map[string]any{"id": connID})
		mustOK(t, r)
		if servertest.Str(r.Data, "deleteConnection.deletedID") != connID {
			t.Fatalf("deleteConnection: %s", r.Raw)
		}
		if n, _ := env.App.Store.Client.CredentialVersion.Query().Count(sys); n != 0 {
			t.Fatalf("%d versions left after deleting the connection", n)
		}
		assertNoCanary(t, env)
	})
}

const rollbackVerifyMutation = `mutation($id: ID!, $v: Int!, $verify: Boolean) { rollbackCredential(id: $id, version: $v, verify: $verify) {
	credential { id version status statusDetail } testResult { ok message } userErrors { field code message } } }`

// TestRollbackClaimsNoMoreThanItKnows: a rollback without verify gives the
// credential the status its values last earned (a failed test stays
// failed); with verify the plugin tests the values first, and a failed
// test changes nothing.
func TestRollbackClaimsNoMoreThanItKnows(t *testing.T) {
	servertest.EachDB(t, servertest.Config{Plugins: []string{"asana"}}, func(t *testing.T, env *servertest.Env) {
		asana := newVersionAsana(t, verTokA)
		connID, custID := createAsanaConnection(t, env)
		save := func(tok string) string {
			t.Helper()
			r := env.Do(t, saveMutation, map[string]any{"in": map[string]any{
				"connectionID": connID, "customerID": custID,
				"values": []any{
					map[string]any{"key": "apiKey", "value": tok},
					map[string]any{"key": "baseUrl", "value": asana.URL},
				},
			}})
			mustOK(t, r)
			return servertest.Str(r.Data, "saveCredential.credential.id")
		}
		// Version 1: values whose live test fails; the credential is ERROR
		// when version 2 (good values) replaces them.
		credID := save(verTokBad)
		r := env.Do(t, testMutation, map[string]any{"id": credID})
		mustOK(t, r)
		if servertest.Str(r.Data, "testCredential.credential.status") != "ERROR" {
			t.Fatalf("a failed test: %s", r.Raw)
		}
		save(verTokA)
		do := func(v int, verify any) *servertest.Response {
			t.Helper()
			return env.Do(t, rollbackVerifyMutation, map[string]any{"id": credID, "v": v, "verify": verify})
		}

		// Without verify: version 1's values come back ERROR, as they were.
		r = do(1, nil)
		mustOK(t, r)
		if servertest.Get(r.Data, "rollbackCredential.credential.version") != float64(3) ||
			servertest.Str(r.Data, "rollbackCredential.credential.status") != "ERROR" ||
			!strings.Contains(servertest.Str(r.Data, "rollbackCredential.credential.statusDetail"), "version 1") {
			t.Fatalf("rollback to values whose test failed: %s", r.Raw)
		}
		// Version 2's values were ACTIVE when last live.
		r = do(2, false)
		mustOK(t, r)
		if servertest.Get(r.Data, "rollbackCredential.credential.version") != float64(4) ||
			servertest.Str(r.Data, "rollbackCredential.credential.status") != "ACTIVE" {
			t.Fatalf("rollback to values that were ACTIVE: %s", r.Raw)
		}

		// With verify, values that fail their test are refused: nothing changes.
		r = do(1, true)
		if r.Code() != "VALIDATION_FAILED" || servertest.Str(r.Data, "rollbackCredential.userErrors.0.code") != "TEST_FAILED" ||
			servertest.Get(r.Data, "rollbackCredential.testResult.ok") != false ||
			servertest.Get(r.Data, "rollbackCredential.credential") != nil || asana.lastToken() != verTokBad {
			t.Fatalf("verified rollback to failing values: %s", r.Raw)
		}
		states, node := versionStates(t, env, credID)
		wantStates(t, states, map[int]string{1: "SUPERSEDED", 2: "SUPERSEDED", 3: "SUPERSEDED", 4: "LIVE"})
		if node["version"] != float64(4) || node["status"] != "ACTIVE" {
			t.Fatalf("a refused verified rollback changed the credential: %v", node)
		}
		// With verify, values that pass are live and ACTIVE.
		r = do(3, true)
		if r.Code() != "VALIDATION_FAILED" || servertest.Str(r.Data, "rollbackCredential.userErrors.0.code") != "TEST_FAILED" {
			t.Fatalf("verified rollback to version 3 (version 1's failing values): %s", r.Raw)
		}
		r = do(2, true)
		mustOK(t, r)
		if servertest.Get(r.Data, "rollbackCredential.credential.version") != float64(5) ||
			servertest.Str(r.Data, "rollbackCredential.credential.status") != "ACTIVE" ||
			servertest.Get(r.Data, "rollbackCredential.testResult.ok") != true || asana.lastToken() != verTokA {
			t.Fatalf("verified rollback to passing values: %s", r.Raw)
		}
		assertNoCanary(t, env)
	})
}
