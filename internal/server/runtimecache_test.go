package server_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/plugboard/plugboard/internal/auth"
	"github.com/plugboard/plugboard/internal/server"
	"github.com/plugboard/plugboard/internal/server/servertest"
	"github.com/plugboard/plugboard/internal/store"
)

// The runtime read and the proxy keep the credential and connection rows
// they load (connection.runtimeRows). These tests first show that a
// repeated read is served from memory (it runs fewer statements), so that
// what follows tests the cache: every change is seen by the next read, on
// this replica at once and on another replica through the event bus, and
// a cached row never reaches another organization.

// switchableAsana answers GET /users/me like Asana for the canary token
// while ok holds, and refuses it otherwise.
func switchableAsana(t *testing.T) (*httptest.Server, *atomic.Bool) {
	var ok atomic.Bool
	ok.Store(true)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/users/me" || r.Header.Get("Authorization") != "Bearer "+canary || !ok.Load() {
			w.WriteHeader(http.StatusUnauthorized)
			_, _ = w.Write([]byte(`{"errors":[{"message":"Not Authorized"}]}`))
			return
		}
		_, _ = w.Write([]byte(`{"data":{"gid":"1","name":"Ada Lovelace"}}`))
	}))
	t.Cleanup(srv.Close)
	return srv, &ok
}

// saveAsanaKey saves apiKey (and baseUrl when not empty) as the customer's
// credential of the connection and returns its id.
func saveAsanaKey(t *testing.T, env *servertest.Env, connID, custID, apiKey, baseURL string) string {
	t.Helper()
	vals := []any{map[string]any{"key": "apiKey", "value": apiKey}}
	if baseURL != "" {
		vals = append(vals, map[string]any{"key": "baseUrl", "value": baseURL})
	}
	r := env.Do(t, saveMutation, map[string]any{"in": map[string]any{"connectionID": connID, "customerID": custID, "values": vals}})
	mustOK(t, r)
	return servertest.Str(r.Data, "saveCredential.credential.id")
}

// TestRuntimeReadCacheFollowsEveryChange: on one replica, a read after a
// rotation, a failed test and a deletion answers with what was committed,
// though the read before it was served from memory.
func TestRuntimeReadCacheFollowsEveryChange(t *testing.T) {
	stmts := &atomic.Int64{}
	env := servertest.Start(t, servertest.Config{Plugins: []string{"asana"}, StoreOptions: []store.Option{store.WithStatementCounter(stmts)}})
	upstream, ok := switchableAsana(t)
	connID, custID := createAsanaConnection(t, env)
	credID := saveAsanaKey(t, env, connID, custID, "1/0000000000000000:first", upstream.URL)
	rt := runtimeToken(t, env)

	counted := func() (int, runtimeRead, int64) {
		before := stmts.Load()
		status, read := readRuntime(t, env, rt, credID)
		return status, read, stmts.Load() - before
	}
	counted() // the token and the type are cached from here on
	mustOK(t, env.Do(t, `mutation { createCustomer(input: {externalID: "other", name: "Other"}) { customer { id } } }`, nil))
	_, _, miss := counted()
	status, read, hit := counted()
	if status != http.StatusOK || read.Values["apiKey"] != "1/0000000000000000:first" {
		t.Fatalf("read: %d %+v", status, read)
	}
	if hit != miss-2 {
		t.Fatalf("a repeated read ran %d statements, the first %d: the credential and its connection were not served from memory", hit, miss)
	}

	saveAsanaKey(t, env, connID, custID, canary, "")
	if status, read = readRuntime(t, env, rt, credID); status != http.StatusOK || read.Values["apiKey"] != canary {
		t.Fatalf("read after a rotation: %d, the old key? %v", status, read.Values["apiKey"] != canary)
	}
	ok.Store(false)
	mustOK(t, env.Do(t, `mutation($id: ID!) { testCredential(id: $id) { result { ok } } }`, map[string]any{"id": credID}))
	if status, read = readRuntime(t, env, rt, credID); status != http.StatusConflict {
		t.Fatalf("read after a failed test: %d %+v", status, read.Error)
	}
	mustOK(t, env.Do(t, `mutation($id: ID!) { deleteConnection(id: $id) { deletedID } }`, map[string]any{"id": connID}))
	if status, _ = readRuntime(t, env, rt, credID); status != http.StatusNotFound {
		t.Fatalf("read after the deletion: %d", status)
	}
	assertNoCanary(t, env)
}

// TestRuntimeReadCacheKeepsTheTenant: a credential cached for its own
// organization's runtime is not found by another organization's runtime
// token, by the read or by the proxy.
func TestRuntimeReadCacheKeepsTheTenant(t *testing.T) {
	servertest.EachDB(t, servertest.Config{Plugins: []string{"asana"}}, func(t *testing.T, env *servertest.Env) {
		connID, custID := createAsanaConnection(t, env)
		credID := saveAsanaKey(t, env, connID, custID, canary, "")
		rt := runtimeToken(t, env)
		for range 3 {
			if status, _ := readRuntime(t, env, rt, credID); status != http.StatusOK {
				t.Fatalf("own read: %d", status)
			}
		}
		ctx := context.Background()
		other, err := server.EnsureOrganization(ctx, env.App.Store.Client, "other")
		if err != nil {
			t.Fatal(err)
		}
		otherRT, _, err := env.App.Tokens.Create(ctx, other.ID, auth.RoleRuntime, "other runtime")
		if err != nil {
			t.Fatal(err)
		}
		for range 3 {
			if status, read := readRuntime(t, env, otherRT, credID); status != http.StatusNotFound || len(read.Values) != 0 {
				t.Fatalf("another organization's runtime read the cached credential: %d", status)
			}
			res, _ := get(t, http.DefaultClient, env.URL+"/proxy/v1/credentials/"+credID+"/users/me",
				http.Header{"Authorization": {"Bearer " + otherRT}})
			if res.StatusCode != http.StatusNotFound {
				t.Fatalf("another organization's runtime proxied the cached credential: %d", res.StatusCode)
			}
		}
		assertNoCanary(t, env)
	})
}

// TestRuntimeReadCacheFollowsOtherReplicas: replica B serves a credential
// from memory; a rotation, a failed test (the credential is no longer
// ACTIVE), a deletion and the revocation of the runtime token, each made on
// replica A, are seen by B's next reads well before its cache entry would
// run out (connection.RuntimeRowsTTL, 1 s): A tells B through PostgreSQL.
func TestRuntimeReadCacheFollowsOtherReplicas(t *testing.T) {
	a, b := twoReplicas(t)
	upstream, ok := switchableAsana(t)
	connID, custID := createAsanaConnection(t, a)
	credID := saveAsanaKey(t, a, connID, custID, "1/0000000000000000:first", upstream.URL)
	rt := runtimeToken(t, a)

	// seenSoon asserts that B's read satisfies want within 200 ms (a fifth
	// of the TTL), B's cache having served the credential just before.
	seenSoon := func(what string, want func(status int, read runtimeRead) bool, change func()) {
		t.Helper()
		for range 3 {
			readRuntime(t, b, rt, credID)
		}
		change()
		stale := 0
		for deadline := time.Now().Add(200 * time.Millisecond); ; stale++ {
			if want(readRuntime(t, b, rt, credID)) {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s on replica A: replica B still answers the old credential after %d reads", what, stale)
			}
			time.Sleep(time.Millisecond)
		}
		t.Logf("%s: %d stale reads on B after A answered", what, stale)
	}
	seenSoon("rotation", func(status int, read runtimeRead) bool {
		return status == http.StatusOK && read.Values["apiKey"] == canary
	}, func() { saveAsanaKey(t, a, connID, custID, canary, "") })
	seenSoon("failed test", func(status int, _ runtimeRead) bool { return status == http.StatusConflict }, func() {
		ok.Store(false)
		mustOK(t, a.Do(t, `mutation($id: ID!) { testCredential(id: $id) { result { ok } } }`, map[string]any{"id": credID}))
	})
	seenSoon("a test passing again", func(status int, _ runtimeRead) bool { return status == http.StatusOK }, func() {
		ok.Store(true)
		mustOK(t, a.Do(t, `mutation($id: ID!) { testCredential(id: $id) { result { ok } } }`, map[string]any{"id": credID}))
	})
	r := a.Do(t, `{ apiTokens { edges { node { id role } } } }`, nil)
	mustOK(t, r)
	var tokenID string
	for _, e := range servertest.Get(r.Data, "apiTokens.edges").([]any) {
		if n := e.(map[string]any)["node"].(map[string]any); n["role"] == "RUNTIME" {
			tokenID = n["id"].(string)
		}
	}
	other := runtimeToken(t, a)
	for range 3 {
		readRuntime(t, b, rt, credID)
	}
	mustOK(t, a.Do(t, `mutation($id: ID!) { revokeAPIToken(id: $id) { apiToken { revokedAt } } }`, map[string]any{"id": tokenID}))
	for deadline := time.Now().Add(200 * time.Millisecond); ; time.Sleep(time.Millisecond) {
		res, _ := get(t, http.DefaultClient, b.URL+"/runtime/v1/credentials/"+credID, http.Header{"Authorization": {"Bearer " + rt}})
		if res.StatusCode == http.StatusUnauthorized {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("revoked runtime token on replica A: replica B still answers %d", res.StatusCode)
		}
	}
	rt = other
	seenSoon("deletion", func(status int, _ runtimeRead) bool { return status == http.StatusNotFound }, func() {
		mustOK(t, a.Do(t, `mutation($id: ID!) { deleteConnection(id: $id) { deletedID } }`, map[string]any{"id": connID}))
	})
	assertNoCanary(t, a)
	assertNoCanary(t, b)
}

// TestSaveStatements: a save of a stored API key, its answer included,
// runs at most 13 SQL statements (BENCHMARKS.md section 11: 18 before its
// connection type came from the type cache, its versions from one query
// and its status written without a re-read), and leaves the credential
// ACTIVE.
func TestSaveStatements(t *testing.T) {
	stmts := &atomic.Int64{}
	env := servertest.Start(t, servertest.Config{Plugins: []string{"asana"}, StoreOptions: []store.Option{store.WithStatementCounter(stmts)}})
	connID, custID := createAsanaConnection(t, env)
	saveAsanaKey(t, env, connID, custID, "1/0000000000000000:first", "")
	saveAsanaKey(t, env, connID, custID, "1/0000000000000000:second", "")
	before := stmts.Load()
	credID := saveAsanaKey(t, env, connID, custID, canary, "")
	if n := stmts.Load() - before; n > 13 {
		t.Fatalf("a save of a stored API key ran %d statements, want at most 13", n)
	}
	r := env.Do(t, `query($id: ID!) { node(id: $id) { ... on Credential { version status } } }`, map[string]any{"id": credID})
	mustOK(t, r)
	if v := servertest.Str(r.Data, "node.status"); v != "ACTIVE" {
		t.Fatalf("status after the saves: %q (%s)", v, r.Raw)
	}
	assertNoCanary(t, env)
}
