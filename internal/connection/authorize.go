package connection

import (
	"context"
	"fmt"
	"net/url"
	"strings"

	"github.com/plugboard/plugboard/ent"
	"github.com/plugboard/plugboard/ent/credential"
	"github.com/plugboard/plugboard/internal/auth"
	"github.com/plugboard/plugboard/internal/oauth"
)

// oauthCredential reads a credential and its resolved values for an
// authorization or a disconnect.
func (s *Service) oauthCredential(ctx context.Context, id int) (*ent.Credential, *ent.ConnectionType, map[string]string, error) {
	cred, err := s.DB.Credential.Get(ctx, id)
	if ent.IsNotFound(err) {
		return nil, nil, nil, credentialNotFound(id)
	}
	if err != nil {
		return nil, nil, nil, err
	}
	ct, values, err := s.Resolved(auth.OrganizationContext(ctx, cred.OrganizationID), cred)
	if err != nil {
		return nil, nil, nil, err
	}
	return cred, ct, values, nil
}

// StartAuthorization is Authorize for the API.
func (s *Service) StartAuthorization(ctx context.Context, credentialID int, redirectURL, failureURL string, popup bool) (string, error) {
	return s.Authorize(ctx, oauth.StartInput{CredentialID: credentialID, RedirectURL: redirectURL, FailureURL: failureURL, Popup: popup})
}

// Authorize begins the authorization code flow for a credential and
// returns the provider's authorize URL to send the browser to. The viewer
// must administer the credential's organization (or be its customer's
// user); the credential must be of an OAUTH2_AUTHORIZATION_CODE type.
func (s *Service) Authorize(ctx context.Context, in oauth.StartInput) (string, error) {
	v, err := Authorize(ctx, StartOAuth)
	if err != nil {
		return "", err
	}
	if s.OAuth == nil {
		return "", fmt.Errorf("%w: OAuth 2.0 is not configured on this server", oauth.ErrMisconfigured)
	}
	if err := s.OAuth.CanAuthorize(); err != nil {
		return "", err
	}
	cred, ct, values, err := s.oauthCredential(ctx, in.CredentialID)
	if err != nil {
		return "", err
	}
	u, err := s.OAuth.AuthorizeURL(ctx, oauth.AuthorizeRequest{
		StartInput: in, OrganizationID: cred.OrganizationID, Type: ct, Values: values,
	})
	if err != nil {
		return "", err
	}
	msg := "authorization started"
	if cred.Status != credential.StatusPENDING {
		msg = "reconnect started (status " + string(cred.Status) + ")"
	}
	if err := s.writeAudit(ctx, s.DB, credentialEntry(cred, v.Actor, "credential.authorization_started", msg)); err != nil {
		return "", fmt.Errorf("storing the authorization state: %w", err)
	}
	return u, nil
}

// CompleteAuthorization finishes the callback of an authorization: the
// engine checks the state and trades the code for a token, and the
// credential stores it and becomes ACTIVE, or becomes ERROR with what went
// wrong. ctx is plugboard's own (the state proves the caller); once the
// state names the organization, everything runs inside it.
func (s *Service) CompleteAuthorization(ctx context.Context, q url.Values) oauth.Outcome {
	cb, o := s.OAuth.BeginCallback(ctx, q)
	if cb == nil {
		return o
	}
	ctx = auth.OrganizationContext(ctx, cb.OrganizationID())
	cred, err := s.DB.Credential.Get(ctx, cb.CredentialID())
	if err != nil || cred.OrganizationID != cb.OrganizationID() {
		return cb.Unmatched()
	}
	ct, values, err := s.Resolved(ctx, cred)
	if err != nil {
		s.log().Error("resolving a credential's values", "credential", cred.ID, "err", err)
		return s.authorizationFailed(ctx, cb, cred, oauth.ValuesUnreadable(err))
	}
	tok, _, fail := s.OAuth.Exchange(ctx, cb, ct, values)
	if fail != nil {
		return s.authorizationFailed(ctx, cb, cred, fail)
	}
	if err := s.authorized(ctx, cred, ct, tok); err != nil {
		s.log().Error("storing an authorized token", "credential", cred.ID, "err", err)
		return cb.NotStored(cred.Status, err)
	}
	s.log().Info("credential authorized", "credential", cred.ID, "type", ct.Key)
	return cb.Authorized(credential.StatusACTIVE)
}

// authorized stores tok as the token of cred after an authorization and
// makes it ACTIVE.
func (s *Service) authorized(ctx context.Context, cred *ent.Credential, ct *ent.ConnectionType, tok *oauth.Token) error {
	msg := "authorized through OAuth 2.0"
	if len(tok.Scopes) > 0 {
		msg += "; granted scopes: " + strings.Join(tok.Scopes, " ")
	}
	err := s.withTx(ctx, func(tx *ent.Tx) error {
		db := tx.Client()
		if err := s.storeToken(ctx, db, cred.ID, ct, tok); err != nil {
			return err
		}
		if err := s.writeAudit(ctx, db, credentialEntry(cred, actorCallback, "credential.authorized", msg)); err != nil {
			return err
		}
		return s.transition(ctx, tx, statusChange{cred: cred, to: credential.StatusACTIVE, detail: "authorized", actor: actorCallback})
	})
	if err != nil {
		return fmt.Errorf("storing the token of credential %d: %w", cred.ID, err)
	}
	return nil
}

// authorizationFailed records a failed authorization: status ERROR with
// the failure's detail, the stored token left as it is.
func (s *Service) authorizationFailed(ctx context.Context, cb *oauth.Callback, cred *ent.Credential, f *oauth.Failure) oauth.Outcome {
	c := statusChange{cred: cred, to: credential.StatusERROR, detail: f.Detail, actor: actorCallback}
	err := s.withTx(ctx, func(tx *ent.Tx) error {
		if err := s.writeAudit(ctx, tx.Client(), credentialEntry(cred, actorCallback, "credential.authorization_failed", f.Detail)); err != nil {
			return err
		}
		return s.transition(ctx, tx, c)
	})
	status := c.to
	if err != nil {
		s.log().Error("recording a failed authorization", "credential", cred.ID, "err", err)
		status = cred.Status
	}
	s.log().Warn("authorization failed", "credential", cred.ID, "reason", f.Code, "detail", f.Detail)
	return cb.Failed(status, f)
}

// Disconnect revokes the credential's grant at the provider, when its type
// declares a revoke URL (RFC 7009), and erases its token: the credential
// becomes PENDING and keeps its id, inputs and bindings, ready to connect
// again. A failed revocation is logged and audited but does not stop the
// disconnect. The viewer must administer the credential's organization (or
// be its customer's user).
func (s *Service) Disconnect(ctx context.Context, credentialID int) error {
	v, err := Authorize(ctx, DisconnectOAuth)
	if err != nil {
		return err
	}
	if s.OAuth == nil {
		return fmt.Errorf("%w: OAuth 2.0 is not configured on this server", oauth.ErrMisconfigured)
	}
	for attempt := 0; ; attempt++ {
		done, err := s.disconnectOnce(ctx, v, credentialID)
		if err != nil || done {
			return err
		}
		// A refresh or an authorization stored a token meanwhile: revoke
		// and erase that one too.
		if attempt >= 3 {
			return fmt.Errorf("disconnecting credential %d: its token keeps changing; try again", credentialID)
		}
	}
}

// disconnectOnce revokes and erases the token the credential holds now;
// not done when another token was stored meanwhile.
func (s *Service) disconnectOnce(ctx context.Context, v *auth.Viewer, id int) (bool, error) {
	cred, ct, values, err := s.oauthCredential(ctx, id)
	if err != nil {
		return false, err
	}
	if !isOAuth(ct) || ct.Oauth2 == nil {
		return false, credErr(cred.ID, fmt.Errorf("%w (%s)", oauth.ErrNotOAuth, ct.Key))
	}
	tok, err := s.OAuth.Open(ctx, cred)
	if err != nil {
		s.log().Warn("disconnecting a credential whose token cannot be read", "credential", cred.ID, "err", err)
		tok = nil
	}
	revoked, revokeFailed := s.OAuth.Revoke(ctx, cred.ID, ct, values, tok)
	done := false
	err = s.withTx(ctx, func(tx *ent.Tx) error {
		var err error
		done, err = s.eraseToken(ctx, tx, v, cred, revoked, revokeFailed)
		return err
	})
	if err != nil {
		return false, fmt.Errorf("disconnecting credential %d: %w", cred.ID, err)
	}
	if done {
		s.log().Info("credential disconnected", "credential", cred.ID, "revocation", revoked)
	}
	return done, nil
}

// eraseToken clears the token columns of cred, unless another token was
// stored since cred was read, audits the disconnect and makes it PENDING.
func (s *Service) eraseToken(ctx context.Context, tx *ent.Tx, v *auth.Viewer, cred *ent.Credential, revoked string, revokeFailed bool) (bool, error) {
	db := tx.Client()
	n, err := db.Credential.Update().Where(credential.ID(cred.ID), sameToken(cred)).
		ClearToken().ClearTokenExpiresAt().SetGrantedScopes("").ClearNextRefreshAt().
		SetFailureCount(0).Save(ctx)
	if err != nil || n == 0 {
		return false, err
	}
	if revokeFailed {
		if err := s.writeAudit(ctx, db, credentialEntry(cred, v.Actor, "credential.revoke_failed", revoked)); err != nil {
			return false, err
		}
	}
	if err := s.writeAudit(ctx, db, credentialEntry(cred, v.Actor, "credential.disconnected", "disconnected; "+revoked)); err != nil {
		return false, err
	}
	c := statusChange{cred: cred, to: credential.StatusPENDING, detail: "disconnected: connect again to use it", actor: v.Actor}
	return true, s.transition(ctx, tx, c)
}
