package connection_test

import (
	"bytes"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/oauth2-proxy/mockoidc"

	"github.com/plugboard/plugboard/ent/connectiontype"
	"github.com/plugboard/plugboard/ent/credential"
	"github.com/plugboard/plugboard/ent/schema/schematype"
	"github.com/plugboard/plugboard/internal/globalid"
	"github.com/plugboard/plugboard/internal/oauth"
	"github.com/plugboard/plugboard/internal/store"
	"github.com/plugboard/plugboard/internal/store/storetest"
)

// TestMockOIDCHappyPath runs the whole flow against mockoidc: Start with
// PKCE S256, the provider's redirect, the callback, a runtime read, then a
// refresh through mockoidc's refresh grant once the token is expired.
func TestMockOIDCHappyPath(t *testing.T) {
	storetest.Each(t, func(t *testing.T, st *store.Store) {
		m, err := mockoidc.Run()
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = m.Shutdown() })
		e := newEnv(t, st, envOptions{realClock: true})
		e.addSecret(m.ClientSecret)

		ct := e.slackLike(t, connectiontype.AuthKindOAUTH2_AUTHORIZATION_CODE, m.Addr(), func(sp *schematype.OAuth2Spec) {
			sp.ScopeSeparator = " " // mockoidc splits scopes on spaces
			sp.AuthStyle = "BODY"   // and wants the client secret in the form
		})
		cred := e.credential(t, ct, map[string]string{
			"clientId": m.ClientID, "clientSecret": m.ClientSecret,
			"authorizeUrl": m.AuthorizationEndpoint(), "tokenUrl": m.TokenEndpoint(), "revokeUrl": m.Issuer() + "/revoke",
			"scopes": "openid email profile",
		})
		if cred.Status != credential.StatusPENDING {
			t.Fatalf("a new OAuth credential is %s", cred.Status)
		}

		code := "code_" + canary + "_mockoidc_" + randHex(4)
		m.QueueCode(code)
		authURL, err := e.svc.Authorize(e.admin, oauth.StartInput{CredentialID: cred.ID, RedirectURL: allowedRedirect + "/done"})
		if err != nil {
			t.Fatal(e.noteErr(err))
		}
		au, _ := url.Parse(authURL)
		q := au.Query()
		if q.Get("code_challenge_method") != "S256" || q.Get("code_challenge") == "" {
			t.Errorf("the authorize URL asks no S256 PKCE challenge: %s", authURL)
		}
		if q.Get("scope") != "openid email profile" || q.Get("redirect_uri") != e.cb.URL+"/oauth2/callback" || q.Get("client_id") != m.ClientID {
			t.Errorf("the authorize URL is not built from the credential's values: %s", authURL)
		}
		// The state is stored only as a hash.
		states, err := e.db.OAuthState.Query().All(e.sys)
		if err != nil || len(states) != 1 {
			t.Fatalf("states: %v %d", err, len(states))
		}
		if states[0].StateHash == q.Get("state") || bytes.Contains(states[0].Verifier, []byte("S256")) || len(states[0].Verifier) == 0 {
			t.Errorf("the state row holds the state or no sealed verifier")
		}

		p := e.browse(t, authURL)
		if p.status != http.StatusFound || !strings.HasPrefix(p.location, e.cb.URL+"/oauth2/callback?") {
			t.Fatalf("mockoidc answered %d %q: %s", p.status, p.location, p.body)
		}
		cb := e.browse(t, p.location)
		if cb.status != http.StatusSeeOther {
			t.Fatalf("callback answered %d: %s", cb.status, cb.body)
		}
		back, _ := url.Parse(cb.location)
		if !strings.HasPrefix(cb.location, allowedRedirect+"/done?") || back.Query().Get("status") != "ACTIVE" ||
			back.Query().Get("credentialId") != globalid.Encode(cred.ID) || back.Query().Get("error") != "" {
			t.Fatalf("callback redirected to %s", cb.location)
		}

		c := e.get(t, cred.ID)
		if c.Status != credential.StatusACTIVE || c.FailureCount != 0 || c.TokenExpiresAt == nil || c.NextRefreshAt == nil {
			t.Fatalf("after the callback: %s %q failures=%d expires=%v next=%v", c.Status, c.StatusDetail, c.FailureCount, c.TokenExpiresAt, c.NextRefreshAt)
		}
		if c.GrantedScopes != "openid email profile" {
			t.Errorf("granted scopes %q", c.GrantedScopes)
		}
		if !hasAudit(e.audits(t, c.ID), "credential.authorized") || !hasAudit(e.audits(t, c.ID), "credential.status_changed: status PENDING → ACTIVE") {
			t.Errorf("audit log: %q", e.audits(t, c.ID))
		}

		tok, err := e.svc.Token(e.runtimeCtx(t), cred.ID, 0)
		if err != nil {
			t.Fatal(e.noteErr(err))
		}
		e.addSecret(tok.AccessToken, tok.RefreshToken)
		if tok.AccessToken == "" || tok.RefreshToken == "" || !strings.EqualFold(tok.TokenType, "bearer") {
			t.Fatalf("token: %v", tok)
		}
		if _, err := m.Keypair.VerifyJWT(tok.AccessToken, m.Now); err != nil {
			t.Errorf("the access token is not mockoidc's: %v", err)
		}
		if bytes.Contains(c.Token, []byte(tok.AccessToken)) || bytes.Contains(c.Token, []byte(tok.RefreshToken)) || strings.Contains(string(c.Token), "access_token") {
			t.Error("the stored token is not sealed")
		}

		// Expire it; mockoidc issues a new access token a minute later.
		e.expire(t, cred.ID)
		m.FastForward(time.Minute)
		fresh, err := e.svc.Token(e.runtimeCtx(t), cred.ID, 0)
		if err != nil {
			t.Fatal(e.noteErr(err))
		}
		e.addSecret(fresh.AccessToken)
		if fresh.AccessToken == tok.AccessToken {
			t.Fatal("the expired token was not refreshed")
		}
		if fresh.RefreshToken != tok.RefreshToken {
			t.Error("the refresh token changed though mockoidc kept it")
		}
		c = e.get(t, cred.ID)
		if c.Status != credential.StatusACTIVE || !c.TokenExpiresAt.After(time.Now()) || !c.NextRefreshAt.After(time.Now()) {
			t.Errorf("after the refresh: %s expires=%v next=%v", c.Status, c.TokenExpiresAt, c.NextRefreshAt)
		}
		again, err := e.svc.Token(e.runtimeCtx(t), cred.ID, 0)
		if err != nil || again.AccessToken != fresh.AccessToken {
			t.Errorf("a second read did not serve the refreshed token: %v", e.noteErr(err))
		}
	})
}
