package server_test

import (
	"bufio"
	"bytes"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/plugboard/plugboard/internal/server/servertest"
)

// saveAsanaTested saves the customer's Asana credential with a live test and
// returns the response.
func saveAsanaTested(t *testing.T, env *servertest.Env, connID, custID, apiKey, baseURL string) *servertest.Response {
	t.Helper()
	return env.Do(t, saveMutation, map[string]any{"in": map[string]any{
		"connectionID": connID, "customerID": custID, "test": true,
		"values": []any{
			map[string]any{"key": "apiKey", "value": apiKey},
			map[string]any{"key": "baseUrl", "value": baseURL},
		},
	}})
}

// The bundled Asana plugin tests through the host: the upstream sees the
// credential the host injected, and the test passes; the plugin is never
// sent the token.
func TestTestThroughHostInjectsTheCredential(t *testing.T) {
	servertest.EachDB(t, servertest.Config{Plugins: []string{"asana"}}, func(t *testing.T, env *servertest.Env) {
		var mu sync.Mutex
		var seen []string
		upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			mu.Lock()
			seen = append(seen, r.Method+" "+r.URL.Path+" "+r.Header.Get("Authorization"))
			mu.Unlock()
			if r.Header.Get("Authorization") != "Bearer "+canary {
				w.WriteHeader(http.StatusUnauthorized)
				return
			}
			_, _ = w.Write([]byte(`{"data":{"gid":"1","name":"Ada Lovelace"}}`))
		}))
		defer upstream.Close()
		connID, custID := createAsanaConnection(t, env)

		r := saveAsanaTested(t, env, connID, custID, canary, upstream.URL+"/api/1.0")
		mustOK(t, r)
		if servertest.Get(r.Data, "saveCredential.testResult.ok") != true ||
			servertest.Str(r.Data, "saveCredential.testResult.message") != "Connected to Asana as Ada Lovelace." ||
			servertest.Str(r.Data, "saveCredential.credential.status") != "ACTIVE" {
			t.Fatalf("save with a test through the host: %s", r.Raw)
		}
		mu.Lock()
		got := strings.Join(seen, "\n")
		mu.Unlock()
		if got != "GET /api/1.0/users/me Bearer "+canary {
			t.Errorf("the upstream saw %q, want one GET /api/1.0/users/me with the injected token", got)
		}

		// testCredential of the stored credential goes the same way.
		id := servertest.Str(r.Data, "saveCredential.credential.id")
		r = env.Do(t, `mutation($id: ID!) { testCredential(id: $id) { result { ok message } } }`, map[string]any{"id": id})
		mustOK(t, r)
		if servertest.Get(r.Data, "testCredential.result.ok") != true {
			t.Errorf("testCredential: %s", r.Raw)
		}
		assertNoCanary(t, env)
	})
}

// An OAuth 2.0 type (Microsoft Graph, client credentials) tests through
// the host: plugboard gets the token, and the Graph upstream sees it as a
// bearer token the host injected; the plugin gets neither the client secret
// nor the token.
func TestTestThroughHostInjectsTheAccessToken(t *testing.T) {
	const secret, accessToken = "client-CANARY-secret", "graph-CANARY-token"
	var mu sync.Mutex
	var graphAuth []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		switch r.URL.Path {
		case "/contoso.onmicrosoft.com/oauth2/v2.0/token":
			if r.PostFormValue("client_secret") != secret {
				w.WriteHeader(http.StatusUnauthorized)
				return
			}
			_, _ = w.Write([]byte(`{"access_token":"` + accessToken + `","token_type":"Bearer","expires_in":3599}`))
		case "/v1.0/organization":
			mu.Lock()
			graphAuth = append(graphAuth, r.Header.Get("Authorization"))
			mu.Unlock()
			_, _ = w.Write([]byte(`{"value":[{"id":"t-1","displayName":"Contoso"}]}`))
		default:
			http.NotFound(w, r)
		}
	}))
	defer srv.Close()
	servertest.EachDB(t, servertest.Config{Plugins: []string{"msgraph"}}, func(t *testing.T, env *servertest.Env) {
		mu.Lock()
		graphAuth = nil
		mu.Unlock()
		r := env.Do(t, `mutation { createConnection(input: {typeKey: "msgraph.clientCredentials", stableKey: "graph", name: "Graph", scope: ORGANIZATION_GLOBAL}) { connection { id } } }`, nil)
		mustOK(t, r)
		val := func(k, v string) map[string]any { return map[string]any{"key": k, "value": v} }
		r = env.Do(t, saveMutation, map[string]any{"in": map[string]any{"connectionID": servertest.Str(r.Data, "createConnection.connection.id"), "test": true,
			"values": []any{val("tenant", "contoso.onmicrosoft.com"), val("clientId", "11111111-2222-3333-4444-555555555555"),
				val("clientSecret", secret), val("authorityHost", srv.URL), val("graphBaseUrl", srv.URL+"/v1.0")}}})
		mustOK(t, r)
		if msg := servertest.Str(r.Data, "saveCredential.testResult.message"); msg != "Connected to Microsoft Graph for the organization Contoso (tenant t-1)." {
			t.Fatalf("test through the host: %q: %s", msg, r.Raw)
		}
		mu.Lock()
		got := strings.Join(graphAuth, ",")
		mu.Unlock()
		if got != "Bearer "+accessToken {
			t.Errorf("Graph saw Authorization %q, want the access token once", got)
		}
		if strings.Contains(env.AllBodies(), "CANARY") || strings.Contains(env.Logs.String(), "CANARY") {
			t.Error("a secret leaked into a response or the log")
		}
	})
}

// A type whose base URL points at the cloud metadata address is refused
// before anything is sent (Asana allows only app.asana.com, and loopback in
// tests), with a message that says so, and nothing is stored. The egress
// policy's own refusal, for a type that allows any host, is checked in
// internal/connection's TestCredentialTransport.
func TestTestThroughHostRefusesTheMetadataAddress(t *testing.T) {
	servertest.EachDB(t, servertest.Config{Plugins: []string{"asana"}}, func(t *testing.T, env *servertest.Env) {
		connID, custID := createAsanaConnection(t, env)
		r := saveAsanaTested(t, env, connID, custID, canary, "http://169.254.169.254/api/1.0")
		if r.Code() != "VALIDATION_FAILED" {
			t.Fatalf("code = %q, want VALIDATION_FAILED: %s", r.Code(), r.Raw)
		}
		if servertest.Get(r.Data, "saveCredential.credential") != nil {
			t.Fatalf("a credential was stored: %s", r.Raw)
		}
		errs, _ := servertest.Get(r.Data, "saveCredential.userErrors").([]any)
		if len(errs) != 1 {
			t.Fatalf("userErrors: %s", r.Raw)
		}
		e := errs[0].(map[string]any)
		want := "The live test failed: plugboard will not test this credential: host 169.254.169.254 is not a host the connection type allows."
		if e["code"] != "TEST_FAILED" || e["message"] != want {
			t.Errorf("userError = %v, want TEST_FAILED %q", e, want)
		}
		r = env.Do(t, `{ credentials(first: 5) { totalCount } }`, nil)
		mustOK(t, r)
		if n := servertest.Get(r.Data, "credentials.totalCount"); n != float64(0) {
			t.Errorf("credentials after the refused save: %v", n)
		}
		assertNoCanary(t, env)
	})
}

// The plugin process of a type that tests through the host never holds the
// secret: after a save and a test through the host, its memory has no trace
// of the canary. The same reading of a plugin that asks for values (faulty,
// on the old path) finds its canary, so the check can fail.
func TestThroughHostPluginMemoryHoldsNoSecret(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("reading another process's memory needs root")
	}
	env := servertest.Start(t, servertest.Config{Plugins: []string{"asana", "faulty"}})
	asana, calls := fakeAsana(t)
	connID, custID := createAsanaConnection(t, env)
	r := saveAsanaTested(t, env, connID, custID, canary, asana.URL)
	mustOK(t, r)
	if servertest.Get(r.Data, "saveCredential.testResult.ok") != true || calls.Load() != 1 {
		t.Fatalf("save through the host: %s", r.Raw)
	}

	oldPath := "faulty-canary-0d15ea5e-" + strconv.Itoa(os.Getpid())
	r = env.Do(t, saveMutation, map[string]any{"in": map[string]any{"connectionID": faultyConnection(t, env), "test": true,
		"values": []any{map[string]any{"key": "mode", "value": "ok"}, map[string]any{"key": "secret", "value": oldPath}}}})
	mustOK(t, r)
	if servertest.Get(r.Data, "saveCredential.testResult.ok") != true {
		t.Fatalf("save on the old path: %s", r.Raw)
	}

	if n := memoryCount(t, env.PluginPID("faulty"), oldPath); n == 0 {
		t.Fatalf("the faulty plugin's memory holds no copy of the secret it was sent: the reading cannot see values")
	} else {
		t.Logf("faulty plugin (values sent): %d copies of its secret in memory", n)
	}
	if n := memoryCount(t, env.PluginPID("asana"), canary); n != 0 {
		t.Errorf("the asana plugin's memory holds %d copies of the token it was never to be sent", n)
	}
	// Nor the part a plugin could hold on its own (without the prefix).
	if n := memoryCount(t, env.PluginPID("asana"), canary[8:]); n != 0 {
		t.Errorf("the asana plugin's memory holds %d copies of part of the token", n)
	}
}

// memoryCount reads the readable mappings of process pid through
// /proc/<pid>/mem and counts the copies of needle.
func memoryCount(t *testing.T, pid int, needle string) int {
	t.Helper()
	if pid == 0 {
		t.Fatal("plugin process not found")
	}
	maps, err := os.Open(fmt.Sprintf("/proc/%d/maps", pid))
	if err != nil {
		t.Fatal(err)
	}
	defer maps.Close()
	mem, err := os.Open(fmt.Sprintf("/proc/%d/mem", pid))
	if err != nil {
		t.Fatal(err)
	}
	defer mem.Close()
	count, read := 0, 0
	sc := bufio.NewScanner(maps)
	for sc.Scan() {
		var start, end uint64
		var perms string
		if _, err := fmt.Sscanf(sc.Text(), "%x-%x %s", &start, &end, &perms); err != nil || perms[0] != 'r' {
			continue
		}
		buf := make([]byte, end-start)
		n, _ := mem.ReadAt(buf, int64(start)) // [vvar] and the like refuse
		read += n
		count += bytes.Count(buf[:n], []byte(needle))
	}
	if read == 0 {
		t.Fatalf("read nothing of process %d's memory", pid)
	}
	return count
}
