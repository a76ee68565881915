package oauth

import (
	"context"
	"fmt"
	"strings"

	"golang.org/x/oauth2"

	"github.com/plugboard/plugboard/ent"
	"github.com/plugboard/plugboard/ent/connectiontype"
	"github.com/plugboard/plugboard/ent/credential"
	"github.com/plugboard/plugboard/internal/auth"
	"github.com/plugboard/plugboard/internal/secrets"
	"github.com/plugboard/plugboard/internal/secrets/sealed"
)

// StartInput starts an authorization.
type StartInput struct {
	// CredentialID is the credential to authorize (or reconnect): it keeps
	// its id, inputs and bindings.
	CredentialID int
	// RedirectURL, when set, is where the browser goes after a successful
	// authorization, with credentialId and status in its query; in popup
	// mode its origin is the postMessage target. It must be on the
	// organization's redirect allow-list.
	RedirectURL string
	// FailureURL, when set, is where the browser goes after a failed
	// authorization, with credentialId, status and error in its query;
	// RedirectURL is used when it is empty. It must be on the allow-list.
	FailureURL string
	// Popup makes the callback answer with a page that posts the outcome
	// to window.opener and closes itself.
	Popup bool
}

// statePrefix marks plugboard's OAuth states.
const statePrefix = "pbst_"

// authorizeParams may not be overridden by a type's extra authorize
// parameters.
var authorizeParams = map[string]bool{
	"response_type": true, "client_id": true, "redirect_uri": true, "state": true,
	"code_challenge": true, "code_challenge_method": true,
}

// Start begins the authorization code flow for a credential and returns the
// provider's authorize URL to send the browser to. The viewer must
// administer the credential's organization; the credential must be of an
// OAUTH2_AUTHORIZATION_CODE type.
func (s *Service) Start(ctx context.Context, in StartInput) (string, error) {
	v, err := requireAdminOrCustomer(ctx)
	if err != nil {
		return "", err
	}
	if s.callbackURL == "" {
		return "", misconfigured("no OAuth 2.0 callback URL is configured")
	}
	cred, err := s.db.Credential.Get(ctx, in.CredentialID)
	if ent.IsNotFound(err) {
		return "", notFound(in.CredentialID)
	}
	if err != nil {
		return "", err
	}
	ct, values, err := s.values.Resolved(auth.SystemContext(ctx), cred)
	if err != nil {
		return "", err
	}
	if ct.AuthKind != connectiontype.AuthKindOAUTH2_AUTHORIZATION_CODE || ct.Oauth2 == nil {
		return "", credentialErr(cred.ID, fmt.Errorf("%w: %s is not an OAuth 2.0 authorization code type", ErrNotOAuth, ct.Key))
	}
	f, err := s.flowOf(ct, values)
	if err != nil {
		return "", err
	}
	if in.RedirectURL != "" || in.FailureURL != "" {
		org, err := s.db.Organization.Get(ctx, cred.OrganizationID)
		if err != nil {
			return "", err
		}
		for _, u := range []struct{ field, url string }{{"redirectURL", in.RedirectURL}, {"failureURL", in.FailureURL}} {
			if u.url == "" {
				continue
			}
			if _, err := checkRedirect(org.RedirectAllowlist, u.url); err != nil {
				return "", &RedirectError{Field: u.field, Err: err}
			}
		}
	}

	state, err := secrets.RandomToken(statePrefix, 32)
	if err != nil {
		return "", err
	}
	hash := secrets.HashToken(state)
	opts := []oauth2.AuthCodeOption{}
	if sc := f.scopeParam(); sc != "" {
		opts = append(opts, oauth2.SetAuthURLParam("scope", sc))
	}
	var sealedVerifier []byte
	if f.pkce != pkceNone {
		verifier := oauth2.GenerateVerifier()
		if f.pkce == pkceS256 {
			opts = append(opts, oauth2.S256ChallengeOption(verifier))
		} else {
			opts = append(opts,
				oauth2.SetAuthURLParam("code_challenge", verifier),
				oauth2.SetAuthURLParam("code_challenge_method", "plain"))
		}
		if sealedVerifier, err = s.keys.Encrypt(ctx, []byte(verifier), sealed.OAuthVerifier.AAD(hash)); err != nil {
			return "", fmt.Errorf("encrypting the PKCE verifier: %w", err)
		}
	}
	for k, val := range f.extraAuth {
		if authorizeParams[k] || (k == "scope" && len(f.scopes) > 0) {
			s.log.Warn("ignoring an extra authorize parameter the flow sets itself", "type", ct.Key, "param", k)
			continue
		}
		opts = append(opts, oauth2.SetAuthURLParam(k, val))
	}

	now := s.now()
	err = s.withTx(ctx, func(tx *ent.Tx) error {
		db := tx.Client()
		c := db.OAuthState.Create().
			SetOrganizationID(cred.OrganizationID).
			SetStateHash(hash).
			SetCredentialID(cred.ID).
			SetRedirectURL(in.RedirectURL).
			SetFailureURL(in.FailureURL).
			SetPopup(in.Popup).
			SetExpiresAt(now.Add(s.stateTTL))
		if sealedVerifier != nil {
			c.SetVerifier(sealedVerifier)
		}
		if err := c.Exec(ctx); err != nil {
			return err
		}
		msg := "authorization started"
		if cred.Status != credential.StatusPENDING {
			msg = "reconnect started (status " + string(cred.Status) + ")"
		}
		return s.audit(ctx, db, cred, v.Actor, "credential.authorization_started", msg)
	})
	if err != nil {
		return "", fmt.Errorf("storing the authorization state: %w", err)
	}
	s.log.Info("authorization started", "credential", cred.ID, "type", ct.Key, "pkce", strings.ToLower(f.pkce), "popup", in.Popup)
	return f.config(s.callbackURL).AuthCodeURL(state, opts...), nil
}
