package connection_test

import (
	"bytes"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/plugboard/plugboard/ent/connectiontype"
	"github.com/plugboard/plugboard/ent/credential"
	"github.com/plugboard/plugboard/ent/oauthstate"
	"github.com/plugboard/plugboard/ent/schema/schematype"
	"github.com/plugboard/plugboard/internal/auth"
	"github.com/plugboard/plugboard/internal/globalid"
	"github.com/plugboard/plugboard/internal/oauth"
	"github.com/plugboard/plugboard/internal/secrets"
	"github.com/plugboard/plugboard/internal/store"
	"github.com/plugboard/plugboard/internal/store/storetest"
)

func TestAuthorizationCode(t *testing.T) {
	storetest.Each(t, func(t *testing.T, st *store.Store) {
		e := newEnv(t, st, envOptions{})
		p := newProvider(t)

		t.Run("stores the token sealed with its extra fields", func(t *testing.T) {
			cred, _ := e.authorizedCredential(t, p)
			if cred.GrantedScopes != "chat:write channels:read" {
				t.Errorf("granted scopes %q", cred.GrantedScopes)
			}
			if bytes.Contains(cred.Token, []byte(canary)) {
				t.Error("the stored token is not sealed")
			}
			tok, err := e.svc.Token(e.runtimeCtx(t), cred.ID, 0)
			if err != nil {
				t.Fatal(e.noteErr(err))
			}
			if !strings.HasPrefix(tok.AccessToken, "at_"+canary) || !strings.HasPrefix(tok.RefreshToken, "rt_"+canary) ||
				tok.Extra["bot_user_id"] != "U42" || tok.Extra["team"] == nil || tok.Extra["access_token"] != nil {
				t.Errorf("token: %v %v", tok, tok.Extra)
			}
			if got := e.get(t, cred.ID); got.NextRefreshAt == nil || !got.NextRefreshAt.Equal(got.TokenExpiresAt.Add(-10*time.Minute)) {
				t.Errorf("next refresh %v, expiry %v: want expiry − 10 min", got.NextRefreshAt, got.TokenExpiresAt)
			}
			evs := e.events.list()
			if len(evs) == 0 || evs[len(evs)-1].CredentialID != cred.ID || evs[len(evs)-1].To != "ACTIVE" || evs[len(evs)-1].From != "PENDING" {
				t.Errorf("events: %+v", evs)
			}
		})

		t.Run("expired state", func(t *testing.T) {
			ct := e.slackLike(t, connectiontype.AuthKindOAUTH2_AUTHORIZATION_CODE, p.URL(), nil)
			cred := e.credential(t, ct, p.values())
			cb := e.connect(t, oauth.StartInput{CredentialID: cred.ID, RedirectURL: allowedRedirect})
			e.clock.Advance(11 * time.Minute)
			calls := p.tokenCalls.Load()
			pg := e.browse(t, cb)
			back, _ := url.Parse(pg.location)
			if pg.status != http.StatusSeeOther || back.Query().Get("error") != "state_expired" {
				t.Fatalf("an expired state answered %d %s", pg.status, pg.location)
			}
			if got := e.get(t, cred.ID); got.Status != credential.StatusPENDING || got.Token != nil || p.tokenCalls.Load() != calls {
				t.Errorf("an expired state changed something: %s", got.Status)
			}
		})

		t.Run("replayed state", func(t *testing.T) {
			ct := e.slackLike(t, connectiontype.AuthKindOAUTH2_AUTHORIZATION_CODE, p.URL(), nil)
			cred := e.credential(t, ct, p.values())
			cb := e.connect(t, oauth.StartInput{CredentialID: cred.ID})
			if pg := e.browse(t, cb); pg.status != http.StatusOK {
				t.Fatalf("first use: %d %s", pg.status, pg.body)
			}
			before := e.get(t, cred.ID)
			calls := p.tokenCalls.Load()
			pg := e.browse(t, cb)
			if pg.status != http.StatusBadRequest || !strings.Contains(pg.body, "already completed") {
				t.Fatalf("a replayed state answered %d: %s", pg.status, pg.body)
			}
			after := e.get(t, cred.ID)
			if !bytes.Equal(before.Token, after.Token) || after.Status != credential.StatusACTIVE || p.tokenCalls.Load() != calls {
				t.Error("a replayed state changed the credential or called the provider")
			}
		})

		t.Run("state of another organization", func(t *testing.T) {
			ct := e.slackLike(t, connectiontype.AuthKindOAUTH2_AUTHORIZATION_CODE, p.URL(), nil)
			cred := e.credential(t, ct, p.values())
			other, err := e.db.Organization.Create().SetName("Other").SetSlug("other-" + randHex(4)).Save(e.sys)
			if err != nil {
				t.Fatal(err)
			}
			state := "pbst_" + randHex(16)
			if err := e.db.OAuthState.Create().SetOrganizationID(other.ID).SetCredentialID(cred.ID).
				SetStateHash(secrets.HashToken(state)).SetExpiresAt(e.clock.Now().Add(time.Minute)).Exec(e.sys); err != nil {
				t.Fatal(err)
			}
			calls := p.tokenCalls.Load()
			pg := e.browse(t, e.cb.URL+"/oauth2/callback?"+url.Values{"state": {state}, "code": {"code_" + canary}}.Encode())
			if pg.status != http.StatusBadRequest || strings.Contains(pg.body, globalid.Encode(cred.ID)) {
				t.Fatalf("a foreign state answered %d: %s", pg.status, pg.body)
			}
			if got := e.get(t, cred.ID); got.Status != credential.StatusPENDING || got.Token != nil || p.tokenCalls.Load() != calls {
				t.Errorf("a foreign state changed the credential: %s", got.Status)
			}
		})

		t.Run("unknown state", func(t *testing.T) {
			pg := e.browse(t, e.cb.URL+"/oauth2/callback?state=pbst_nope&code=x")
			if pg.status != http.StatusBadRequest || !strings.Contains(pg.body, "unknown") {
				t.Fatalf("an unknown state answered %d: %s", pg.status, pg.body)
			}
			if pg := e.browse(t, e.cb.URL+"/oauth2/callback"); pg.status != http.StatusBadRequest {
				t.Fatalf("no state answered %d", pg.status)
			}
		})

		t.Run("PKCE verifier mismatch", func(t *testing.T) {
			ct := e.slackLike(t, connectiontype.AuthKindOAUTH2_AUTHORIZATION_CODE, p.URL(), nil)
			cred := e.credential(t, ct, p.values())
			cb := e.connect(t, oauth.StartInput{CredentialID: cred.ID, RedirectURL: allowedRedirect + "/ok", FailureURL: allowedRedirect + "/failed"})
			p.tamperChallenges()
			pg := e.browse(t, cb)
			e.addSecret(p.receivedVerifiers()...)
			back, _ := url.Parse(pg.location)
			if pg.status != http.StatusSeeOther || !strings.HasPrefix(pg.location, allowedRedirect+"/failed?") ||
				back.Query().Get("error") != "invalid_grant" || back.Query().Get("status") != "ERROR" {
				t.Fatalf("a PKCE mismatch answered %d %s", pg.status, pg.location)
			}
			got := e.get(t, cred.ID)
			if got.Status != credential.StatusERROR || got.Token != nil || got.TokenExpiresAt != nil ||
				!strings.Contains(got.StatusDetail, "invalid_grant") {
				t.Errorf("after a PKCE mismatch: %s %q", got.Status, got.StatusDetail)
			}
			if !strings.Contains(got.StatusDetail, "[redacted]") {
				t.Errorf("the provider's description (which echoes the verifier and code) was not redacted: %q", got.StatusDetail)
			}
		})

		t.Run("redirect not on the allow-list", func(t *testing.T) {
			ct := e.slackLike(t, connectiontype.AuthKindOAUTH2_AUTHORIZATION_CODE, p.URL(), nil)
			cred := e.credential(t, ct, p.values())
			for _, in := range []oauth.StartInput{
				{CredentialID: cred.ID, RedirectURL: "https://app.example.com.evil.com/oauth"},
				{CredentialID: cred.ID, RedirectURL: allowedRedirect, FailureURL: "https://evil.com/oauth"},
				{CredentialID: cred.ID, RedirectURL: "javascript:alert(1)", Popup: true},
			} {
				_, err := e.svc.Authorize(e.admin, in)
				if !errors.Is(e.noteErr(err), oauth.ErrRedirectNotAllowed) {
					t.Errorf("Start(%+v) = %v, want ErrRedirectNotAllowed", in, err)
				}
			}
			if n, _ := e.db.OAuthState.Query().Where(oauthstate.CredentialID(cred.ID)).Count(e.sys); n != 0 {
				t.Errorf("a refused Start stored %d states", n)
			}
		})

		t.Run("access denied", func(t *testing.T) {
			ct := e.slackLike(t, connectiontype.AuthKindOAUTH2_AUTHORIZATION_CODE, p.URL(), nil)
			cred := e.credential(t, ct, p.values())
			authURL, err := e.svc.Authorize(e.admin, oauth.StartInput{CredentialID: cred.ID})
			if err != nil {
				t.Fatal(e.noteErr(err))
			}
			au, _ := url.Parse(authURL)
			pg := e.browse(t, e.cb.URL+"/oauth2/callback?"+url.Values{
				"state": {au.Query().Get("state")}, "error": {"access_denied"},
				"error_description": {`The user <script>alert("x")</script> said "no" & left`},
			}.Encode())
			if pg.status != http.StatusBadRequest || !strings.Contains(pg.body, "Not connected") ||
				!strings.Contains(pg.body, "said &#34;no&#34; &amp; left") || strings.Contains(pg.body, "<script>alert") {
				t.Fatalf("access denied page %d: %s", pg.status, pg.body)
			}
			got := e.get(t, cred.ID)
			if got.Status != credential.StatusERROR || !strings.Contains(got.StatusDetail, "access_denied") ||
				!strings.Contains(got.StatusDetail, `said "no" & left`) || strings.Contains(got.StatusDetail, "<") {
				t.Errorf("after access_denied: %s %q", got.Status, got.StatusDetail)
			}
			if !hasAudit(e.audits(t, cred.ID), "credential.status_changed: status PENDING → ERROR") {
				t.Errorf("audit: %q", e.audits(t, cred.ID))
			}

			// With a failure URL the browser goes there with error=.
			authURL, _ = e.svc.Authorize(e.admin, oauth.StartInput{CredentialID: cred.ID, RedirectURL: allowedRedirect + "/ok", FailureURL: allowedRedirect + "/failed"})
			au, _ = url.Parse(authURL)
			pg = e.browse(t, e.cb.URL+"/oauth2/callback?"+url.Values{"state": {au.Query().Get("state")}, "error": {"access_denied"}}.Encode())
			back, _ := url.Parse(pg.location)
			if pg.status != http.StatusSeeOther || !strings.HasPrefix(pg.location, allowedRedirect+"/failed?") ||
				back.Query().Get("error") != "access_denied" || back.Query().Get("credentialId") != globalid.Encode(cred.ID) {
				t.Errorf("access denied with a failure URL: %d %s", pg.status, pg.location)
			}
		})

		t.Run("popup", func(t *testing.T) {
			ct := e.slackLike(t, connectiontype.AuthKindOAUTH2_AUTHORIZATION_CODE, p.URL(), nil)
			cred := e.credential(t, ct, p.values())
			cb := e.connect(t, oauth.StartInput{CredentialID: cred.ID, Popup: true, RedirectURL: "https://wizard.example.com/connect"})
			pg := e.browse(t, cb)
			if pg.status != http.StatusOK || !strings.HasPrefix(pg.header.Get("Content-Type"), "text/html") {
				t.Fatalf("popup page %d %s", pg.status, pg.header.Get("Content-Type"))
			}
			for _, want := range []string{
				`"type":"plugboard:oauth"`, `"credentialId":"` + globalid.Encode(cred.ID) + `"`, `"status":"ACTIVE"`,
				`var target = "https://wizard.example.com"`, "window.opener.postMessage(message, target)", "window.close()",
			} {
				if !strings.Contains(pg.body, want) {
					t.Errorf("popup page lacks %s:\n%s", want, pg.body)
				}
			}
			if strings.Contains(pg.body, `"error"`) {
				t.Errorf("a successful popup posts an error:\n%s", pg.body)
			}
			csp := pg.header.Get("Content-Security-Policy")
			if !strings.Contains(csp, "script-src 'nonce-") || !strings.Contains(csp, "default-src 'none'") {
				t.Errorf("popup CSP %q", csp)
			}

			// Without a redirect URL the target is "*"; a failure posts its error.
			authURL, _ := e.svc.Authorize(e.admin, oauth.StartInput{CredentialID: cred.ID, Popup: true})
			au, _ := url.Parse(authURL)
			pg = e.browse(t, e.cb.URL+"/oauth2/callback?"+url.Values{"state": {au.Query().Get("state")}, "error": {"access_denied"}}.Encode())
			if !strings.Contains(pg.body, `var target = "*"`) || !strings.Contains(pg.body, `"error":"access_denied"`) || !strings.Contains(pg.body, `"status":"ERROR"`) {
				t.Errorf("failed popup page:\n%s", pg.body)
			}
		})

		t.Run("PKCE methods the type declares", func(t *testing.T) {
			for _, method := range []string{"PLAIN", "NONE"} {
				ct := e.slackLike(t, connectiontype.AuthKindOAUTH2_AUTHORIZATION_CODE, p.URL(), func(sp *schematype.OAuth2Spec) {
					sp.PKCEMethod = method
					sp.AuthStyle = "HEADER"
				})
				cred := e.credential(t, ct, p.values())
				authURL, err := e.svc.Authorize(e.admin, oauth.StartInput{CredentialID: cred.ID})
				if err != nil {
					t.Fatal(e.noteErr(err))
				}
				q := must(url.Parse(authURL)).Query()
				switch method {
				case "PLAIN":
					if q.Get("code_challenge_method") != "plain" || q.Get("code_challenge") == "" {
						t.Errorf("PLAIN authorize URL: %s", authURL)
					}
				case "NONE":
					if q.Has("code_challenge") || q.Has("code_challenge_method") {
						t.Errorf("NONE authorize URL asks a challenge: %s", authURL)
					}
				}
				pg := e.browse(t, e.browse(t, authURL).location)
				e.addSecret(p.receivedVerifiers()...)
				if c := e.get(t, cred.ID); pg.status != http.StatusOK || c.Status != credential.StatusACTIVE {
					t.Errorf("%s: callback %d, credential %s %q", method, pg.status, c.Status, c.StatusDetail)
				}
			}
		})

		t.Run("Start checks its caller and the type", func(t *testing.T) {
			ct := e.slackLike(t, connectiontype.AuthKindOAUTH2_AUTHORIZATION_CODE, p.URL(), nil)
			cred := e.credential(t, ct, p.values())
			other, _ := e.db.Organization.Create().SetName("Other").SetSlug("o-" + randHex(4)).Save(e.sys)
			if _, err := e.svc.Authorize(e.adminOf(t, other.ID), oauth.StartInput{CredentialID: cred.ID}); !errors.Is(e.noteErr(err), oauth.ErrNotFound) {
				t.Errorf("Start from another organization: %v", err)
			}
			if _, err := e.svc.Authorize(e.runtimeCtx(t), oauth.StartInput{CredentialID: cred.ID}); !errors.Is(e.noteErr(err), auth.ErrForbidden) {
				t.Errorf("a runtime token started an authorization: %v", err)
			}
			customer := auth.NewContext(t.Context(), &auth.Viewer{Role: auth.RoleCustomerUser, OrganizationID: e.org.ID, CustomerID: 1})
			if _, err := e.svc.Token(customer, cred.ID, 0); !errors.Is(e.noteErr(err), auth.ErrForbidden) {
				t.Errorf("a customer user read a token: %v", err)
			}
			cc := e.slackLike(t, connectiontype.AuthKindOAUTH2_CLIENT_CREDENTIALS, p.URL(), nil)
			ccCred := e.credential(t, cc, p.values())
			if _, err := e.svc.Authorize(e.admin, oauth.StartInput{CredentialID: ccCred.ID}); !errors.Is(e.noteErr(err), oauth.ErrNotOAuth) {
				t.Errorf("Start on a client credentials type: %v", err)
			}
		})
	})
}

func TestRefresh(t *testing.T) {
	storetest.Each(t, func(t *testing.T, st *store.Store) {
		e := newEnv(t, st, envOptions{})
		t.Run("a response without a refresh token keeps the old one", func(t *testing.T) {
			p := newProvider(t)
			cred, _ := e.authorizedCredential(t, p)
			old, err := e.svc.Token(e.runtimeCtx(t), cred.ID, 0)
			if err != nil {
				t.Fatal(e.noteErr(err))
			}
			p.noRefreshOnRefresh = true
			e.expire(t, cred.ID)
			fresh, err := e.svc.Token(e.runtimeCtx(t), cred.ID, 0)
			if err != nil {
				t.Fatal(e.noteErr(err))
			}
			if fresh.AccessToken == old.AccessToken || fresh.RefreshToken != old.RefreshToken || p.refreshCalls.Load() != 1 {
				t.Fatalf("refresh: new access %v, same refresh %v, calls %d", fresh.AccessToken != old.AccessToken, fresh.RefreshToken == old.RefreshToken, p.refreshCalls.Load())
			}
			if len(fresh.Scopes) != 2 {
				t.Errorf("a refresh lost the scopes: %q", fresh.Scopes)
			}
			// It still works next time.
			e.expire(t, cred.ID)
			if _, err := e.svc.Token(e.runtimeCtx(t), cred.ID, 0); err != nil || p.refreshCalls.Load() != 2 {
				t.Fatalf("second refresh with the kept refresh token: %v", e.noteErr(err))
			}
		})

		t.Run("invalid_grant fails the credential until it is reconnected", func(t *testing.T) {
			p := newProvider(t)
			cred, _ := e.authorizedCredential(t, p)
			// The provider forgets the grant.
			p.mu.Lock()
			p.refresh = map[string]bool{}
			p.mu.Unlock()
			e.expire(t, cred.ID)
			_, err := e.svc.Token(e.runtimeCtx(t), cred.ID, 0)
			if !errors.Is(e.noteErr(err), oauth.ErrReconnectNeeded) {
				t.Fatalf("Token after invalid_grant: %v", err)
			}
			got := e.get(t, cred.ID)
			want := "the provider refused the refresh token (invalid_grant): the customer must reconnect"
			if got.Status != credential.StatusFAILED || got.StatusDetail != want || got.NextRefreshAt != nil {
				t.Fatalf("after invalid_grant: %s %q", got.Status, got.StatusDetail)
			}
			if !hasAudit(e.audits(t, cred.ID), "credential.status_changed: status ACTIVE → FAILED") {
				t.Errorf("audit: %q", e.audits(t, cred.ID))
			}
			// Not swept again, and reads fail fast without calling the provider.
			calls := p.tokenCalls.Load()
			e.expire(t, cred.ID)
			stats, err := e.svc.Sweep(e.sys)
			if err != nil || stats.Due != 0 {
				t.Errorf("sweep over a FAILED credential: %+v %v", stats, err)
			}
			if _, err := e.svc.Token(e.runtimeCtx(t), cred.ID, 0); !errors.Is(e.noteErr(err), oauth.ErrReconnectNeeded) || p.tokenCalls.Load() != calls {
				t.Errorf("Token on a FAILED credential: %v, calls %d → %d", err, calls, p.tokenCalls.Load())
			}

			// Reconnect: Start again on the same credential.
			cb := e.connect(t, oauth.StartInput{CredentialID: cred.ID})
			if pg := e.browse(t, cb); pg.status != http.StatusOK {
				t.Fatalf("reconnect callback %d: %s", pg.status, pg.body)
			}
			got = e.get(t, cred.ID)
			if got.Status != credential.StatusACTIVE || got.FailureCount != 0 || got.ConnectionID != cred.ConnectionID || got.Inputs["clientId"] != p.clientID {
				t.Fatalf("after reconnecting: %s %q", got.Status, got.StatusDetail)
			}
			if _, err := e.svc.Token(e.runtimeCtx(t), cred.ID, 0); err != nil {
				t.Fatal(e.noteErr(err))
			}
		})

		t.Run("transient failure: ERROR with backoff, token served while valid, then ACTIVE", func(t *testing.T) {
			p := newProvider(t)
			cred, _ := e.authorizedCredential(t, p)
			tok, err := e.svc.Token(e.runtimeCtx(t), cred.ID, 0)
			if err != nil {
				t.Fatal(e.noteErr(err))
			}
			fail := true
			p.onToken = func(w http.ResponseWriter, _ *http.Request, form url.Values) bool {
				if fail && form.Get("grant_type") == "refresh_token" {
					w.WriteHeader(http.StatusInternalServerError)
					_, _ = w.Write([]byte("upstream exploded; token " + form.Get("refresh_token")))
					return true
				}
				return false
			}
			// 55 minutes in, the 1 h token is within the 10 min margin.
			e.clock.Advance(55 * time.Minute)
			got, err := e.svc.Token(e.runtimeCtx(t), cred.ID, 0)
			if err != nil || got.AccessToken != tok.AccessToken {
				t.Fatalf("during a transient failure Token = %v, want the current token", e.noteErr(err))
			}
			c := e.get(t, cred.ID)
			if c.Status != credential.StatusERROR || c.FailureCount != 1 || !strings.Contains(c.StatusDetail, "500") ||
				!strings.Contains(c.StatusDetail, "attempt 1 of 5") {
				t.Fatalf("after a 500: %s %d %q", c.Status, c.FailureCount, c.StatusDetail)
			}
			now := e.clock.Now()
			if c.NextRefreshAt.Before(now.Add(20*time.Second)) || c.NextRefreshAt.After(now.Add(40*time.Second)) {
				t.Errorf("backoff: next refresh at now+%s, want about 30 s", c.NextRefreshAt.Sub(now))
			}
			// In backoff: no call; a caller needing 10 min gets an error.
			calls := p.refreshCalls.Load()
			if _, err := e.svc.Token(e.runtimeCtx(t), cred.ID, 10*time.Minute); !errors.Is(e.noteErr(err), oauth.ErrProvider) {
				t.Errorf("Token needing more than the token has, in backoff: %v", err)
			}
			if got, err := e.svc.Token(e.runtimeCtx(t), cred.ID, time.Minute); err != nil || got.AccessToken != tok.AccessToken {
				t.Errorf("Token needing 1 min, in backoff: %v", e.noteErr(err))
			}
			if p.refreshCalls.Load() != calls {
				t.Error("the provider was called during the backoff")
			}
			// The backoff passes, the provider recovers, the sweeper refreshes.
			fail = false
			e.clock.Advance(time.Minute)
			stats, err := e.svc.Sweep(e.sys)
			if err != nil || stats.Refreshed != 1 {
				t.Fatalf("sweep: %+v %v", stats, err)
			}
			c = e.get(t, cred.ID)
			if c.Status != credential.StatusACTIVE || c.FailureCount != 0 || !c.NextRefreshAt.After(e.clock.Now()) {
				t.Fatalf("after recovering: %s %d %q", c.Status, c.FailureCount, c.StatusDetail)
			}
			as := e.audits(t, cred.ID)
			if !hasAudit(as, "credential.status_changed: status ACTIVE → ERROR") || !hasAudit(as, "credential.status_changed: status ERROR → ACTIVE") || !hasAudit(as, "credential.refresh_failed") {
				t.Errorf("audit: %q", as)
			}
			var tos []string
			for _, ev := range e.events.list() {
				if ev.CredentialID == cred.ID {
					tos = append(tos, ev.To)
				}
			}
			if strings.Join(tos, ",") != "ACTIVE,ERROR,ACTIVE" {
				t.Errorf("published transitions %v", tos)
			}
		})

		t.Run("repeated failures end in FAILED", func(t *testing.T) {
			svc := e.newService(envOptions{maxFailures: 3})
			p := newProvider(t)
			cred, _ := e.authorizedCredential(t, p)
			p.onToken = func(w http.ResponseWriter, _ *http.Request, form url.Values) bool {
				w.WriteHeader(http.StatusBadGateway)
				return true
			}
			for i := 0; i < 3; i++ {
				e.expire(t, cred.ID)
				if _, err := svc.Token(e.runtimeCtx(t), cred.ID, 0); e.noteErr(err) == nil {
					t.Fatal("Token with an expired token and a failing provider succeeded")
				}
			}
			c := e.get(t, cred.ID)
			if c.Status != credential.StatusFAILED || !strings.Contains(c.StatusDetail, "failed 3 times in a row") {
				t.Fatalf("after 3 failures: %s %q", c.Status, c.StatusDetail)
			}
		})

		t.Run("slow token endpoint times out", func(t *testing.T) {
			svc := e.newService(envOptions{tokenTimeout: 300 * time.Millisecond})
			p := newProvider(t)
			cred, _ := e.authorizedCredential(t, p)
			p.onToken = func(w http.ResponseWriter, r *http.Request, form url.Values) bool {
				select {
				case <-r.Context().Done():
				case <-time.After(10 * time.Second):
				}
				return true
			}
			e.expire(t, cred.ID)
			_, err := svc.Token(e.runtimeCtx(t), cred.ID, 0)
			if !errors.Is(e.noteErr(err), oauth.ErrProvider) || errors.Is(err, oauth.ErrReconnectNeeded) {
				t.Fatalf("Token with a slow provider: %v", err)
			}
			c := e.get(t, cred.ID)
			if c.Status != credential.StatusERROR || !strings.Contains(c.StatusDetail, "did not answer within 300ms") {
				t.Fatalf("after a timeout: %s %q", c.Status, c.StatusDetail)
			}
		})
	})
}

func TestDisconnect(t *testing.T) {
	storetest.Each(t, func(t *testing.T, st *store.Store) {
		e := newEnv(t, st, envOptions{})
		p := newProvider(t)

		cred, _ := e.authorizedCredential(t, p)
		tok, err := e.svc.Token(e.runtimeCtx(t), cred.ID, 0)
		if err != nil {
			t.Fatal(e.noteErr(err))
		}
		if err := e.svc.Disconnect(e.admin, cred.ID); err != nil {
			t.Fatal(e.noteErr(err))
		}
		p.mu.Lock()
		revokes := p.revokes
		p.mu.Unlock()
		if len(revokes) != 1 || revokes[0].Get("token") != tok.RefreshToken || revokes[0].Get("token_type_hint") != "refresh_token" {
			t.Fatalf("the provider saw revocations %d", len(revokes))
		}
		c := e.get(t, cred.ID)
		if c.Status != credential.StatusPENDING || c.Token != nil || c.TokenExpiresAt != nil || c.NextRefreshAt != nil || c.GrantedScopes != "" {
			t.Fatalf("after disconnecting: %s %q", c.Status, c.StatusDetail)
		}
		if c.Inputs["clientId"] != p.clientID || c.Secrets == nil {
			t.Error("disconnecting erased the inputs")
		}
		as := e.audits(t, cred.ID)
		if !hasAudit(as, "credential.disconnected: disconnected; the grant was revoked at the provider") || !hasAudit(as, "credential.status_changed: status ACTIVE → PENDING") {
			t.Errorf("audit: %q", as)
		}
		if _, err := e.svc.Token(e.runtimeCtx(t), cred.ID, 0); !errors.Is(e.noteErr(err), oauth.ErrNotConnected) {
			t.Errorf("Token after disconnecting: %v", err)
		}

		// A failed revocation is audited and the disconnect goes on.
		cred2, _ := e.authorizedCredential(t, p)
		p.revokeStatus = http.StatusServiceUnavailable
		if err := e.svc.Disconnect(e.admin, cred2.ID); err != nil {
			t.Fatal(e.noteErr(err))
		}
		if c := e.get(t, cred2.ID); c.Status != credential.StatusPENDING || c.Token != nil {
			t.Fatalf("after a failed revocation: %s", c.Status)
		}
		if as := e.audits(t, cred2.ID); !hasAudit(as, "credential.revoke_failed: revoking the grant failed: the revoke endpoint answered 503") {
			t.Errorf("audit: %q", as)
		}
		if err := e.svc.Disconnect(e.adminOf(t, e.org.ID+1), cred2.ID); !errors.Is(e.noteErr(err), oauth.ErrNotFound) {
			t.Errorf("Disconnect from another organization: %v", err)
		}
	})
}

func TestClientCredentials(t *testing.T) {
	storetest.Each(t, func(t *testing.T, st *store.Store) {
		e := newEnv(t, st, envOptions{})
		p := newProvider(t)
		ct := e.slackLike(t, connectiontype.AuthKindOAUTH2_CLIENT_CREDENTIALS, p.URL(), nil)
		values := map[string]string{
			"clientId": p.clientID, "clientSecret": p.clientSecret, "tokenUrl": p.URL() + "/token", "scopes": "read,write",
		}
		tok, err := e.svc.OAuth.FetchClientCredentials(e.admin, ct, values)
		if err != nil {
			t.Fatal(e.noteErr(err))
		}
		if tok.AccessToken == "" || tok.RefreshToken != "" || strings.Join(tok.Scopes, " ") != "read write" || p.ccCalls.Load() != 1 {
			t.Fatalf("client credentials token %v", tok)
		}
		// The save pipeline fetches a token of its own and stores it.
		cred := e.credential(t, ct, values)
		if cred.Status != credential.StatusACTIVE || p.ccCalls.Load() != 2 {
			t.Fatalf("saving a client-credentials credential: %s after %d calls", cred.Status, p.ccCalls.Load())
		}
		// StoreToken stores a given token in the caller's transaction.
		tx, err := e.db.Tx(e.admin)
		if err != nil {
			t.Fatal(err)
		}
		if err := e.svc.StoreToken(e.admin, tx, cred.ID, ct, tok); err != nil {
			_ = tx.Rollback()
			t.Fatal(e.noteErr(err))
		}
		if err := tx.Commit(); err != nil {
			t.Fatal(err)
		}
		c := e.get(t, cred.ID)
		if c.Status != credential.StatusACTIVE || c.NextRefreshAt == nil || bytes.Contains(c.Token, []byte(canary)) {
			t.Fatalf("after StoreToken: %s next=%v", c.Status, c.NextRefreshAt)
		}
		got, err := e.svc.Token(e.runtimeCtx(t), cred.ID, 0)
		if err != nil || got.AccessToken != tok.AccessToken {
			t.Fatalf("Token: %v", e.noteErr(err))
		}

		// Entering the margin, the sweeper fetches a new one.
		e.clock.Advance(51 * time.Minute)
		stats, err := e.svc.Sweep(e.sys)
		if err != nil || stats.Refreshed != 1 || p.ccCalls.Load() != 3 || p.refreshCalls.Load() != 0 {
			t.Fatalf("sweep: %+v %v, client credential calls %d", stats, err, p.ccCalls.Load())
		}
		renewed, err := e.svc.Token(e.runtimeCtx(t), cred.ID, 0)
		if err != nil || renewed.AccessToken == tok.AccessToken {
			t.Fatalf("after the sweep: %v", e.noteErr(err))
		}

		// Wrong client credentials: a clear error without the secret.
		bad := map[string]string{"clientId": p.clientID, "clientSecret": "cs_" + canary + "_wrong", "tokenUrl": p.URL() + "/token"}
		_, err = e.svc.OAuth.FetchClientCredentials(e.admin, ct, bad)
		var pe *oauth.ProviderError
		if !errors.As(e.noteErr(err), &pe) || pe.Code != "invalid_client" || !errors.Is(err, oauth.ErrProvider) {
			t.Fatalf("wrong client secret: %v", err)
		}
		if !strings.Contains(err.Error(), "[redacted]") {
			t.Errorf("the provider's echo of the secret was not redacted: %v", err)
		}
	})
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}
