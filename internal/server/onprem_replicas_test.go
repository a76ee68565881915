package server_test

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"strconv"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/plugboard/plugboard/internal/onprem"
	"github.com/plugboard/plugboard/internal/server/servertest"
)

// TestOnPremAcrossReplicas: two replicas on one PostgreSQL database, the
// agent's session held by replica A; on replica B a bound postgres
// credential is saved and tested (the plugin's SELECT 1) and read by the
// runtime, whose address on B answers SELECT 1, each stream relayed
// through A and audited there once, naming B; a token rotated on B cuts
// the session A holds at once (the agent stops: its token is refused) and
// B then answers ON_PREM_AGENT_DISCONNECTED.
func TestOnPremAcrossReplicas(t *testing.T) {
	// A heartbeat every 30 s: the cut must come by notice, not by a heartbeat.
	cfg := replicasConfig(t, servertest.Config{Plugins: []string{"postgres", "asana"}, Replica: true, OnPremHeartbeat: 30 * time.Second})
	a, b := servertest.Start(t, cfg), servertest.Start(t, cfg)
	pg, err := pgx.ParseConfig(cfg.DatabaseURL)
	if err != nil {
		t.Fatal(err)
	}
	w := newOnPremWorld(t, b)
	resID, token := createOnPrem(t, b, w.acme, "acme warehouse", net.JoinHostPort(pg.Host, strconv.Itoa(int(pg.Port))))
	agentDone := runAgentIn(t, a.URL, token)
	waitOnPrem(t, b, w.acme, resID, "CONNECTED")

	credID, r := saveBoundPostgres(t, b, w, resID, pg.Database, pg.User, pg.Password)
	if servertest.Get(r.Data, "saveCredential.testResult.ok") != true {
		t.Fatalf("the save's test on replica B: %s", r.Raw)
	}
	r = b.Do(t, testCredentialMutation, map[string]any{"id": credID})
	mustOK(t, r)
	if servertest.Get(r.Data, "testCredential.result.ok") != true {
		t.Fatalf("testCredential on replica B: %s", r.Raw)
	}
	runtimeSelectOne(t, b, onPremRuntimeToken(t, b), credID, nil)
	relayedAudited(t, a, b.URL, 3)

	start := time.Now()
	r = b.Do(t, `mutation($id: ID!) { rotateOnPremResourceToken(id: $id) { token } }`, map[string]any{"id": resID})
	mustOK(t, r)
	select {
	case err := <-agentDone:
		if !errors.Is(err, onprem.ErrTokenRefused) {
			t.Fatalf("the agent of the rotated token stopped with %v", err)
		}
		t.Logf("the session on A was cut %s after the rotation on B", time.Since(start).Round(time.Millisecond))
	case <-time.After(10 * time.Second):
		t.Fatal("the session on replica A outlived the rotation on replica B")
	}
	waitOnPrem(t, b, w.acme, resID, "DISCONNECTED")
	if r := b.Do(t, testCredentialMutation, map[string]any{"id": credID}); r.Code() != "ON_PREM_AGENT_DISCONNECTED" {
		t.Fatalf("testCredential on B without a session anywhere: %s", r.Raw)
	}
}

// runAgentIn runs an agent in the test process against serverURL; its
// RunAgent's answer comes on the channel.
func runAgentIn(t *testing.T, serverURL, token string) <-chan error {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- onprem.RunAgent(ctx, onprem.AgentOptions{Server: serverURL, Token: token, Insecure: true,
			Version: "test", Logger: slog.New(slog.DiscardHandler), MaxBackoff: time.Second})
	}()
	t.Cleanup(cancel)
	return done
}

// relayedAudited: holder's database has at least n stream rows relayed for
// replica via, each naming its connection.
func relayedAudited(t *testing.T, holder *servertest.Env, via string, n int) {
	t.Helper()
	want := "relayed for replica " + via
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		var got int
		err := holder.App.Store.DB.QueryRowContext(context.Background(),
			`SELECT count(*) FROM audit_events WHERE action = 'onprem.stream' AND connection_id IS NOT NULL AND message LIKE $1`,
			"%"+want+"%").Scan(&got)
		if err != nil {
			t.Fatal(err)
		}
		if got >= n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d stream audit rows %s, want at least %d", got, want, n)
		}
	}
}
