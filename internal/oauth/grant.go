package oauth

import (
	"context"
	"errors"
	"net/url"
	"time"

	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"

	"github.com/plugboard/plugboard/ent/connectiontype"
)

// fromOAuth2 converts a token response. The expiry counts from the
// service's clock, like every other time it stores.
func (s *Service) fromOAuth2(f *Flow, t *oauth2.Token, c *capture) *Token {
	extra, expiresIn := c.fields()
	tok := &Token{
		AccessToken:  t.AccessToken,
		TokenType:    t.TokenType,
		RefreshToken: t.RefreshToken,
		Expiry:       t.Expiry.UTC(),
		Scopes:       f.grantedScopes(t.Extra("scope")),
		Extra:        extra,
	}
	if expiresIn > 0 {
		tok.Expiry = s.now().Add(time.Duration(expiresIn) * time.Second)
	}
	return tok
}

// exchange trades an authorization code for a token.
func (s *Service) exchange(ctx context.Context, f *Flow, code, verifier string) (*Token, error) {
	ctx, c, cancel := s.callContext(ctx)
	defer cancel()
	var opts []oauth2.AuthCodeOption
	if verifier != "" {
		opts = append(opts, oauth2.VerifierOption(verifier))
	}
	for k, v := range f.extraToken {
		if !reservedTokenParams[k] {
			opts = append(opts, oauth2.SetAuthURLParam(k, v))
		}
	}
	t, err := f.config(s.callbackURL).Exchange(ctx, code, opts...)
	if err != nil {
		return nil, s.classify(err, "exchanging the authorization code", f.secrets)
	}
	return s.fromOAuth2(f, t, c), nil
}

// reservedTokenParams may not be overridden by a type's extra token
// parameters.
var reservedTokenParams = map[string]bool{
	"grant_type": true, "code": true, "code_verifier": true, "redirect_uri": true,
	"client_id": true, "client_secret": true, "refresh_token": true,
}

// renew obtains a new token for a credential holding old: with the refresh
// token (authorization code types) or a new client credentials grant. A
// response without a refresh token keeps the old one.
func (s *Service) renew(ctx context.Context, f *Flow, old *Token) (*Token, error) {
	if f.kind == connectiontype.AuthKindOAUTH2_CLIENT_CREDENTIALS {
		return s.clientCredentials(ctx, f)
	}
	if old.RefreshToken == "" {
		return nil, &ProviderError{
			Code: "no_refresh_token", Permanent: true,
			Message: "the access token expired and the provider issued no refresh token: the customer must reconnect",
		}
	}
	ctx, c, cancel := s.callContext(ctx)
	defer cancel()
	t, err := f.config(s.callbackURL).TokenSource(ctx, &oauth2.Token{RefreshToken: old.RefreshToken}).Token()
	if err != nil {
		pe := s.classify(err, "refreshing the token", append(f.secrets, old.RefreshToken, old.AccessToken))
		if pe.Permanent && pe.Code != "invalid_client" && pe.Code != "unauthorized_client" {
			pe.Message = "the provider refused the refresh token (" + pe.Code + "): the customer must reconnect"
		}
		return nil, pe
	}
	tok := s.fromOAuth2(f, t, c)
	if tok.RefreshToken == "" {
		tok.RefreshToken = old.RefreshToken
	}
	if _, ok := t.Extra("scope").(string); !ok && len(old.Scopes) > 0 {
		// A refresh keeps the grant's scopes unless it says otherwise.
		tok.Scopes = old.Scopes
	}
	return tok, nil
}

// clientCredentials runs the client credentials grant.
func (s *Service) clientCredentials(ctx context.Context, f *Flow) (*Token, error) {
	ctx, c, cancel := s.callContext(ctx)
	defer cancel()
	params := url.Values{}
	if len(f.scopes) > 0 {
		params.Set("scope", f.scopeParam())
	}
	for k, v := range f.extraToken {
		if !reservedTokenParams[k] && k != "scope" {
			params.Set(k, v)
		}
	}
	cfg := &clientcredentials.Config{
		ClientID:       f.clientID,
		ClientSecret:   f.clientSecret,
		TokenURL:       f.tokenURL,
		EndpointParams: params,
		AuthStyle:      f.authStyle,
	}
	t, err := cfg.Token(ctx)
	if err != nil {
		return nil, s.classify(err, "obtaining a token with the client credentials", f.secrets)
	}
	return s.fromOAuth2(f, t, c), nil
}

// Refresh obtains a new token for a credential holding old, with f (see
// FlowOf): with the refresh token, or a new client credentials grant. A
// failure is a *ProviderError whose text names no secret.
func (s *Service) Refresh(ctx context.Context, f *Flow, old *Token) (*Token, *ProviderError) {
	tok, err := s.observedRenew(ctx, f, old)
	if err != nil {
		return nil, s.classify(err, "refreshing the token", append(f.secrets, old.AccessToken, old.RefreshToken))
	}
	return tok, nil
}

// ConfigMessage is the text of an error of FlowOf, which never holds a
// value; "the connection's values could not be read" for any other error.
func ConfigMessage(err error) string {
	if errors.Is(err, ErrMisconfigured) || errors.Is(err, ErrNotOAuth) {
		return err.Error()
	}
	return "the connection's values could not be read"
}

// ConfigFailure is the failure of a refresh that cannot be made: the
// credential's OAuth 2.0 settings or values are unusable (err, from
// FlowOf or from reading the values).
func ConfigFailure(err error) *ProviderError {
	return &ProviderError{Code: "configuration_error", Message: "the token cannot be refreshed: " + ConfigMessage(err)}
}

// Transient reports whether retrying may help.
func (e *ProviderError) Transient() bool { return e.transient() }
