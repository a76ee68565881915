package oauth

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/plugboard/plugboard/ent"
	"github.com/plugboard/plugboard/ent/connectiontype"
	"github.com/plugboard/plugboard/ent/credential"
	"github.com/plugboard/plugboard/ent/oauthstate"
	"github.com/plugboard/plugboard/internal/auth"
	"github.com/plugboard/plugboard/internal/globalid"
	"github.com/plugboard/plugboard/internal/secrets"
	"github.com/plugboard/plugboard/internal/secrets/sealed"
)

// outcome is the result of one callback, as the browser is told.
type outcome struct {
	// state is the authorization's state row; nil when unknown.
	state  *ent.OAuthState
	credID int
	// status is the credential's status afterwards; "" when unknown.
	status credential.Status
	// err is nil on success; it wraps one of the package's errors.
	err error
	// code is the error code given to the browser (error=...).
	code    string
	message string
	http    int
}

// CallbackHandler returns the handler of the provider's redirect back to
// plugboard (mount it at GET /oauth2/callback; Config.CallbackURL must name
// it). It checks the state, exchanges the code, stores the token and then
// redirects to the start's success or failure URL, answers a popup with a
// page that posts the outcome to window.opener, or shows a page. It acts as
// plugboard itself (auth.SystemContext); the state proves the caller.
func (s *Service) CallbackHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet {
			w.Header().Set("Allow", http.MethodGet)
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		// The code is single use: finish even if the browser goes away.
		ctx, cancel := context.WithTimeout(auth.SystemContext(context.WithoutCancel(r.Context())), s.tokenTimeout+30*time.Second)
		defer cancel()
		o := s.complete(ctx, r.URL.Query())
		s.respond(ctx, w, r, o)
	})
}

func stateFailure(err error, code, msg string) outcome {
	return outcome{err: err, code: code, message: msg, http: http.StatusBadRequest}
}

// complete runs the callback and says how it went. A state that is
// unknown, expired, used or of another organization changes nothing.
func (s *Service) complete(ctx context.Context, q url.Values) outcome {
	raw := q.Get("state")
	if raw == "" || len(raw) > 512 {
		return stateFailure(ErrStateInvalid, "invalid_state", "The answer of the provider carries no valid state. Start connecting again.")
	}
	st, err := s.db.OAuthState.Query().Where(oauthstate.StateHash(secrets.HashToken(raw))).Only(ctx)
	if ent.IsNotFound(err) {
		s.log.Warn("callback with an unknown state")
		return stateFailure(ErrStateInvalid, "invalid_state", "This authorization is unknown. Start connecting again.")
	}
	if err != nil {
		s.log.Error("reading an authorization state", "err", err)
		return outcome{err: err, code: "server_error", message: "Something went wrong on our side. Try connecting again.", http: http.StatusInternalServerError}
	}
	now := s.now()
	fail := func(err error, code, msg string) outcome {
		o := stateFailure(err, code, msg)
		o.state, o.credID = st, st.CredentialID
		s.log.Warn("callback refused", "credential", st.CredentialID, "reason", code)
		return o
	}
	switch {
	case st.UsedAt != nil:
		return fail(ErrStateUsed, "state_used", "This authorization was already completed once. Start connecting again.")
	case !now.Before(st.ExpiresAt):
		return fail(ErrStateExpired, "state_expired", "This authorization took too long and expired. Start connecting again.")
	}
	n, err := s.db.OAuthState.Update().
		Where(oauthstate.ID(st.ID), oauthstate.UsedAtIsNil()).
		SetUsedAt(now).Save(ctx)
	if err != nil {
		s.log.Error("using an authorization state", "credential", st.CredentialID, "err", err)
		return outcome{err: err, state: st, code: "server_error", message: "Something went wrong on our side. Try connecting again.", http: http.StatusInternalServerError}
	}
	if n == 0 {
		return fail(ErrStateUsed, "state_used", "This authorization was already completed once. Start connecting again.")
	}
	cred, err := s.db.Credential.Get(ctx, st.CredentialID)
	if err != nil || cred.OrganizationID != st.OrganizationID {
		o := fail(ErrStateInvalid, "invalid_state", "This authorization does not match a connection. Start connecting again.")
		o.credID = 0
		return o
	}

	o := outcome{state: st, credID: cred.ID, status: cred.Status}
	failed := func(detail, code, msg string, err error) outcome {
		t := s.markError(ctx, cred, detail, actorCallback)
		o.status, o.err, o.code, o.message, o.http = t.to, err, code, msg, http.StatusBadRequest
		s.log.Warn("authorization failed", "credential", cred.ID, "reason", code, "detail", detail)
		return o
	}
	if perr := q.Get("error"); perr != "" {
		code := errorCode(perr)
		if code == "" {
			code = "provider_error"
		}
		desc := sanitize(q.Get("error_description"), nil, 300)
		detail := "the provider did not authorize the connection (" + code + ")"
		msg := "The provider did not authorize the connection (" + code + ")."
		if desc != "" {
			detail += ": " + desc
			msg = "The provider did not authorize the connection: " + desc
		}
		return failed(detail, code, msg, &ProviderError{Code: code, Message: detail, Permanent: code == "access_denied"})
	}
	code := q.Get("code")
	if code == "" || len(code) > 4096 {
		return failed("the provider's answer held no authorization code", "invalid_response",
			"The provider's answer held no authorization code. Try connecting again.",
			&ProviderError{Code: "invalid_response", Message: "no authorization code"})
	}
	ct, values, err := s.values.Resolved(ctx, cred)
	if err != nil {
		s.log.Error("resolving a credential's values", "credential", cred.ID, "err", err)
		return failed("the connection's values could not be read", "server_error",
			"Something went wrong on our side. Try connecting again.", err)
	}
	f, err := s.flowOf(ct, values)
	if err == nil && ct.AuthKind != connectiontype.AuthKindOAUTH2_AUTHORIZATION_CODE {
		err = ErrNotOAuth
	}
	if err != nil {
		return failed("the authorization could not be completed: "+err.Error(), "configuration_error",
			"The connection's OAuth 2.0 settings are incomplete: "+err.Error(), err)
	}
	var verifier string
	if len(st.Verifier) > 0 {
		b, err := s.keys.Decrypt(ctx, st.Verifier, sealed.OAuthVerifier.AAD(st.StateHash))
		if err != nil {
			s.log.Error("decrypting a PKCE verifier", "credential", cred.ID, "err", err)
			return failed("the authorization could not be completed: its PKCE verifier could not be read", "server_error",
				"Something went wrong on our side. Try connecting again.", err)
		}
		verifier = string(b)
	}
	f.secrets = append(f.secrets, code, verifier, raw)
	tok, err := s.exchange(ctx, f, code, verifier)
	if err != nil {
		pe := s.classify(err, "exchanging the authorization code", f.secrets)
		return failed("the authorization could not be completed: "+pe.Message, pe.Code,
			"The authorization could not be completed: "+pe.Message, pe)
	}
	msg := "authorized through OAuth 2.0"
	if len(tok.Scopes) > 0 {
		msg += "; granted scopes: " + strings.Join(tok.Scopes, " ")
	}
	t, err := s.authorized(ctx, cred, f, tok, actorCallback, "credential.authorized", msg)
	if err != nil {
		s.log.Error("storing an authorized token", "credential", cred.ID, "err", err)
		return outcome{err: err, state: st, credID: cred.ID, status: cred.Status, code: "server_error",
			message: "Something went wrong on our side. Try connecting again.", http: http.StatusInternalServerError}
	}
	s.log.Info("credential authorized", "credential", cred.ID, "type", ct.Key)
	o.status, o.http = t.to, http.StatusOK
	o.message = "The connection is authorized. You can return to the application."
	return o
}

// respond tells the browser how the callback went: a redirect to the
// start's success or failure URL, a popup page or a plain page.
func (s *Service) respond(ctx context.Context, w http.ResponseWriter, r *http.Request, o outcome) {
	gid := ""
	if o.credID != 0 {
		gid = globalid.Encode(o.credID)
	}
	title := "Connected"
	if o.err != nil {
		title = "Not connected"
		if errors.Is(o.err, ErrStateInvalid) || errors.Is(o.err, ErrStateExpired) || errors.Is(o.err, ErrStateUsed) {
			title = "This authorization link is no longer valid"
		}
	}
	d := pageData{Title: title, Message: o.message}
	st := o.state
	if st != nil && st.Popup {
		d.Popup = true
		d.Post = popupMessage{Type: "plugboard:oauth", CredentialID: gid, Status: string(o.status), Error: o.code}
		d.TargetOrigin = "*"
		if st.RedirectURL != "" {
			d.TargetOrigin = origin(st.RedirectURL)
		}
		renderPage(w, o.http, d)
		return
	}
	if st != nil {
		target := st.RedirectURL
		if o.err != nil && st.FailureURL != "" {
			target = st.FailureURL
		}
		if target != "" && s.stillAllowed(ctx, st.OrganizationID, target) {
			params := url.Values{}
			if gid != "" {
				params.Set("credentialId", gid)
			}
			if o.status != "" {
				params.Set("status", string(o.status))
			}
			if o.code != "" {
				params.Set("error", o.code)
			}
			w.Header().Set("Cache-Control", "no-store")
			w.Header().Set("Referrer-Policy", "no-referrer")
			http.Redirect(w, r, withQuery(target, params), http.StatusSeeOther)
			return
		}
	}
	renderPage(w, o.http, d)
}

// stillAllowed checks a redirect URL against the organization's current
// allow-list: it was checked at Start, but the list may have changed.
func (s *Service) stillAllowed(ctx context.Context, orgID int, target string) bool {
	org, err := s.db.Organization.Get(ctx, orgID)
	if err != nil {
		return false
	}
	_, err = checkRedirect(org.RedirectAllowlist, target)
	return err == nil
}
