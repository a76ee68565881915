package main

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/plugboard/plugboard/internal/onprem"
	"github.com/plugboard/plugboard/internal/onprem/onpremtest"
)

const agentToken = "pb_agent_canary_b41d0c"

// agentRig is a hub on a TLS server at the host side of a private network
// whose PostgreSQL only the agent reaches.
type agentRig struct {
	p      *onpremtest.Private
	hub    *onprem.Hub
	url    string
	caFile string
	bin    string
}

func newAgentRig(t testing.TB) *agentRig {
	p := onpremtest.PrivatePostgres(t)
	r := &agentRig{p: p, bin: onpremtest.AgentBinary(t)}
	r.hub = onprem.NewHub(onprem.HubOptions{
		Authenticate: func(_ context.Context, tok string) (onprem.Agent, error) {
			if tok != agentToken {
				return onprem.Agent{}, onprem.ErrBadToken
			}
			return onprem.Agent{ResourceID: 1, OrganizationID: 1, Target: p.Target}, nil
		},
		Heartbeat: time.Second,
	})
	cfg, ca := onpremtest.TLS(t, p.HostAddr)
	srv := httptest.NewUnstartedServer(http.Handler(r.hub))
	srv.Listener = p.ListenHost(t)
	srv.TLS = cfg
	srv.StartTLS()
	t.Cleanup(func() { _ = r.hub.Close(); srv.Close() })
	r.url, r.caFile = srv.URL, ca
	return r
}

// start runs the agent in the namespace with the token in its environment.
func (r *agentRig) start(t testing.TB, token string, args ...string) *onpremtest.Agent {
	t.Helper()
	return r.p.StartAgent(t, r.bin, token, append([]string{"--server", r.url, "--ca-file", r.caFile}, args...)...)
}

func (r *agentRig) waitStatus(t testing.TB, want bool) {
	t.Helper()
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if c, _, _ := r.hub.Status(1); c == want {
			return
		}
	}
	t.Fatalf("Status never said connected=%v", want)
}

// selectOne connects pgx to a Forwarder of the tunnel and runs SELECT 1.
func (r *agentRig) connect(ctx context.Context) (*pgx.Conn, *onprem.Forwarder, error) {
	f, err := r.hub.Forward(ctx, 1, onprem.StreamInfo{Purpose: "test", Actor: "test"})
	if err != nil {
		return nil, nil, err
	}
	url := fmt.Sprintf("postgres://%s:%s@%s/%s?sslmode=disable", r.p.User, r.p.Password, f.Addr(), r.p.Database)
	c, err := pgx.Connect(ctx, url)
	if err != nil {
		f.Close()
		return nil, nil, err
	}
	var one int
	if err := c.QueryRow(ctx, "SELECT 1").Scan(&one); err != nil || one != 1 {
		c.Close(ctx)
		f.Close()
		return nil, nil, fmt.Errorf("SELECT 1: %d %v", one, err)
	}
	return c, f, nil
}

func TestAgentReachesPrivatePostgres(t *testing.T) {
	r := newAgentRig(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := r.p.DirectDial(ctx); err != nil {
		t.Fatalf("the PostgreSQL must be private: %v", err)
	}
	hostURL := fmt.Sprintf("postgres://%s:%s@%s/%s?sslmode=disable&connect_timeout=2", r.p.User, r.p.Password, r.p.Target, r.p.Database)
	if c, err := pgx.Connect(ctx, hostURL); err == nil {
		c.Close(ctx)
		t.Fatal("the host reached the private PostgreSQL at its own 127.0.0.1:5432")
	}
	a := r.start(t, agentToken, "--target", r.p.Target)
	r.waitStatus(t, true)
	c, f, err := r.connect(ctx)
	if err != nil {
		t.Fatalf("through the tunnel: %v\nagent: %s", err, a.Out)
	}
	c.Close(ctx)
	f.Close()

	// Kill the agent: Dial answers ErrAgentDisconnected at once.
	a.Kill()
	r.waitStatus(t, false)
	start := time.Now()
	if _, err := r.hub.Dial(ctx, 1, onprem.StreamInfo{}); !errors.Is(err, onprem.ErrAgentDisconnected) || time.Since(start) > 100*time.Millisecond {
		t.Fatalf("Dial without the agent: %v after %v", err, time.Since(start))
	}
	// Restart it: it works again, the server untouched.
	a = r.start(t, agentToken)
	r.waitStatus(t, true)
	c, f, err = r.connect(ctx)
	if err != nil {
		t.Fatalf("after the restart: %v\nagent: %s", err, a.Out)
	}
	defer f.Close()
	// Cut: the open PostgreSQL connection fails at once.
	r.hub.Cut(1)
	qctx, qcancel := context.WithTimeout(ctx, 3*time.Second)
	defer qcancel()
	start = time.Now()
	if _, err := c.Exec(qctx, "SELECT 1"); err == nil {
		t.Fatal("a query went through a cut tunnel")
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("the cut connection failed only after %v", d)
	}
	if strings.Contains(a.Out.String(), agentToken) {
		t.Error("the agent logged its token")
	}
}

func TestAgentRefusals(t *testing.T) {
	r := newAgentRig(t)
	// A wrong token: the agent exits non-zero, saying so, with no session.
	a := r.start(t, "pb_agent_wrong_canary")
	if err := a.Exited(t, 20*time.Second); err == nil || !strings.Contains(a.Out.String(), "401") {
		t.Errorf("wrong token: %v\n%s", err, a.Out)
	}
	if strings.Contains(a.Out.String(), "pb_agent_wrong_canary") {
		t.Error("the agent logged its token")
	}
	if c, _, _ := r.hub.Status(1); c {
		t.Error("a wrong token got a session")
	}
	// A pin other than the server's target: the agent exits, naming both.
	a = r.start(t, agentToken, "--target", "127.0.0.1:6543")
	if err := a.Exited(t, 20*time.Second); err == nil || !strings.Contains(a.Out.String(), "127.0.0.1:6543") || !strings.Contains(a.Out.String(), r.p.Target) {
		t.Errorf("pin mismatch: %v\n%s", err, a.Out)
	}
}

func TestAgentHelp(t *testing.T) {
	out, err := run(t, "agent", "--help")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"--server", "--token", "PLUGBOARD_AGENT_TOKEN", "--target", "--ca-file", "--insecure", "backoff", "401", "replaces"} {
		if !strings.Contains(out, want) {
			t.Errorf("agent --help does not say %q", want)
		}
	}
}
