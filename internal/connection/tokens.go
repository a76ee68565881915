package connection

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/plugboard/plugboard/ent"
	"github.com/plugboard/plugboard/ent/connectiontype"
	"github.com/plugboard/plugboard/ent/credential"
	"github.com/plugboard/plugboard/ent/predicate"
	"github.com/plugboard/plugboard/internal/auth"
	"github.com/plugboard/plugboard/internal/oauth"
)

// A credential's OAuth 2.0 token lives on its row, beside its status: the
// sealed token (oauth.Service.Seal) and the plain columns the sweeper reads
// (expiry, granted scopes, refresh schedule, failure count). This package
// writes them, in the same transaction as the status they go with; the
// engine only seals and opens the token.

// nextRefresh is when a token obtained now should be refreshed: margin
// before it expires, but not before half its lifetime has passed, so a
// provider issuing tokens shorter than the margin is not called in a loop.
// nil for a token that does not expire.
func nextRefresh(tok *oauth.Token, margin time.Duration, now time.Time) *time.Time {
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
// failure count. It touches no input, secret or status column.
func setToken(u *ent.CredentialUpdate, sealed []byte, tok *oauth.Token, margin time.Duration, now time.Time) *ent.CredentialUpdate {
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

// storeToken seals tok as the token of credential credID (of type ct) and
// sets the token columns in db, the caller's transaction. The caller
// changes the status (transition).
func (s *Service) storeToken(ctx context.Context, db *ent.Client, credID int, ct *ent.ConnectionType, tok *oauth.Token) error {
	if tok == nil || tok.AccessToken == "" {
		return fmt.Errorf("storing the token of credential %d: %w: no access token", credID, oauth.ErrProvider)
	}
	sealed, err := s.OAuth.Seal(ctx, credID, tok)
	if err != nil {
		return err
	}
	n, err := setToken(db.Credential.Update().Where(credential.ID(credID)), sealed, tok, s.OAuth.MarginOf(ct), s.now()).Save(ctx)
	if err != nil {
		return fmt.Errorf("storing the token of credential %d: %w", credID, err)
	}
	if n == 0 {
		return credentialNotFound(credID)
	}
	return nil
}

// tokenDetail is the status detail of a credential that was just given a
// token.
func tokenDetail(ct *ent.ConnectionType) string {
	if ct != nil && ct.AuthKind == connectiontype.AuthKindOAUTH2_CLIENT_CREDENTIALS {
		return "token obtained with the client credentials"
	}
	return "authorized"
}

// StoreToken stores tok as the token of credential credID (of type ct) in
// tx and makes it ACTIVE: the token columns (expiry, granted scopes,
// refresh schedule, failure count 0) and the status, audited and published
// once tx commits. Only the token and status columns are written.
func (s *Service) StoreToken(ctx context.Context, tx *ent.Tx, credID int, ct *ent.ConnectionType, tok *oauth.Token) error {
	cred, err := tx.Client().Credential.Get(ctx, credID)
	if ent.IsNotFound(err) {
		return credentialNotFound(credID)
	}
	if err != nil {
		return err
	}
	if err := s.storeToken(ctx, tx.Client(), credID, ct, tok); err != nil {
		return err
	}
	actor := "plugboard"
	if v := auth.FromContext(ctx); v != nil && v.Actor != "" {
		actor = v.Actor
	}
	return s.transition(ctx, tx, statusChange{cred: cred, to: credential.StatusACTIVE, detail: tokenDetail(ct), actor: actor})
}

// credentialNotFound is the engine's not-found error of a credential.
func credentialNotFound(id int) error {
	return &oauth.CredentialError{ID: id, Err: oauth.ErrNotFound}
}
