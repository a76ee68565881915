package connection

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/plugboard/plugboard/ent"
	"github.com/plugboard/plugboard/ent/onpremresource"
	"github.com/plugboard/plugboard/internal/auth"
	"github.com/plugboard/plugboard/internal/onprem"
	"github.com/plugboard/plugboard/internal/secrets"
)

// This file holds the hub's callbacks (onprem.HubOptions): who an agent
// is, what its session does to the resource's state, and the audit row of
// every stream. They run outside any request, as plugboard itself.

// actorAgent is the audit actor of what an agent's session does.
const actorAgent = "onprem:agent"

// AuthenticateAgent maps an agent token to its resource: the token's
// SHA-256 is looked up across organizations. An unknown, rotated or
// deleted resource's token is onprem.ErrBadToken.
func (s *Service) AuthenticateAgent(ctx context.Context, token string) (onprem.Agent, error) {
	if !strings.HasPrefix(token, agentTokenPrefix) || len(token) > 200 {
		return onprem.Agent{}, onprem.ErrBadToken
	}
	r, err := s.DB.OnPremResource.Query().
		Where(onpremresource.TokenHash(secrets.HashToken(token))).Only(auth.SystemContext(ctx))
	if ent.IsNotFound(err) {
		return onprem.Agent{}, onprem.ErrBadToken
	}
	if err != nil {
		return onprem.Agent{}, err
	}
	s.agents.Store(r.ID, agentAuth{org: r.OrganizationID, tokenHash: r.TokenHash})
	return onprem.Agent{ResourceID: r.ID, OrganizationID: r.OrganizationID, Target: r.Target}, nil
}

// ObserveAgent writes what an agent's session did to its resource: a
// connect sets CONNECTED, the agent's version and last_seen_at; a
// heartbeat moves last_seen_at; a disconnect sets DISCONNECTED. A change
// of status is audited. A resource deleted meanwhile is left alone, and so
// is the end of a session another agent of the resource replaced.
func (s *Service) ObserveAgent(ctx context.Context, ev onprem.Event) {
	if err := s.observeAgent(ctx, ev); err != nil && !ent.IsNotFound(err) {
		s.log().Error("on-prem agent: recording its state", "resource", ev.ResourceID, "event", ev.Kind.String(), "err", err)
	}
}

func (s *Service) observeAgent(ctx context.Context, ev onprem.Event) error {
	if ev.Kind == onprem.Disconnected && s.Tunnel != nil {
		// A session replaced by a newer agent's ends after the newer one
		// connected: the resource is still connected.
		if connected, _, _ := s.Tunnel.Status(ev.ResourceID); connected {
			return nil
		}
	}
	r, err := s.DB.OnPremResource.Get(auth.SystemContext(ctx), ev.ResourceID)
	if ev.Kind == onprem.Seen && (ent.IsNotFound(err) || err == nil && s.revokedAgent(r)) {
		// Deleted or rotated on a replica whose notice did not come: the
		// heartbeat cuts the session.
		s.log().Warn("on-prem agent: its resource was deleted or its token rotated; cutting the session", "resource", ev.ResourceID)
		s.cutTunnel(ev.ResourceID)
		return nil
	}
	if err != nil {
		return err
	}
	if ev.Kind == onprem.Disconnected && r.Holder != "" && r.Holder != s.Replica {
		// Another replica holds a newer session of the resource.
		return nil
	}
	ctx = auth.OrganizationContext(ctx, r.OrganizationID)
	at := ev.At
	if at.IsZero() {
		at = s.now()
	}
	return s.withTx(ctx, func(tx *ent.Tx) error {
		u := tx.OnPremResource.UpdateOneID(r.ID)
		to := r.Status
		switch ev.Kind {
		case onprem.Connected:
			to = onpremresource.StatusCONNECTED
			u.SetAgentVersion(clip(ev.AgentVersion, 100)).SetLastSeenAt(at).SetHolder(s.Replica)
		case onprem.Seen:
			// A live session: CONNECTED again after another replica's
			// start reset it (ResetAgentStatuses).
			to = onpremresource.StatusCONNECTED
			u.SetLastSeenAt(at).SetHolder(s.Replica)
		case onprem.Disconnected:
			to = onpremresource.StatusDISCONNECTED
			u.SetHolder("")
		}
		if err := u.SetStatus(to).Exec(ctx); err != nil {
			return err
		}
		if to == r.Status {
			return nil
		}
		return s.writeAudit(ctx, tx.Client(), auditEntry{orgID: r.OrganizationID, actor: actorAgent,
			action: "onprem.agent_" + strings.ToLower(string(to)), message: agentStatusMessage(r, to, ev.AgentVersion)})
	})
}

// ResetAgentStatuses marks every CONNECTED resource this replica held (or
// that no replica names) DISCONNECTED, each change audited, when the
// server starts: no agent holds a session with a process that has just
// started, and a crash sends no Disconnected event, so without this a
// resource would show CONNECTED for an agent long gone. Another replica's
// resources are its own; if it is gone for good, LocateAgent and
// OnPremResources stop counting them connected three heartbeats after its
// last.
func (s *Service) ResetAgentStatuses(ctx context.Context) error {
	ids, err := s.DB.OnPremResource.Query().Where(onpremresource.StatusEQ(onpremresource.StatusCONNECTED),
		onpremresource.HolderIn("", s.Replica)).IDs(auth.SystemContext(ctx))
	if err != nil {
		return err
	}
	for _, id := range ids {
		ev := onprem.Event{ResourceID: id, Kind: onprem.Disconnected, At: s.now()}
		if err := s.observeAgent(ctx, ev); err != nil && !ent.IsNotFound(err) {
			return err
		}
	}
	return nil
}

// agentStatusMessage says how a resource's agent changed.
func agentStatusMessage(r *ent.OnPremResource, to onpremresource.Status, version string) string {
	if to == onpremresource.StatusCONNECTED {
		return fmt.Sprintf("the agent of on-prem resource %d (%s) connected (version %q)", r.ID, r.Name, clip(version, 100))
	}
	return fmt.Sprintf("the agent of on-prem resource %d (%s) disconnected", r.ID, r.Name)
}

// AuditTunnelStream writes the audit row of one ended stream: who it was
// for, which connection and credential, the bytes each way and how long it
// lasted. A stream of a resource deleted meanwhile is audited in the
// organization its agent authenticated in.
func (s *Service) AuditTunnelStream(ctx context.Context, rec onprem.StreamRecord) {
	a, ok := s.agents.Load(rec.ResourceID)
	org := 0
	if ok {
		org = a.(agentAuth).org
	} else {
		r, err := s.DB.OnPremResource.Get(auth.SystemContext(ctx), rec.ResourceID)
		if err != nil {
			s.log().Error("on-prem stream: no organization to audit it in", "resource", rec.ResourceID, "err", err)
			return
		}
		org = r.OrganizationID
	}
	ctx = auth.OrganizationContext(ctx, org)
	actor := rec.Info.Actor
	if actor == "" {
		actor = "system"
	}
	e := auditEntry{orgID: org, actor: actor, connectionID: rec.Info.ConnectionID, credentialID: rec.Info.CredentialID,
		action: "onprem.stream", message: streamMessage(rec)}
	if err := s.writeAudit(ctx, s.DB, e); err != nil {
		s.log().Error("on-prem stream: writing its audit row", "resource", rec.ResourceID, "err", err)
	}
}

// streamMessage describes an ended stream; it names no value of a
// credential.
func streamMessage(rec onprem.StreamRecord) string {
	purpose := rec.Info.Purpose
	if purpose == "" {
		purpose = "a"
	}
	msg := fmt.Sprintf("%s stream through on-prem resource %d: %d bytes sent, %d bytes received, %s",
		purpose, rec.ResourceID, rec.BytesUp, rec.BytesDown, rec.Duration.Round(time.Millisecond))
	if rec.Info.Via != "" {
		msg += "; relayed for replica " + clip(rec.Info.Via, 200)
	}
	if rec.Err != nil {
		msg += "; " + clip(rec.Err.Error(), 300)
	}
	return msg
}

// agentAuth is what a resource's agent authenticated with on this replica.
type agentAuth struct {
	org       int
	tokenHash string
}

// revokedAgent reports whether the agent this replica authenticated for r
// used a token r no longer has (rotated).
func (s *Service) revokedAgent(r *ent.OnPremResource) bool {
	a, ok := s.agents.Load(r.ID)
	return ok && a.(agentAuth).tokenHash != r.TokenHash
}

// agentStale is how long after its last heartbeat a resource counts as
// not connected: three heartbeats.
func (s *Service) agentStale() time.Duration {
	if s.AgentHeartbeat > 0 {
		return 3 * s.AgentHeartbeat
	}
	return 45 * time.Second
}

// agentLive reports whether r's agent holds a session on some replica, as
// the row says: CONNECTED and seen within agentStale (heartbeats are
// stamped with the wall clock, not the domain's).
func (s *Service) agentLive(r *ent.OnPremResource) bool {
	return r.Status == onpremresource.StatusCONNECTED && r.LastSeenAt != nil &&
		time.Since(*r.LastSeenAt) < s.agentStale()
}

// showLiveness makes r's status say what agentLive says: a resource whose
// holder stopped without a word (a crash) is DISCONNECTED, whatever its
// row says.
func (s *Service) showLiveness(r *ent.OnPremResource) {
	if !s.agentLive(r) {
		r.Status = onpremresource.StatusDISCONNECTED
	}
}

// LocateAgent names the replica holding resource id's agent session, for
// the hub's relay: the holder the row records while the agent is live, ""
// otherwise.
func (s *Service) LocateAgent(ctx context.Context, id int) (string, error) {
	r, err := s.DB.OnPremResource.Get(auth.SystemContext(ctx), id)
	if ent.IsNotFound(err) {
		return "", nil
	}
	if err != nil || !s.agentLive(r) {
		return "", err
	}
	return r.Holder, nil
}
