package oauth

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/plugboard/plugboard/ent"
	"github.com/plugboard/plugboard/ent/credential"
	"github.com/plugboard/plugboard/ent/predicate"
)

// nextRefresh is when a token obtained now should be refreshed: margin
// before it expires, but not before half its lifetime has passed, so a
// provider issuing tokens shorter than the margin is not called in a loop.
// nil for a token that does not expire.
func nextRefresh(tok *Token, margin time.Duration, now time.Time) *time.Time {
	if tok.Expiry.IsZero() {
		return nil
	}
	life := tok.Expiry.Sub(now)
	m := min(margin, life/2)
	if m < 0 {
		m = 0
	}
	t := tok.Expiry.Add(-m).UTC()
	return &t
}

// setToken sets the token columns of u to tok (sealed) and resets the
// failure count. It touches no input or secret column.
func setToken(u *ent.CredentialUpdate, sealed []byte, tok *Token, margin time.Duration, now time.Time) *ent.CredentialUpdate {
	u.SetToken(sealed).
		SetGrantedScopes(strings.Join(tok.Scopes, " ")).
		SetFailureCount(0)
	if tok.Expiry.IsZero() {
		u.ClearTokenExpiresAt()
	} else {
		u.SetTokenExpiresAt(tok.Expiry.UTC())
	}
	if next := nextRefresh(tok, margin, now); next != nil {
		u.SetNextRefreshAt(*next)
	} else {
		u.ClearNextRefreshAt()
	}
	return u
}

// sameToken is the predicate of a write that must not overwrite a token
// someone else stored since c was read.
func sameToken(c *ent.Credential) predicate.Credential {
	if len(c.Token) == 0 {
		return credential.TokenIsNil()
	}
	return credential.TokenEQ(c.Token)
}

// authorized stores tok as the token of cred after an authorization and
// makes it ACTIVE.
func (s *Service) authorized(ctx context.Context, cred *ent.Credential, f *flow, tok *Token, actor, action, msg string) (transition, error) {
	now := s.now()
	sealed, err := s.seal(ctx, cred.ID, tok)
	if err != nil {
		return transition{}, err
	}
	t := transition{cred: cred, from: cred.Status, to: credential.StatusACTIVE, detail: "authorized"}
	err = s.withTx(ctx, func(tx *ent.Tx) error {
		db := tx.Client()
		u := setToken(db.Credential.Update().Where(credential.ID(cred.ID)), sealed, tok, f.margin, now).
			SetStatus(t.to).SetStatusDetail(t.detail)
		if _, err := u.Save(ctx); err != nil {
			return err
		}
		if err := s.audit(ctx, db, cred, actor, action, msg); err != nil {
			return err
		}
		return s.auditTransition(ctx, db, t, actor)
	})
	if err != nil {
		return transition{}, fmt.Errorf("storing the token of credential %d: %w", cred.ID, err)
	}
	s.publish(ctx, t)
	return t, nil
}

// markError records a failed authorization: status ERROR with detail, the
// stored token left as it is.
func (s *Service) markError(ctx context.Context, cred *ent.Credential, detail, actor string) transition {
	t := transition{cred: cred, from: cred.Status, to: credential.StatusERROR, detail: detail}
	err := s.withTx(ctx, func(tx *ent.Tx) error {
		db := tx.Client()
		if err := db.Credential.UpdateOneID(cred.ID).SetStatus(t.to).SetStatusDetail(detail).Exec(ctx); err != nil {
			return err
		}
		if err := s.audit(ctx, db, cred, actor, "credential.authorization_failed", detail); err != nil {
			return err
		}
		return s.auditTransition(ctx, db, t, actor)
	})
	if err != nil {
		s.log.Error("recording a failed authorization", "credential", cred.ID, "err", err)
		t.to = t.from
		return t
	}
	s.publish(ctx, t)
	return t
}
