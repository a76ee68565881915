package connection

import (
	"context"

	"github.com/plugboard/plugboard/ent"
	"github.com/plugboard/plugboard/internal/auth"
)

type auditEntry struct {
	credentialID int
	connectionID int
	action       string
	// message says what happened; never a value of an input.
	message string
}

// audit writes one entry of the connection log in the viewer's
// organization.
func (s *Service) audit(ctx context.Context, db *ent.Client, v *auth.Viewer, e auditEntry) error {
	return s.auditOrg(ctx, db, v.OrganizationID, v.Actor, e)
}

func (s *Service) auditOrg(ctx context.Context, db *ent.Client, orgID int, actor string, e auditEntry) error {
	c := db.AuditEvent.Create().
		SetOrganizationID(orgID).
		SetActor(actor).
		SetAction(e.action).
		SetMessage(e.message).
		SetAt(s.now())
	if e.credentialID != 0 {
		c.SetCredentialID(e.credentialID)
	}
	if e.connectionID != 0 {
		c.SetConnectionID(e.connectionID)
	}
	return c.Exec(ctx)
}

// AuditRuntimeRead records that an integration runtime read a credential's
// values.
func (s *Service) AuditRuntimeRead(ctx context.Context, c *ent.Credential) error {
	v, err := Authorize(ctx, ReadRuntimeValues)
	if err != nil {
		return err
	}
	return s.audit(ctx, s.DB, v, auditEntry{
		credentialID: c.ID, connectionID: c.ConnectionID, action: "credential.runtime_read",
		message: "values read by an integration runtime",
	})
}
