package connection_test

import (
	"html"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/plugboard/plugboard/ent/connectiontype"
	"github.com/plugboard/plugboard/internal/secrets"
	"github.com/plugboard/plugboard/internal/store/storetest"
)

// Fixed raw states of authorizations FuzzCallbackState seeds: one already
// used, one expired. The seed corpus names them so the fuzzer reaches the
// refusals past the state lookup.
const (
	fuzzUsedState    = "pbst_fuzzUsedStateAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
	fuzzExpiredState = "pbst_fuzzExpiredStateBBBBBBBBBBBBBBBBBBBBBBBBB"
)

// FuzzCallbackState drives the OAuth 2.0 callback handler with arbitrary
// query strings (a raw query plus state, code and error parameters). It
// never panics, answers only 303, 400 or the documented 500 server_error,
// never echoes the state or the code into the page or a redirect, and never
// changes a credential.
func FuzzCallbackState(f *testing.F) {
	e := newEnv(f, storetest.SQLite(f), envOptions{})
	ct := e.slackLike(f, connectiontype.AuthKindOAUTH2_AUTHORIZATION_CODE, "https://provider.invalid", nil)
	cred := e.credential(f, ct, map[string]string{"clientId": "fuzz-client", "clientSecret": "fuzz-client-secret"})
	now := e.clock.Now()
	for _, s := range []struct {
		raw     string
		expires time.Time
		used    bool
	}{{fuzzUsedState, now.Add(time.Hour), true}, {fuzzExpiredState, now.Add(-time.Minute), false}} {
		c := e.db.OAuthState.Create().
			SetOrganizationID(e.org.ID).SetCredentialID(cred.ID).
			SetStateHash(secrets.HashToken(s.raw)).
			SetRedirectURL(allowedRedirect).SetExpiresAt(s.expires)
		if s.used {
			c.SetUsedAt(now.Add(-time.Minute))
		}
		if err := c.Exec(e.sys); err != nil {
			f.Fatal(err)
		}
	}
	snapshot := func(t testing.TB) string {
		var b strings.Builder
		for _, c := range must(e.db.Credential.Query().All(e.sys)) {
			b.WriteString(c.String())
			b.WriteString(string(c.Secrets))
			b.WriteString("\n")
		}
		return b.String()
	}
	before := snapshot(f)
	h := e.svc.OAuth.CallbackHandler(e.svc.CompleteAuthorization)
	serve := func(q string) *httptest.ResponseRecorder {
		r := httptest.NewRequest(http.MethodGet, "/oauth2/callback", nil)
		r.URL.RawQuery = q
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		return w
	}
	// fixed is the text the handler's answers hold whatever the query: a
	// state or code that is part of it is not an echo.
	var fixed strings.Builder
	for _, q := range []string{"", "state=unknown", "state=" + fuzzUsedState, "state=" + fuzzExpiredState} {
		w := serve(q)
		fixed.WriteString(w.Body.String() + "\x00" + w.Header().Get("Location") + "\x00")
	}
	fixed.WriteString("Something went wrong on our side. Try connecting again.")

	f.Add("", "", "", "")
	f.Add("", "pbst_unknown", "code123456789", "")
	f.Add("", fuzzUsedState, "the-code-of-a-used-state", "")
	f.Add("", fuzzExpiredState, "", "access_denied")
	f.Add("state=a&state=b&code=%zz", "", "", "")
	f.Add("error_description=%3Cscript%3E", fuzzUsedState, "c", "server_error")
	f.Add("", strings.Repeat("s", 600), strings.Repeat("c", 5000), "")
	f.Fuzz(func(t *testing.T, rawQuery, state, code, perr string) {
		q := rawQuery
		for _, p := range []struct{ k, v string }{{"state", state}, {"code", code}, {"error", perr}} {
			if p.v != "" {
				q += "&" + p.k + "=" + url.QueryEscape(p.v)
			}
		}
		w := serve(q)
		seen, _ := url.ParseQuery(q)
		body := w.Body.String()
		switch w.Code {
		case http.StatusSeeOther, http.StatusBadRequest:
		case http.StatusInternalServerError:
			if !strings.Contains(body, "Something went wrong on our side") {
				t.Fatalf("undocumented 500: %s", body)
			}
		default:
			t.Fatalf("status %d for query %q", w.Code, q)
		}
		loc := w.Header().Get("Location")
		for _, k := range []string{"state", "code"} {
			v := seen.Get(k)
			if len(v) < 8 || strings.Contains(fixed.String(), v) {
				continue
			}
			for _, form := range []string{v, html.EscapeString(v), url.QueryEscape(v)} {
				if strings.Contains(body, form) || strings.Contains(loc, form) {
					t.Fatalf("the %s %q is echoed: status %d, location %q, body %q", k, v, w.Code, loc, body)
				}
			}
		}
		if after := snapshot(t); after != before {
			t.Fatalf("a callback changed a credential:\nbefore %s\nafter  %s", before, after)
		}
	})
}
