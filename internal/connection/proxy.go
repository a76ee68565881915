package connection

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/plugboard/plugboard/ent"
	"github.com/plugboard/plugboard/ent/schema/schematype"
	"github.com/plugboard/plugboard/internal/egress"
	"github.com/plugboard/plugboard/internal/oauth"
	"github.com/plugboard/plugboard/internal/onprem"
	"github.com/plugboard/plugboard/plugins/sdk"
)

// ProxyTarget is what the credential proxy needs to make one call with a
// credential: where to send it, under which address policy, and how to put
// the credential on it. It holds the credential's secrets and lives for one
// call.
type ProxyTarget struct {
	// Credential is the credential's row.
	Credential *ent.Credential
	// TypeKey is the connection type's key, for metrics.
	TypeKey string
	// Base is the upstream base URL the proxied path is appended to; its
	// host is the only host the call may go to.
	Base *url.URL
	// Policy is the address policy of the call: the server's, with private
	// ranges allowed when the organization allows them.
	Policy egress.Policy
	// ResetHeader names the answer header that says when a rate-limited
	// call may be retried, besides Retry-After; may be empty.
	ResetHeader string
	// OnPrem, for a credential bound to an on-prem resource, opens the
	// call's connection: a stream through the resource's agent to its
	// target (the base URL's host and port name the target; no address
	// policy applies, as plugboard dials no address). Nil otherwise.
	OnPrem func(ctx context.Context) (net.Conn, error)

	svc    *Service
	spec   *schematype.HTTPSpec
	values map[string]string
	token  *oauth.Token
	oauth  bool
}

// ProxyDeniedError refuses a proxied call plugboard will not make: the type
// declares no HTTP API, or the credential's base URL names a host the type
// does not allow. The HTTP layer answers it PROXY_DENIED.
type ProxyDeniedError struct{ Reason string }

func (e *ProxyDeniedError) Error() string { return "proxy denied: " + e.Reason }

// MayProxy reports whether the viewer of ctx may call an upstream through
// the credential proxy (the authorization table: only RUNTIME tokens may).
func MayProxy(ctx context.Context) error {
	_, err := Authorize(ctx, ProxyCredential)
	return err
}

// ResolveProxy returns how to call the API of credential id's type with the
// credential: the runtime read's rules decide whether it may be used (same
// tenant, status, a fresh access token for OAuth 2.0 types), the type's
// HTTP spec where the call goes and how the credential is put on it. The
// call itself is audited by AuditProxyCall.
func (s *Service) ResolveProxy(ctx context.Context, id int) (*ProxyTarget, error) {
	if err := MayProxy(ctx); err != nil {
		return nil, err
	}
	read, err := s.readRuntime(ctx, id, 0)
	if err != nil {
		return nil, err
	}
	spec := read.Type.HTTP
	if spec == nil {
		return nil, &ProxyDeniedError{Reason: "connection type " + read.Type.Key + " declares no HTTP API to proxy (its plugin predates protocol 1.1)"}
	}
	allowPrivate, err := s.orgAllowsPrivate(ctx, read.Credential.OrganizationID)
	if err != nil {
		s.log().Error("proxy: reading the organization", "credential", id, "err", err)
		return nil, errRuntimeInternal
	}
	policy := s.Egress
	policy.AllowPrivate = policy.AllowPrivate || allowPrivate
	t := &ProxyTarget{
		Credential: read.Credential, TypeKey: read.Type.Key, Policy: policy,
		ResetHeader: spec.RateLimitResetHeader,
		svc:         s, spec: spec, values: read.Values, token: read.Token, oauth: isOAuth(read.Type),
	}
	if rid := boundTo(read.Credential); rid != 0 {
		if err := s.proxyOnPrem(ctx, t, read.Type, rid); err != nil {
			return nil, err
		}
	}
	if t.Base, err = proxyBase(spec, t.values, policy); err != nil {
		return nil, err
	}
	return t, nil
}

// proxyOnPrem aims t, whose credential is bound to on-prem resource rid,
// at the resource's target: its onPremControlled inputs are the target's
// host and port as the customer's network sees them (the base URL and its
// Host header name them), and each call's connection is a tunnel stream,
// which the agent opens to its target and nowhere else.
func (s *Service) proxyOnPrem(ctx context.Context, t *ProxyTarget, ct *ent.ConnectionType, rid int) error {
	r, err := s.DB.OnPremResource.Get(ctx, rid)
	if err != nil {
		s.log().Error("proxy: reading the on-prem resource", "credential", t.Credential.ID, "err", err)
		return errRuntimeInternal
	}
	host, port, err := net.SplitHostPort(r.Target)
	if err != nil {
		return &ProxyDeniedError{Reason: "the on-prem resource's target is not host:port"}
	}
	t.values = onPremValues(ct, t.values, host, port)
	c := t.Credential
	info := onprem.StreamInfo{Purpose: "proxy", Actor: actorOf(ctx), ConnectionID: c.ConnectionID, CredentialID: c.ID}
	t.OnPrem = func(ctx context.Context) (net.Conn, error) { return s.dialTunnel(ctx, rid, info) }
	return nil
}

// proxyBase renders the type's base URL with the credential's values and
// checks it: an absolute http(s) URL without user, query or fragment whose
// host the type allows.
func proxyBase(spec *schematype.HTTPSpec, values map[string]string, p egress.Policy) (*url.URL, error) {
	raw := values[spec.BaseURLOverrideInput]
	if spec.BaseURLOverrideInput == "" || raw == "" {
		var err error
		if raw, err = sdk.RenderTemplate(spec.BaseURL, values); err != nil {
			return nil, &ProxyDeniedError{Reason: "the type's base URL cannot be built from the credential's values"}
		}
	}
	u, err := url.Parse(strings.TrimSpace(raw))
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.User != nil || u.RawQuery != "" || u.Fragment != "" {
		return nil, &ProxyDeniedError{Reason: "the credential's base URL is not an absolute http(s) URL"}
	}
	if !hostAllowed(spec.AllowedHosts, u, p) {
		return nil, &ProxyDeniedError{Reason: "host " + u.Hostname() + " is not a host the connection type allows"}
	}
	u.Path = strings.TrimSuffix(u.Path, "/")
	u.RawPath = ""
	return u, nil
}

// hostAllowed reports whether u's host is one of patterns (exact names,
// or "*.suffix" for any name below suffix) on the default port. No patterns
// allow any host. A loopback host is allowed when the policy allows
// loopback (development and tests), so a test server can stand in for the
// API without another rule for production.
func hostAllowed(patterns []string, u *url.URL, p egress.Policy) bool {
	if len(patterns) == 0 {
		return true
	}
	host := strings.ToLower(u.Hostname())
	if p.AllowLoopback && isLoopbackHost(host) {
		return true
	}
	if u.Port() != "" {
		return false
	}
	for _, pat := range patterns {
		pat = strings.ToLower(pat)
		if suffix, ok := strings.CutPrefix(pat, "*."); ok {
			if strings.HasSuffix(host, "."+suffix) && len(host) > len(suffix)+1 {
				return true
			}
		} else if host == pat {
			return true
		}
	}
	return false
}

func isLoopbackHost(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// IsOAuth reports whether the credential's type is an OAuth 2.0 type (a
// 401 from upstream refreshes its token once).
func (t *ProxyTarget) IsOAuth() bool { return t.oauth }

// Inject puts the credential on r as the type declares. r must be the
// proxy's own outgoing request.
func (t *ProxyTarget) Inject(r *http.Request) {
	s := t.spec
	switch s.Inject {
	case string(sdk.InjectBearer):
		r.Header.Set("Authorization", "Bearer "+t.secret(s.Input))
	case string(sdk.InjectHeader):
		r.Header.Set(s.Header, s.Prefix+t.secret(s.Input))
	case string(sdk.InjectBasic):
		r.SetBasicAuth(t.values[s.UsernameInput], t.values[s.PasswordInput])
	case string(sdk.InjectQuery):
		q := r.URL.Query()
		q.Set(s.QueryParam, t.secret(s.Input))
		r.URL.RawQuery = q.Encode()
	}
}

// secret is the value of input key, or the access token when key is empty
// on an OAuth 2.0 type.
func (t *ProxyTarget) secret(key string) string {
	if key == "" && t.token != nil {
		return t.token.AccessToken
	}
	return t.values[key]
}

// RefreshRejected refreshes the OAuth 2.0 token the upstream just rejected
// (a 401), once: through the refresh single flight and lock, and only if
// the stored token is still the rejected one, so concurrent calls that all
// got a 401 make one token call. It reports whether there is a new token to
// retry with.
func (t *ProxyTarget) RefreshRejected(ctx context.Context) (bool, error) {
	if !t.oauth || t.token == nil {
		return false, nil
	}
	tok, err := t.svc.tokenFor(ctx, t.Credential.ID, need{minValidity: expirySkew, rejected: t.token.AccessToken})
	if err != nil {
		return false, err
	}
	if tok.AccessToken == t.token.AccessToken {
		return false, nil
	}
	t.token = tok
	return true, nil
}

// ProxyCall is what the audit of one proxied call records: never a query
// string, a header or a body.
type ProxyCall struct {
	Method   string
	Path     string // upstream path, without the query
	Status   int    // 0 when no answer came
	Outcome  string // the error code when the call failed
	Duration time.Duration
	Retries  int
}

// AuditProxyCall records one proxied call of t's credential. It returns
// once the row is committed (with the runtime reads' group commit), so the
// audit of an answered call is durable before the answer is sent.
func (s *Service) AuditProxyCall(ctx context.Context, t *ProxyTarget, call ProxyCall) error {
	v, err := Authorize(ctx, ProxyCredential)
	if err != nil {
		return err
	}
	outcome := fmt.Sprint(call.Status)
	if call.Outcome != "" {
		outcome = call.Outcome
	}
	c := t.Credential
	return s.runtimeAudits().write(ctx, s.now(), auditEntry{
		orgID: v.OrganizationID, actor: v.Actor, credentialID: c.ID, connectionID: c.ConnectionID,
		action: "credential.proxied",
		message: fmt.Sprintf("%s %s%s: %s in %d ms, %d retries", call.Method, t.Base.Host,
			call.Path, outcome, call.Duration.Milliseconds(), call.Retries),
	})
}
