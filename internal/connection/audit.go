package connection

import (
	"context"
	"time"

	"entgo.io/ent/dialect"

	"github.com/plugboard/plugboard/ent"
	"github.com/plugboard/plugboard/ent/credential"
	"github.com/plugboard/plugboard/internal/auth"
)

// Audit actors of work plugboard does on its own, not for a viewer.
const (
	actorCallback = "oauth2:callback"
	actorRefresh  = "oauth2:refresh"
)

type auditEntry struct {
	// orgID and actor default to the viewer's when written with audit.
	orgID        int
	actor        string
	credentialID int
	connectionID int
	action       string
	// message says what happened; never a value of an input.
	message string

	// What the webhook event of the entry names (outbox.go); none of it is
	// a column of the audit row. cred, when set, is the credential as read
	// (a deleted one included); instanceID names an instance's event.
	cred       *ent.Credential
	instanceID int
	created    bool
	from, to   credential.Status
	detail     string
}

// credentialEntry is an entry about credential c, by actor.
func credentialEntry(c *ent.Credential, actor, action, message string) auditEntry {
	return auditEntry{
		orgID: c.OrganizationID, actor: actor, credentialID: c.ID, connectionID: c.ConnectionID,
		action: action, message: message, cred: c,
	}
}

// audit writes one entry of the connection log in the viewer's
// organization.
func (s *Service) audit(ctx context.Context, db *ent.Client, v *auth.Viewer, e auditEntry) error {
	e.orgID, e.actor = v.OrganizationID, v.Actor
	return s.writeAudit(ctx, db, e)
}

// writeAudit is the one writer of the connection log: every AuditEvent of
// the domain is written here, in the caller's transaction (db).
func (s *Service) writeAudit(ctx context.Context, db *ent.Client, e auditEntry) error {
	return writeAudit(ctx, db, s.now(), e)
}

// writeAudit writes e at the time at; Service.writeAudit and Access call it.
// The webhook events e reports go to the outbox in the same transaction.
func writeAudit(ctx context.Context, db *ent.Client, at time.Time, e auditEntry) error {
	if err := auditCreate(db, at, e).Exec(ctx); err != nil {
		return err
	}
	return writeOutbox(ctx, db, at, e)
}

// auditCreate is the builder of e's row, written at at.
func auditCreate(db *ent.Client, at time.Time, e auditEntry) *ent.AuditEventCreate {
	c := db.AuditEvent.Create().
		SetOrganizationID(e.orgID).
		SetActor(e.actor).
		SetAction(e.action).
		SetMessage(e.message).
		SetAt(at)
	if e.credentialID != 0 {
		c.SetCredentialID(e.credentialID)
	}
	if e.connectionID != 0 {
		c.SetConnectionID(e.connectionID)
	}
	return c
}

// AuditRuntimeRead records that an integration runtime read a credential's
// values. It returns once the row is committed: concurrent reads' rows are
// committed together (groupCommit), so the audit of a read answered 200
// survives the process being killed right after.
func (s *Service) AuditRuntimeRead(ctx context.Context, c *ent.Credential) error {
	v, err := Authorize(ctx, ReadRuntimeValues)
	if err != nil {
		return err
	}
	return s.runtimeAudits().write(ctx, s.now(), auditEntry{
		orgID: v.OrganizationID, actor: v.Actor,
		credentialID: c.ID, connectionID: c.ConnectionID, action: "credential.runtime_read",
		message: "values read by an integration runtime",
	})
}

// runtimeAudits is the group commit of runtime-read audit entries.
func (s *Service) runtimeAudits() *groupCommit {
	s.auditInit.Do(func() {
		s.audits = &groupCommit{db: s.DB, dialect: s.Refresh.Dialect, parallel: 1}
		if s.Refresh.Dialect == dialect.Postgres {
			s.audits.parallel = auditParallelPostgres
		}
	})
	return s.audits
}
