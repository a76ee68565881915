package oauth

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/url"
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

// Outcome is how one callback went, as the browser is told.
type Outcome struct {
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

// Err is nil when the callback authorized the credential.
func (o Outcome) Err() error { return o.err }

// Completion finishes a callback: internal/connection checks the state with
// BeginCallback, exchanges the code with Exchange and stores the outcome.
type Completion func(ctx context.Context, q url.Values) Outcome

// CallbackHandler returns the handler of the provider's redirect back to
// plugboard (mount it at GET /oauth2/callback; Config.CallbackURL must name
// it). complete checks the state, exchanges the code and stores the token;
// the handler then redirects to the start's success or failure URL, answers
// a popup with a page that posts the outcome to window.opener, or shows a
// page. It acts as plugboard itself (auth.SystemContext); the state proves
// the caller.
func (s *Service) CallbackHandler(complete Completion) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet {
			w.Header().Set("Allow", http.MethodGet)
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		// The code is single use: finish even if the browser goes away.
		ctx, cancel := context.WithTimeout(auth.SystemContext(context.WithoutCancel(r.Context())), s.tokenTimeout+30*time.Second)
		defer cancel()
		o := complete(ctx, r.URL.Query())
		s.respond(ctx, w, r, o)
	})
}

func stateFailure(err error, code, msg string) Outcome {
	return Outcome{err: err, code: code, message: msg, http: http.StatusBadRequest}
}

func serverError(err error) Outcome {
	return Outcome{err: err, code: "server_error", message: "Something went wrong on our side. Try connecting again.", http: http.StatusInternalServerError}
}

// Callback is a callback whose state was valid and is now used.
type Callback struct {
	state *ent.OAuthState
	q     url.Values
	raw   string
	log   *slog.Logger
}

// CredentialID is the credential the authorization is for.
func (c *Callback) CredentialID() int { return c.state.CredentialID }

// OrganizationID is the organization that started the authorization.
func (c *Callback) OrganizationID() int { return c.state.OrganizationID }

// BeginCallback checks the state of a callback and uses it up. A state
// that is unknown, expired or used changes nothing: BeginCallback returns
// nil and the Outcome to answer.
func (s *Service) BeginCallback(ctx context.Context, q url.Values) (*Callback, Outcome) {
	raw := q.Get("state")
	if raw == "" || len(raw) > 512 {
		return nil, stateFailure(ErrStateInvalid, "invalid_state", "The answer of the provider carries no valid state. Start connecting again.")
	}
	st, err := s.db.OAuthState.Query().Where(oauthstate.StateHash(secrets.HashToken(raw))).Only(ctx)
	if ent.IsNotFound(err) {
		s.log.Warn("callback with an unknown state")
		return nil, stateFailure(ErrStateInvalid, "invalid_state", "This authorization is unknown. Start connecting again.")
	}
	if err != nil {
		s.log.Error("reading an authorization state", "err", err)
		return nil, serverError(err)
	}
	cb := &Callback{state: st, q: q, raw: raw, log: s.log}
	now := s.now()
	switch {
	case st.UsedAt != nil:
		return nil, cb.refused(ErrStateUsed, "state_used", "This authorization was already completed once. Start connecting again.")
	case !now.Before(st.ExpiresAt):
		return nil, cb.refused(ErrStateExpired, "state_expired", "This authorization took too long and expired. Start connecting again.")
	}
	n, err := s.db.OAuthState.Update().
		Where(oauthstate.ID(st.ID), oauthstate.UsedAtIsNil()).
		SetUsedAt(now).Save(ctx)
	if err != nil {
		s.log.Error("using an authorization state", "credential", st.CredentialID, "err", err)
		o := serverError(err)
		o.state = st
		return nil, o
	}
	if n == 0 {
		return nil, cb.refused(ErrStateUsed, "state_used", "This authorization was already completed once. Start connecting again.")
	}
	return cb, Outcome{}
}

func (c *Callback) refused(err error, code, msg string) Outcome {
	o := stateFailure(err, code, msg)
	o.state, o.credID = c.state, c.state.CredentialID
	c.log.Warn("callback refused", "credential", c.state.CredentialID, "reason", code)
	return o
}

// Unmatched is the outcome of a callback whose state names no credential
// of its organization.
func (c *Callback) Unmatched() Outcome {
	o := c.refused(ErrStateInvalid, "invalid_state", "This authorization does not match a connection. Start connecting again.")
	o.credID = 0
	return o
}

// Failure is a failed authorization: Detail goes to the credential's
// status and the connection log, Code and Message to the browser. No part
// holds a secret.
type Failure struct {
	Detail, Code, Message string
	Err                   error
}

// ValuesUnreadable is the failure of a callback whose credential's values
// could not be read.
func ValuesUnreadable(err error) *Failure {
	return &Failure{Detail: "the connection's values could not be read", Code: "server_error",
		Message: "Something went wrong on our side. Try connecting again.", Err: err}
}

// Failed is the outcome of a failed authorization; status is the
// credential's status afterwards.
func (c *Callback) Failed(status credential.Status, f *Failure) Outcome {
	return Outcome{state: c.state, credID: c.state.CredentialID, status: status,
		err: f.Err, code: f.Code, message: f.Message, http: http.StatusBadRequest}
}

// NotStored is the outcome of an authorization whose token could not be
// stored.
func (c *Callback) NotStored(status credential.Status, err error) Outcome {
	o := serverError(err)
	o.state, o.credID, o.status = c.state, c.state.CredentialID, status
	return o
}

// Authorized is the outcome of a stored authorization.
func (c *Callback) Authorized(status credential.Status) Outcome {
	return Outcome{state: c.state, credID: c.state.CredentialID, status: status, http: http.StatusOK,
		message: "The connection is authorized. You can return to the application."}
}

// Exchange reads the provider's answer to cb and trades its code for a
// token, with ct's flow rendered against the credential's resolved values.
func (s *Service) Exchange(ctx context.Context, cb *Callback, ct *ent.ConnectionType, values map[string]string) (*Token, *Flow, *Failure) {
	code, fail := providerAnswer(cb.q)
	if fail != nil {
		return nil, nil, fail
	}
	f, err := s.FlowOf(ct, values)
	if err == nil && ct.AuthKind != connectiontype.AuthKindOAUTH2_AUTHORIZATION_CODE {
		err = ErrNotOAuth
	}
	if err != nil {
		return nil, nil, &Failure{Detail: "the authorization could not be completed: " + err.Error(), Code: "configuration_error",
			Message: "The connection's OAuth 2.0 settings are incomplete: " + err.Error(), Err: err}
	}
	verifier, fail := s.verifierOf(ctx, cb.state)
	if fail != nil {
		return nil, nil, fail
	}
	f.secrets = append(f.secrets, code, verifier, cb.raw)
	tok, err := s.exchange(ctx, f, code, verifier)
	if err != nil {
		pe := s.classify(err, "exchanging the authorization code", f.secrets)
		return nil, nil, &Failure{Detail: "the authorization could not be completed: " + pe.Message, Code: pe.Code,
			Message: "The authorization could not be completed: " + pe.Message, Err: pe}
	}
	return tok, f, nil
}

// providerAnswer returns the code of the provider's answer, or the failure
// it reports (error=...) or is (no code).
func providerAnswer(q url.Values) (string, *Failure) {
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
		return "", &Failure{Detail: detail, Code: code, Message: msg,
			Err: &ProviderError{Code: code, Message: detail, Permanent: code == "access_denied"}}
	}
	code := q.Get("code")
	if code == "" || len(code) > 4096 {
		return "", &Failure{Detail: "the provider's answer held no authorization code", Code: "invalid_response",
			Message: "The provider's answer held no authorization code. Try connecting again.",
			Err:     &ProviderError{Code: "invalid_response", Message: "no authorization code"}}
	}
	return code, nil
}

// verifierOf opens the PKCE verifier of st; "" without PKCE.
func (s *Service) verifierOf(ctx context.Context, st *ent.OAuthState) (string, *Failure) {
	if len(st.Verifier) == 0 {
		return "", nil
	}
	b, err := s.keys.Decrypt(ctx, st.Verifier, sealed.OAuthVerifier.AAD(st.StateHash))
	if err != nil {
		s.log.Error("decrypting a PKCE verifier", "credential", st.CredentialID, "err", err)
		return "", &Failure{Detail: "the authorization could not be completed: its PKCE verifier could not be read", Code: "server_error",
			Message: "Something went wrong on our side. Try connecting again.", Err: err}
	}
	return string(b), nil
}

// respond tells the browser how the callback went: a redirect to the
// start's success or failure URL, a popup page or a plain page.
func (s *Service) respond(ctx context.Context, w http.ResponseWriter, r *http.Request, o Outcome) {
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
