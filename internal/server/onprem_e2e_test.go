package server_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/plugboard/plugboard/internal/auth"
	"github.com/plugboard/plugboard/internal/onprem"
	"github.com/plugboard/plugboard/internal/onprem/onpremtest"
	"github.com/plugboard/plugboard/internal/server"
	"github.com/plugboard/plugboard/internal/server/servertest"
)

// startAgent runs the plugboard binary as `plugboard agent` in p's
// namespace against serverURL, its token in the environment.
func startAgent(t *testing.T, p *onpremtest.Private, bin, serverURL, token string) *onpremtest.Agent {
	t.Helper()
	return p.StartAgent(t, bin, token, "--server", serverURL, "--insecure", "--max-backoff", "1s")
}

// waitOnPrem polls onPremResources until resource id has status.
func waitOnPrem(t *testing.T, env *servertest.Env, customerID, id, status string) map[string]any {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		r := env.Do(t, onPremListQuery, map[string]any{"c": customerID})
		mustOK(t, r)
		list, _ := servertest.Get(r.Data, "onPremResources").([]any)
		for _, x := range list {
			if m := x.(map[string]any); m["id"] == id && m["status"] == status {
				return m
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("resource %s never %s: %s", id, status, r.Raw)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

const testCredentialMutation = `mutation($id: ID!) { testCredential(id: $id) { credential { status } result { ok message } userErrors { code message } } }`

// TestOnPremEndToEnd: a PostgreSQL in a network namespace plugboard cannot
// reach; a resource made through GraphQL; `plugboard agent` started as its
// own process in the namespace; a customer's postgres credential bound to
// the resource tested through the tunnel (the plugin's real SELECT 1);
// the agent killed (ON_PREM_AGENT_DISCONNECTED) and restarted (works, the
// server untouched); onPremResources' status, last seen and version; the
// audit rows of the streams; a rotated token refused and its session cut;
// a deleted resource's agent cut with its live stream.
func TestOnPremEndToEnd(t *testing.T) {
	p := onpremtest.PrivatePostgres(t)
	bin := onpremtest.AgentBinary(t)
	env := servertest.Start(t, servertest.Config{Plugins: []string{"postgres", "asana"}, Listener: p.ListenHost(t), OnPremHeartbeat: time.Second})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := p.DirectDial(ctx); err != nil {
		t.Fatalf("the PostgreSQL must be private: %v", err)
	}
	w := newOnPremWorld(t, env)
	resID, token := createOnPrem(t, env, w.acme, "private warehouse", p.Target)
	a := startAgent(t, p, bin, env.URL, token)
	seen := waitOnPrem(t, env, w.acme, resID, "CONNECTED")
	if seen["lastSeenAt"] == nil || seen["agentVersion"] == "" {
		t.Fatalf("a connected resource: %v", seen)
	}

	credID, r := saveBoundPostgres(t, env, w, resID, p.Database, p.User, p.Password)
	if servertest.Get(r.Data, "saveCredential.testResult.ok") != true {
		t.Fatalf("the save's test through the tunnel: %s\nagent: %s", r.Raw, a.Out)
	}
	mustTest := func(want bool) *servertest.Response {
		t.Helper()
		r := env.Do(t, testCredentialMutation, map[string]any{"id": credID})
		if want {
			mustOK(t, r)
			if servertest.Get(r.Data, "testCredential.result.ok") != true || !strings.Contains(servertest.Str(r.Data, "testCredential.result.message"), "127.0.0.1") {
				t.Fatalf("testCredential through the tunnel: %s", r.Raw)
			}
		}
		return r
	}
	mustTest(true)
	rt := onPremRuntimeToken(t, env)
	addr := runtimeSelectOne(t, env, rt, credID, p)

	// Kill the agent: the test says the agent is not connected.
	a.Kill()
	waitOnPrem(t, env, w.acme, resID, "DISCONNECTED")
	if r := mustTest(false); r.Code() != "ON_PREM_AGENT_DISCONNECTED" {
		t.Fatalf("testCredential without the agent: %s", r.Raw)
	}
	if status, body := runtimeGet(t, env, rt, credID); status != http.StatusServiceUnavailable || !strings.Contains(body, `"code":"ON_PREM_AGENT_DISCONNECTED"`) {
		t.Fatalf("runtime read without the agent: %d %s", status, body)
	}
	// Restart it: it works again without touching the server.
	a = startAgent(t, p, bin, env.URL, token)
	waitOnPrem(t, env, w.acme, resID, "CONNECTED")
	mustTest(true)
	if again := runtimeSelectOne(t, env, rt, credID, p); again != addr {
		t.Errorf("the runtime address moved from %s to %s across the agent's restart", addr, again)
	}
	checkStreamAudit(t, env, p.Password, token)
	replacedStaysConnected(t, env, p, bin, w.acme, resID, token)

	onPremRefusals(t, env, p, bin, w, resID, token, a)
	deletedCredentialForwarderCloses(t, env, w.pgConn, addr)
}

// saveBoundPostgres saves acme's postgres credential bound to resource
// resID, tested; it returns the credential's id and the answer.
func saveBoundPostgres(t *testing.T, env *servertest.Env, w onPremWorld, resID, database, user, password string) (string, *servertest.Response) {
	t.Helper()
	val := func(k, v string) map[string]any { return map[string]any{"key": k, "value": v} }
	r := env.Do(t, saveMutation, map[string]any{"in": map[string]any{"connectionID": w.pgConn, "customerID": w.acme,
		"onPremResourceID": resID, "test": true, "values": []any{val("database", database), val("user", user),
			val("password", password), val("sslmode", "disable")}}})
	mustOK(t, r)
	return servertest.Str(r.Data, "saveCredential.credential.id"), r
}

// deletedCredentialForwarderCloses: deleting the connection (and with it
// the bound credential) closes the credential's runtime forwarder, so its
// address stops answering.
func deletedCredentialForwarderCloses(t *testing.T, env *servertest.Env, connID, addr string) {
	t.Helper()
	r := env.Do(t, `mutation($id: ID!) { deleteConnection(id: $id) { userErrors { code message } } }`, map[string]any{"id": connID})
	mustOK(t, r)
	if errs, _ := servertest.Get(r.Data, "deleteConnection.userErrors").([]any); len(errs) > 0 {
		t.Fatalf("deleting the connection: %s", r.Raw)
	}
	c, err := net.DialTimeout("tcp", addr, 2*time.Second)
	if err == nil {
		c.Close()
		t.Fatalf("the deleted credential's runtime address %s still accepts connections", addr)
	}
}

// checkStreamAudit: the streams of the tests are audited with who, which
// connection, bytes and duration; no secret is in any row or answer.
func checkStreamAudit(t *testing.T, env *servertest.Env, secrets ...string) {
	t.Helper()
	rows, err := env.App.Store.DB.QueryContext(context.Background(),
		`SELECT actor, message, connection_id FROM audit_events WHERE action = 'onprem.stream' ORDER BY id`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	n, runtime := 0, 0
	for rows.Next() {
		var actor, msg string
		var conn *int
		if err := rows.Scan(&actor, &msg, &conn); err != nil {
			t.Fatal(err)
		}
		if strings.HasPrefix(msg, "test stream") {
			n++
		} else if strings.HasPrefix(msg, "runtime stream") {
			runtime++
		}
		if actor == "" || conn == nil || !strings.Contains(msg, "bytes received") {
			t.Errorf("stream audit row: %q %q %v", actor, msg, conn)
		}
		for _, s := range secrets {
			if strings.Contains(msg, s) {
				t.Error("a stream audit row holds a secret")
			}
		}
	}
	if n < 3 || runtime < 1 {
		t.Fatalf("%d test and %d runtime stream audit rows, want at least 3 and 1", n, runtime)
	}
	for _, s := range secrets {
		if strings.Contains(env.Logs.String(), s) {
			t.Error("a secret reached the server's log")
		}
	}
}

// onPremRefusals: a wrong token and a rotated one are refused by the real
// server (the agent exits), rotation cuts the live session, and deleting a
// resource cuts its agent and a live stream at once.
func onPremRefusals(t *testing.T, env *servertest.Env, p *onpremtest.Private, bin string, w onPremWorld, resID, token string, live *onpremtest.Agent) {
	t.Helper()
	wrong := startAgent(t, p, bin, env.URL, "pbagent_wrongcanary0000000000000000000000")
	if err := wrong.Exited(t, 20*time.Second); err == nil || !strings.Contains(wrong.Out.String(), "401") {
		t.Fatalf("an agent with a wrong token: %v\n%s", err, wrong.Out)
	}
	r := env.Do(t, rotateOnPremMutation, map[string]any{"id": resID})
	mustOK(t, r)
	waitOnPrem(t, env, w.acme, resID, "DISCONNECTED")
	if err := live.Exited(t, 20*time.Second); err == nil {
		t.Fatalf("the agent of a rotated token kept going:\n%s", live.Out)
	}
	if strings.Contains(live.Out.String(), token) {
		t.Error("the agent logged its token")
	}

	// A resource of its own, deleted under a live stream.
	doomed, doomedToken := createOnPrem(t, env, w.acme, "doomed", p.Target)
	d := startAgent(t, p, bin, env.URL, doomedToken)
	waitOnPrem(t, env, w.acme, doomed, "CONNECTED")
	var doomedID int
	if err := env.App.Store.DB.QueryRowContext(context.Background(), `SELECT id FROM on_prem_resources WHERE name = 'doomed'`).Scan(&doomedID); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	f, err := env.App.Hub.Forward(ctx, doomedID, onprem.StreamInfo{Purpose: "test", Actor: "e2e"})
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	c, err := pgx.Connect(ctx, fmt.Sprintf("postgres://%s:%s@%s/%s?sslmode=disable", p.User, p.Password, f.Addr(), p.Database))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(context.Background())
	mustOK(t, env.Do(t, deleteOnPremMutation, map[string]any{"id": doomed}))
	qctx, qcancel := context.WithTimeout(ctx, 3*time.Second)
	defer qcancel()
	if _, err := c.Exec(qctx, "SELECT 1"); err == nil {
		t.Fatal("a query went through a deleted resource's tunnel")
	}
	if err := d.Exited(t, 20*time.Second); err == nil {
		t.Fatalf("a deleted resource's agent kept going:\n%s", d.Out)
	}
}

// onPremRuntimeToken is a RUNTIME token of the default organization.
func onPremRuntimeToken(t *testing.T, env *servertest.Env) string {
	t.Helper()
	ctx := context.Background()
	org, err := server.EnsureOrganization(ctx, env.App.Store.Client, server.DefaultOrgSlug)
	if err != nil {
		t.Fatal(err)
	}
	tok, _, err := env.App.Tokens.Create(ctx, org.ID, auth.RoleRuntime, "runtime")
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// runtimeGet reads credential id as the runtime does.
func runtimeGet(t *testing.T, env *servertest.Env, token, id string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, env.URL+"/runtime/v1/credentials/"+id, nil)
	req.Header.Set("Authorization", "Bearer "+token)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, string(b)
}

// runtimeSelectOne reads a bound credential as the runtime does and runs
// SELECT 1 at the host and port it names: a local address plugboard
// forwards over the tunnel. It returns that address.
func runtimeSelectOne(t *testing.T, env *servertest.Env, token, id string, p *onpremtest.Private) string {
	t.Helper()
	status, body := runtimeGet(t, env, token, id)
	var read struct {
		Values map[string]string `json:"values"`
	}
	if err := json.Unmarshal([]byte(body), &read); err != nil || status != http.StatusOK {
		t.Fatalf("runtime read: %d %s", status, body)
	}
	host, port := read.Values["host"], read.Values["port"]
	if host != "127.0.0.1" || port == "" || port == "5432" {
		t.Fatalf("the runtime read names %s:%s", host, port)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	c, err := pgx.Connect(ctx, fmt.Sprintf("postgres://%s:%s@%s:%s/%s?sslmode=disable", read.Values["user"], read.Values["password"], host, port, read.Values["database"]))
	if err != nil {
		t.Fatalf("connecting where the runtime read says: %v", err)
	}
	defer c.Close(context.Background())
	var one int
	if err := c.QueryRow(ctx, "SELECT 1").Scan(&one); err != nil || one != 1 {
		t.Fatalf("SELECT 1 at the runtime address: %d %v", one, err)
	}
	return host + ":" + port
}

// replacedStaysConnected: a second agent with the same token replaces the
// first; the end of the replaced session does not mark the resource
// DISCONNECTED while the new one holds it.
func replacedStaysConnected(t *testing.T, env *servertest.Env, p *onpremtest.Private, bin, customerID, resID, token string) {
	t.Helper()
	second := startAgent(t, p, bin, env.URL, token)
	time.Sleep(200 * time.Millisecond) // the second agent connects and replaces the first
	for deadline := time.Now().Add(3 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		r := env.Do(t, onPremListQuery, map[string]any{"c": customerID})
		mustOK(t, r)
		for _, x := range servertest.Get(r.Data, "onPremResources").([]any) {
			if m := x.(map[string]any); m["id"] == resID && m["status"] != "CONNECTED" {
				t.Fatalf("with two agents of one resource it is %v\nsecond agent: %s", m["status"], second.Out)
			}
		}
	}
	second.Kill()
}
