package connection

import (
	"context"
	"errors"
	"fmt"

	"github.com/plugboard/plugboard/ent"
	"github.com/plugboard/plugboard/ent/credential"
	"github.com/plugboard/plugboard/internal/auth"
	"github.com/plugboard/plugboard/internal/events"
)

// statusChange is a change of one credential's status, decided by a flow
// (save, test, rollback, authorization, refresh, disconnect).
type statusChange struct {
	// cred is the credential as read before the change: its id,
	// organization, connection, holder and current status.
	cred *ent.Credential
	to   credential.Status
	// detail says why, for people; never a value. Empty keeps the current
	// detail, and with to equal to the current status changes nothing.
	detail string
	actor  string
	// recompute brings the instances the credential serves up to date even
	// when the status stays (the credential's values changed);
	// orgValuesChanged then also marks deployed instances of the
	// organization's values as needing a deploy.
	recompute        bool
	orgValuesChanged bool
}

func (c statusChange) changed() bool { return c.cred.Status != c.to }

// transition is the only code that changes a credential's status: in tx it
// sets the status and detail and writes the credential.status_changed
// entry; once tx commits it publishes the change and recomputes the
// instances that bind the credential. Nothing of it runs when tx rolls
// back. The caller's own writes to the row (values, token) stay the
// caller's.
func (s *Service) transition(ctx context.Context, tx *ent.Tx, c statusChange) error {
	db := tx.Client()
	if c.changed() || c.detail != "" {
		u := db.Credential.Update().Where(credential.ID(c.cred.ID)).SetStatus(c.to)
		if c.detail != "" {
			u.SetStatusDetail(c.detail)
		}
		n, err := u.Save(ctx)
		if err == nil && n == 0 {
			err = errors.New("no such credential")
		}
		if err != nil {
			return fmt.Errorf("setting the status of credential %d: %w", c.cred.ID, err)
		}
	}
	if c.changed() {
		msg := fmt.Sprintf("status %s → %s", c.cred.Status, c.to)
		e := credentialEntry(c.cred, c.actor, "credential.status_changed", msg)
		e.from, e.to, e.detail = c.cred.Status, c.to, c.detail
		if e.detail == "" {
			e.detail = c.cred.StatusDetail
		}
		if err := s.writeAudit(ctx, db, e); err != nil {
			return err
		}
	}
	if c.changed() || c.recompute {
		tx.OnCommit(func(next ent.Committer) ent.Committer {
			return ent.CommitFunc(func(cctx context.Context, tx *ent.Tx) error {
				if err := next.Commit(cctx, tx); err != nil {
					return err
				}
				s.afterTransition(context.WithoutCancel(ctx), c)
				return nil
			})
		})
	}
	return nil
}

// afterTransition publishes a committed change and recomputes the
// instances of the credential. A fault here is logged, never returned: the
// change is committed.
func (s *Service) afterTransition(ctx context.Context, c statusChange) {
	if c.changed() && s.Events != nil {
		detail := c.detail
		if detail == "" {
			detail = c.cred.StatusDetail
		}
		s.Events.Publish(ctx, events.StatusChange{
			OrganizationID: c.cred.OrganizationID, CredentialID: c.cred.ID, ConnectionID: c.cred.ConnectionID,
			From: string(c.cred.Status), To: string(c.to), Detail: detail, At: s.now(),
		})
	}
	if err := s.afterCredentialChange(auth.OrganizationContext(ctx, c.cred.OrganizationID), c.cred, c.orgValuesChanged); err != nil {
		s.log().Warn("updating the instances of a credential", "credential", c.cred.ID, "err", err)
	}
}
