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
)

// Revoke asks the provider to revoke the grant of tok (RFC 7009), when
// ct declares a revoke URL; values are the credential's resolved values.
// It says what happened, for the connection log (never a value), and
// whether revoking failed. A nil tok has nothing to revoke.
func (s *Service) Revoke(ctx context.Context, credentialID int, ct *ent.ConnectionType, values map[string]string, tok *Token) (string, bool) {
	if tok == nil {
		return "no token to revoke", false
	}
	f, err := s.FlowOf(ct, values)
	switch {
	case err != nil:
		return "the token was not revoked: " + ConfigMessage(err), false
	case f.revokeURL == "":
		return "the type declares no revoke URL", false
	}
	if rerr := s.revoke(ctx, f, tok); rerr != nil {
		s.log.Warn("revoking a grant failed", "credential", credentialID, "reason", rerr.Code, "detail", rerr.Message)
		return "revoking the grant failed: " + rerr.Message, true
	}
	return "the grant was revoked at the provider", false
}

// revoke asks the provider to revoke tok's grant (RFC 7009): its refresh
// token if it has one, else its access token.
func (s *Service) revoke(ctx context.Context, f *Flow, tok *Token) *ProviderError {
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
