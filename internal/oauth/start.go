package oauth

import (
	"context"
	"fmt"
	"strings"

	"golang.org/x/oauth2"

	"github.com/plugboard/plugboard/ent"
	"github.com/plugboard/plugboard/ent/connectiontype"
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

// AuthorizeRequest is an authorization to start for a credential of an
// OAUTH2_AUTHORIZATION_CODE type, with the credential's resolved values.
type AuthorizeRequest struct {
	StartInput
	OrganizationID int
	Type           *ent.ConnectionType
	Values         map[string]string
}

// CanAuthorize reports whether the authorization code flow is configured:
// it needs a callback URL.
func (s *Service) CanAuthorize() error {
	if s.callbackURL == "" {
		return misconfigured("no OAuth 2.0 callback URL is configured")
	}
	return nil
}

// AuthorizeURL begins the authorization code flow: it checks the redirect
// URLs against the organization's allow-list, stores the authorization in
// progress (state and sealed PKCE verifier) and returns the provider's
// authorize URL to send the browser to.
func (s *Service) AuthorizeURL(ctx context.Context, r AuthorizeRequest) (string, error) {
	if err := s.CanAuthorize(); err != nil {
		return "", err
	}
	ct := r.Type
	if ct.AuthKind != connectiontype.AuthKindOAUTH2_AUTHORIZATION_CODE || ct.Oauth2 == nil {
		return "", credentialErr(r.CredentialID, fmt.Errorf("%w: %s is not an OAuth 2.0 authorization code type", ErrNotOAuth, ct.Key))
	}
	f, err := s.FlowOf(ct, r.Values)
	if err != nil {
		return "", err
	}
	if err := s.checkRedirects(ctx, r); err != nil {
		return "", err
	}
	state, err := secrets.RandomToken(statePrefix, 32)
	if err != nil {
		return "", err
	}
	hash := secrets.HashToken(state)
	opts, sealedVerifier, err := s.challenge(ctx, f, hash)
	if err != nil {
		return "", err
	}
	opts = append(opts, s.extraAuthorizeParams(ct, f)...)
	if err := s.storeState(ctx, r, hash, sealedVerifier); err != nil {
		return "", err
	}
	s.log.Info("authorization started", "credential", r.CredentialID, "type", ct.Key, "pkce", strings.ToLower(f.pkce), "popup", r.Popup)
	return f.config(s.callbackURL).AuthCodeURL(state, opts...), nil
}

// checkRedirects checks the success and failure URLs of r against the
// organization's redirect allow-list.
func (s *Service) checkRedirects(ctx context.Context, r AuthorizeRequest) error {
	if r.RedirectURL == "" && r.FailureURL == "" {
		return nil
	}
	org, err := s.db.Organization.Get(ctx, r.OrganizationID)
	if err != nil {
		return err
	}
	for _, u := range []struct{ field, url string }{{"redirectURL", r.RedirectURL}, {"failureURL", r.FailureURL}} {
		if u.url == "" {
			continue
		}
		if _, err := checkRedirect(org.RedirectAllowlist, u.url); err != nil {
			return &RedirectError{Field: u.field, Err: err}
		}
	}
	return nil
}

// challenge returns the scope and PKCE options of the authorize URL, and
// the PKCE verifier sealed for the state row (nil without PKCE).
func (s *Service) challenge(ctx context.Context, f *Flow, stateHash string) ([]oauth2.AuthCodeOption, []byte, error) {
	opts := []oauth2.AuthCodeOption{}
	if sc := f.scopeParam(); sc != "" {
		opts = append(opts, oauth2.SetAuthURLParam("scope", sc))
	}
	if f.pkce == pkceNone {
		return opts, nil, nil
	}
	verifier := oauth2.GenerateVerifier()
	if f.pkce == pkceS256 {
		opts = append(opts, oauth2.S256ChallengeOption(verifier))
	} else {
		opts = append(opts,
			oauth2.SetAuthURLParam("code_challenge", verifier),
			oauth2.SetAuthURLParam("code_challenge_method", "plain"))
	}
	box, err := s.keys.Encrypt(ctx, []byte(verifier), sealed.OAuthVerifier.AAD(stateHash))
	if err != nil {
		return nil, nil, fmt.Errorf("encrypting the PKCE verifier: %w", err)
	}
	return opts, box, nil
}

// extraAuthorizeParams are the type's extra authorize parameters, but none
// the flow sets itself.
func (s *Service) extraAuthorizeParams(ct *ent.ConnectionType, f *Flow) []oauth2.AuthCodeOption {
	var opts []oauth2.AuthCodeOption
	for k, val := range f.extraAuth {
		if authorizeParams[k] || (k == "scope" && len(f.scopes) > 0) {
			s.log.Warn("ignoring an extra authorize parameter the flow sets itself", "type", ct.Key, "param", k)
			continue
		}
		opts = append(opts, oauth2.SetAuthURLParam(k, val))
	}
	return opts
}

// storeState stores the authorization in progress.
func (s *Service) storeState(ctx context.Context, r AuthorizeRequest, hash string, sealedVerifier []byte) error {
	c := s.db.OAuthState.Create().
		SetOrganizationID(r.OrganizationID).
		SetStateHash(hash).
		SetCredentialID(r.CredentialID).
		SetRedirectURL(r.RedirectURL).
		SetFailureURL(r.FailureURL).
		SetPopup(r.Popup).
		SetExpiresAt(s.now().Add(s.stateTTL))
	if sealedVerifier != nil {
		c.SetVerifier(sealedVerifier)
	}
	if err := c.Exec(ctx); err != nil {
		return fmt.Errorf("storing the authorization state: %w", err)
	}
	return nil
}
