package connection

import (
	"context"
	"errors"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/plugboard/plugboard/ent"
	"github.com/plugboard/plugboard/ent/auditevent"
	"github.com/plugboard/plugboard/ent/onpremresource"
	"github.com/plugboard/plugboard/internal/onprem"
)

// auditOf lists the audit rows of action as "actor|message".
func (w *saveWorld) auditOf(t *testing.T, action string) []string {
	t.Helper()
	rows := w.db.AuditEvent.Query().Where(auditevent.Action(action)).Order(auditevent.ByID()).AllX(w.sys)
	out := make([]string, 0, len(rows))
	for _, r := range rows {
		out = append(out, r.Actor+"|"+r.Message)
	}
	return out
}

// TestAuthenticateAgent: a resource's token names it, its organization and
// its target; a wrong, malformed or rotated token, and a deleted
// resource's, are onprem.ErrBadToken.
func TestAuthenticateAgent(t *testing.T) {
	w := newSaveWorld(t)
	r, token, err := w.s.CreateOnPremResource(w.admin, OnPremResourceInput{CustomerID: w.cust.ID, Name: "db", Target: "db.internal:5432"})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background() // the hub's: no viewer
	a, err := w.s.AuthenticateAgent(ctx, token)
	if err != nil || a != (onprem.Agent{ResourceID: r.ID, OrganizationID: w.org.ID, Target: "db.internal:5432"}) {
		t.Fatalf("AuthenticateAgent = %+v, %v", a, err)
	}
	for _, bad := range []string{"", "pbagent_", token + "x", strings.TrimPrefix(token, "pbagent_"), strings.Repeat("pbagent_", 40)} {
		if _, err := w.s.AuthenticateAgent(ctx, bad); !errors.Is(err, onprem.ErrBadToken) {
			t.Fatalf("token %.12q: %v", bad, err)
		}
	}
	_, rotated, err := w.s.RotateOnPremResourceToken(w.admin, r.ID)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.s.AuthenticateAgent(ctx, token); !errors.Is(err, onprem.ErrBadToken) {
		t.Fatalf("the rotated token: %v", err)
	}
	if a, err := w.s.AuthenticateAgent(ctx, rotated); err != nil || a.ResourceID != r.ID {
		t.Fatalf("the new token: %+v, %v", a, err)
	}
	if err := w.s.DeleteOnPremResource(w.admin, r.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := w.s.AuthenticateAgent(ctx, rotated); !errors.Is(err, onprem.ErrBadToken) {
		t.Fatalf("a deleted resource's token: %v", err)
	}
}

// TestObserveAgent: a connect writes CONNECTED, the agent's version and
// last seen; a heartbeat moves last seen only; a disconnect writes
// DISCONNECTED. Each change of status, and only a change, is audited.
func TestObserveAgent(t *testing.T) {
	w := newSaveWorld(t)
	r, token, err := w.s.CreateOnPremResource(w.admin, OnPremResourceInput{CustomerID: w.cust.ID, Name: "db", Target: "db.internal:5432"})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	t0 := time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)
	read := func() (onpremresource.Status, string, time.Time) {
		got := w.db.OnPremResource.GetX(w.sys, r.ID)
		var seen time.Time
		if got.LastSeenAt != nil {
			seen = got.LastSeenAt.UTC()
		}
		return got.Status, got.AgentVersion, seen
	}
	w.s.ObserveAgent(ctx, onprem.Event{ResourceID: r.ID, Kind: onprem.Connected, AgentVersion: "1.4.2", At: t0})
	if st, v, seen := read(); st != onpremresource.StatusCONNECTED || v != "1.4.2" || !seen.Equal(t0) {
		t.Fatalf("after connect: %s %q %v", st, v, seen)
	}
	w.s.ObserveAgent(ctx, onprem.Event{ResourceID: r.ID, Kind: onprem.Seen, At: t0.Add(15 * time.Second)})
	w.s.ObserveAgent(ctx, onprem.Event{ResourceID: r.ID, Kind: onprem.Connected, AgentVersion: "1.4.2", At: t0.Add(20 * time.Second)})
	if st, _, seen := read(); st != onpremresource.StatusCONNECTED || !seen.Equal(t0.Add(20*time.Second)) {
		t.Fatalf("after a heartbeat and a reconnect: %s %v", st, seen)
	}
	if got := w.auditOf(t, "onprem.agent_connected"); len(got) != 1 || !strings.Contains(got[0], "onprem:agent|") || !strings.Contains(got[0], "1.4.2") {
		t.Fatalf("connect audit rows: %q", got)
	}
	w.s.ObserveAgent(ctx, onprem.Event{ResourceID: r.ID, Kind: onprem.Disconnected, At: t0.Add(time.Minute)})
	if st, v, seen := read(); st != onpremresource.StatusDISCONNECTED || v != "1.4.2" || !seen.Equal(t0.Add(20*time.Second)) {
		t.Fatalf("after disconnect: %s %q %v", st, v, seen)
	}
	if got := w.auditOf(t, "onprem.agent_disconnected"); len(got) != 1 {
		t.Fatalf("disconnect audit rows: %q", got)
	}
	// A resource deleted meanwhile: nothing to record, nothing fails.
	w.s.ObserveAgent(ctx, onprem.Event{ResourceID: r.ID + 100, Kind: onprem.Connected, At: t0})
	for _, a := range w.db.AuditEvent.Query().AllX(w.sys) {
		if strings.Contains(a.Message, token) {
			t.Fatal("an audit row holds the agent token")
		}
	}
}

// TestAuditTunnelStream: every ended stream is one audit row naming who it
// was for, its connection and credential, the bytes each way and its
// duration, also when the resource was deleted while it ran.
func TestAuditTunnelStream(t *testing.T) {
	w := newSaveWorld(t)
	r := w.authenticatedResource(t)
	ctx := context.Background()
	w.s.AuditTunnelStream(ctx, onprem.StreamRecord{ResourceID: r.ID,
		Info:    onprem.StreamInfo{Purpose: "test", Actor: "token:admin", ConnectionID: w.custConn.ID},
		BytesUp: 512, BytesDown: 2048, Duration: 1500 * time.Millisecond})
	if err := w.s.DeleteOnPremResource(w.admin, r.ID); err != nil {
		t.Fatal(err)
	}
	w.s.AuditTunnelStream(ctx, onprem.StreamRecord{ResourceID: r.ID, Info: onprem.StreamInfo{Purpose: "runtime", Actor: "token:runtime"},
		BytesUp: 1, Duration: time.Second, Err: &onprem.StreamError{Code: onprem.StreamRefused, Message: "cut"}})
	rows := w.db.AuditEvent.Query().Where(auditevent.Action("onprem.stream")).Order(auditevent.ByID()).AllX(w.sys)
	if len(rows) != 2 {
		t.Fatalf("%d stream audit rows", len(rows))
	}
	first := rows[0]
	if first.Actor != "token:admin" || first.ConnectionID == nil || *first.ConnectionID != w.custConn.ID ||
		first.OrganizationID != w.org.ID ||
		!strings.Contains(first.Message, "test stream") || !strings.Contains(first.Message, "512 bytes sent") ||
		!strings.Contains(first.Message, "2048 bytes received") || !strings.Contains(first.Message, "1.5s") {
		t.Fatalf("stream audit row: %+v", first)
	}
	if second := rows[1]; second.Actor != "token:runtime" || second.OrganizationID != w.org.ID ||
		!strings.Contains(second.Message, "connection_refused") {
		t.Fatalf("the deleted resource's stream: %+v", second)
	}
}

// TestResetAgentStatuses: a resource left CONNECTED by a server that
// crashed is DISCONNECTED once a server starts (audited), and a heartbeat
// of a session another replica holds marks it CONNECTED again.
func TestResetAgentStatuses(t *testing.T) {
	w := newSaveWorld(t)
	r, _, err := w.s.CreateOnPremResource(w.admin, OnPremResourceInput{CustomerID: w.cust.ID, Name: "db", Target: "db.internal:5432"})
	if err != nil {
		t.Fatal(err)
	}
	idle, _, err := w.s.CreateOnPremResource(w.admin, OnPremResourceInput{CustomerID: w.cust.ID, Name: "idle", Target: "db.internal:5433"})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	t0 := time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)
	w.s.ObserveAgent(ctx, onprem.Event{ResourceID: r.ID, Kind: onprem.Connected, AgentVersion: "1.4.2", At: t0})
	if err := w.s.ResetAgentStatuses(ctx); err != nil {
		t.Fatal(err)
	}
	status := func(id int) onpremresource.Status { return w.db.OnPremResource.GetX(w.sys, id).Status }
	if got := status(r.ID); got != onpremresource.StatusDISCONNECTED {
		t.Fatalf("after the reset: %s, want DISCONNECTED", got)
	}
	if got := status(idle.ID); got != onpremresource.StatusDISCONNECTED {
		t.Fatalf("the idle resource: %s", got)
	}
	if got := w.auditOf(t, "onprem.agent_disconnected"); len(got) != 1 {
		t.Fatalf("disconnect audit rows: %q, want the reset resource's only", got)
	}
	w.s.ObserveAgent(ctx, onprem.Event{ResourceID: r.ID, Kind: onprem.Seen, AgentVersion: "1.4.2", At: t0.Add(15 * time.Second)})
	if got := status(r.ID); got != onpremresource.StatusCONNECTED {
		t.Fatalf("after a heartbeat: %s, want CONNECTED", got)
	}
}

// authenticatedResource creates a resource of the world's customer and
// authenticates its agent's token, as the hub does when the agent connects.
func (w *saveWorld) authenticatedResource(t *testing.T) *ent.OnPremResource {
	t.Helper()
	r, token, err := w.s.CreateOnPremResource(w.admin, OnPremResourceInput{CustomerID: w.cust.ID, Name: "db", Target: "db.internal:5432"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.s.AuthenticateAgent(context.Background(), token); err != nil {
		t.Fatal(err)
	}
	return r
}

// cutTunnel is a Tunnel that records its cuts and holds no session.
type cutTunnel struct{ cuts []int }

func (c *cutTunnel) Dial(context.Context, int, onprem.StreamInfo) (net.Conn, error) {
	return nil, onprem.ErrAgentDisconnected
}

func (c *cutTunnel) Forward(context.Context, int, onprem.StreamInfo) (*onprem.Forwarder, error) {
	return nil, onprem.ErrAgentDisconnected
}
func (c *cutTunnel) Status(int) (bool, string, time.Time) { return false, "", time.Time{} }
func (c *cutTunnel) Reachable(context.Context, int) bool  { return false }
func (c *cutTunnel) Cut(id int)                           { c.cuts = append(c.cuts, id) }

// TestHeartbeatCutsRevokedAgent: a heartbeat of a session whose token was
// rotated, or whose resource was deleted, where no notice came (another
// replica's change, written straight to the database here) cuts the
// session; a heartbeat of a live token does not.
func TestHeartbeatCutsRevokedAgent(t *testing.T) {
	w := newSaveWorld(t)
	tun := &cutTunnel{}
	w.s.Tunnel = tun
	r := w.authenticatedResource(t)
	ctx := context.Background()
	seen := func() { w.s.ObserveAgent(ctx, onprem.Event{ResourceID: r.ID, Kind: onprem.Seen, At: time.Now()}) }
	seen()
	if len(tun.cuts) != 0 {
		t.Fatalf("a live token's heartbeat cut the session: %v", tun.cuts)
	}
	w.db.OnPremResource.UpdateOneID(r.ID).SetTokenHash("rotated-elsewhere").ExecX(w.sys)
	seen()
	if len(tun.cuts) != 1 || tun.cuts[0] != r.ID {
		t.Fatalf("after a rotation elsewhere, cuts %v", tun.cuts)
	}
	w.db.OnPremResource.DeleteOneID(r.ID).ExecX(w.sys)
	seen()
	if len(tun.cuts) != 2 {
		t.Fatalf("after a deletion elsewhere, cuts %v", tun.cuts)
	}
}
