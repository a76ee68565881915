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

// A type whose base URL points at the cloud metadata address is refused by
// the egress policy before anything is sent, with a message that says so,
// and nothing is stored.
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
		want := "The live test failed: Could not reach 169.254.169.254: plugboard refused to connect to 169.254.169.254: a cloud metadata address."
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
