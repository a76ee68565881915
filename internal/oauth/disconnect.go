package oauth

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"

	"golang.org/x/oauth2"

	"github.com/plugboard/plugboard/ent"
	"github.com/plugboard/plugboard/ent/credential"
	"github.com/plugboard/plugboard/internal/auth"
)

// Disconnect revokes the credential's grant at the provider, when its type
// declares a revoke URL (RFC 7009), and erases its token: the credential
// becomes PENDING and keeps its id, inputs and bindings, ready to connect
// again. A failed revocation is logged and audited but does not stop the
// disconnect. The viewer must administer the credential's organization.
func (s *Service) Disconnect(ctx context.Context, credentialID int) error {
	v, err := requireAdminOrCustomer(ctx)
	if err != nil {
		return err
	}
	for attempt := 0; ; attempt++ {
		cred, err := s.db.Credential.Get(ctx, credentialID)
		if ent.IsNotFound(err) {
			return notFound(credentialID)
		}
		if err != nil {
			return err
		}
		ct, values, err := s.values.Resolved(auth.SystemContext(ctx), cred)
		if err != nil {
			return err
		}
		if !isOAuth(ct) {
			return credentialErr(cred.ID, fmt.Errorf("%w (%s)", ErrNotOAuth, ct.Key))
		}
		tok, err := s.open(ctx, cred)
		if err != nil {
			s.log.Warn("disconnecting a credential whose token cannot be read", "credential", cred.ID, "err", err)
			tok = nil
		}
		revoked, revokeFailed := "no token to revoke", false
		if tok != nil {
			f, ferr := s.flowOf(ct, values)
			switch {
			case ferr != nil:
				revoked = "the token was not revoked: " + configMessage(ferr)
			case f.revokeURL == "":
				revoked = "the type declares no revoke URL"
			default:
				if rerr := s.revoke(ctx, f, tok); rerr != nil {
					revoked, revokeFailed = "revoking the grant failed: "+rerr.Message, true
					s.log.Warn("revoking a grant failed", "credential", cred.ID, "reason", rerr.Code, "detail", rerr.Message)
				} else {
					revoked = "the grant was revoked at the provider"
				}
			}
		}
		t := transition{cred: cred, from: cred.Status, to: credential.StatusPENDING, detail: "disconnected: connect again to use it"}
		done := false
		err = s.withTx(ctx, func(tx *ent.Tx) error {
			db := tx.Client()
			n, err := db.Credential.Update().Where(credential.ID(cred.ID), sameToken(cred)).
				ClearToken().ClearTokenExpiresAt().SetGrantedScopes("").ClearNextRefreshAt().
				SetFailureCount(0).SetStatus(t.to).SetStatusDetail(t.detail).
				Save(ctx)
			if err != nil || n == 0 {
				return err
			}
			done = true
			if revokeFailed {
				if err := s.audit(ctx, db, cred, v.Actor, "credential.revoke_failed", revoked); err != nil {
					return err
				}
			}
			if err := s.audit(ctx, db, cred, v.Actor, "credential.disconnected", "disconnected; "+revoked); err != nil {
				return err
			}
			return s.auditTransition(ctx, db, t, v.Actor)
		})
		if err != nil {
			return fmt.Errorf("disconnecting credential %d: %w", cred.ID, err)
		}
		if done {
			s.publish(ctx, t)
			s.log.Info("credential disconnected", "credential", cred.ID, "revocation", revoked)
			return nil
		}
		// A refresh or an authorization stored a token meanwhile: revoke
		// and erase that one too.
		if attempt >= 3 {
			return fmt.Errorf("disconnecting credential %d: its token keeps changing; try again", cred.ID)
		}
	}
}

// revoke asks the provider to revoke tok's grant (RFC 7009): its refresh
// token if it has one, else its access token.
func (s *Service) revoke(ctx context.Context, f *flow, tok *Token) *ProviderError {
	form := url.Values{}
	if tok.RefreshToken != "" {
		form.Set("token", tok.RefreshToken)
		form.Set("token_type_hint", "refresh_token")
	} else {
		form.Set("token", tok.AccessToken)
		form.Set("token_type_hint", "access_token")
	}
	if f.authStyle == oauth2.AuthStyleInParams {
		form.Set("client_id", f.clientID)
		if f.clientSecret != "" {
			form.Set("client_secret", f.clientSecret)
		}
	}
	ctx, _, cancel := s.callContext(ctx)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, f.revokeURL, strings.NewReader(form.Encode()))
	if err != nil {
		return &ProviderError{Code: "configuration_error", Message: "the revoke URL is not usable"}
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	if f.authStyle == oauth2.AuthStyleInHeader {
		req.SetBasicAuth(url.QueryEscape(f.clientID), url.QueryEscape(f.clientSecret))
	}
	client, _ := ctx.Value(oauth2.HTTPClient).(*http.Client)
	resp, err := client.Do(req)
	if err != nil {
		return s.classify(err, "revoking the grant", append(f.secrets, tok.AccessToken, tok.RefreshToken))
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return &ProviderError{
			Code:    fmt.Sprintf("http_%d", resp.StatusCode),
			Message: fmt.Sprintf("the revoke endpoint answered %d %s", resp.StatusCode, http.StatusText(resp.StatusCode)),
		}
	}
	return nil
}
