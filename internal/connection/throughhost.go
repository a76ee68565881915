package connection

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"

	"github.com/plugboard/plugboard/ent"
	"github.com/plugboard/plugboard/ent/connectiontype"
	"github.com/plugboard/plugboard/internal/egress"
	"github.com/plugboard/plugboard/internal/oauth"
	"github.com/plugboard/plugboard/plugins/sdk"
)

// This file is the Test step of every live test (a save's, a stored
// credential's, a pending version's), and what the service hands a plugin
// whose type tests through the host: an HTTP transport that takes the
// plugin's request, checks that it goes to the host the type declares for
// the credential, injects the credential and sends it through the
// service's outbound client (the egress policy). The plugin never holds a
// secret value.

// pluginTest runs the plugin's live test of resolved values (and tok).
func (s *Service) pluginTest(ctx context.Context, ct *ent.ConnectionType, resolved map[string]string, tok *oauth.Token) (*sdk.TestResponse, error) {
	if !s.Plugins.TestsThroughHost(ct.Key) {
		return s.Plugins.Test(ctx, ct.Key, resolved, sdkToken(tok))
	}
	rt, problem := s.credentialTransport(ct, resolved, tok)
	if problem != "" {
		return &sdk.TestResponse{OK: false, Message: problem}, nil
	}
	return s.Plugins.TestThroughHost(ctx, ct.Key, resolved, sdkToken(tok), rt)
}

// credentialTransport is the transport of one test through the host of a
// credential of ct with resolved values and tok, or the sentence that says
// why there is none (the test's failure).
func (s *Service) credentialTransport(ct *ent.ConnectionType, resolved map[string]string, tok *oauth.Token) (http.RoundTripper, string) {
	inject := injectionFor(ct, resolved, tok)
	if inject == nil {
		return nil, "The connection type " + ct.Key + " declares no way for plugboard to send its credential."
	}
	bases := declaredBases(ct, resolved)
	if len(bases) == 0 {
		return nil, "The connection type " + ct.Key + " declares no base URL to test against."
	}
	return &credentialTransport{client: s.outbound(), bases: bases, inject: inject}, ""
}

// outbound is the client calls made for a credential go out with.
func (s *Service) outbound() *http.Client {
	if s.Outbound != nil {
		return s.Outbound
	}
	return refusingClient
}

// refusingClient stands in when the service has no Outbound client: a test
// through the host then reaches nothing rather than anything.
var refusingClient = &http.Client{Transport: roundTripFunc(func(*http.Request) (*http.Response, error) {
	return nil, errors.New("plugboard has no outbound client configured")
})}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// credentialTransport sends a plugin's requests on with the credential.
type credentialTransport struct {
	client *http.Client
	// bases are the base URLs the type declares for the credential: a
	// relative URL is resolved against the first, and a request must go
	// to the scheme and host of one of them.
	bases  []*url.URL
	inject func(*http.Request)
}

func (t *credentialTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	target := t.bases[0].ResolveReference(req.URL)
	if !t.declared(target) {
		return nil, fmt.Errorf("plugboard refused to send the credential to %s://%s: the connection type declares %s", target.Scheme, target.Host, t.hosts())
	}
	out := req.Clone(req.Context())
	out.URL, out.Host, out.RequestURI = target, "", ""
	// The credential is the host's to set: what the plugin put there is
	// dropped.
	out.Header.Del("Authorization")
	out.Header.Del("Proxy-Authorization")
	out.Header.Del("Cookie")
	t.inject(out)
	resp, err := t.client.Do(out)
	if err != nil {
		return nil, outboundError(target.Host, err)
	}
	return resp, nil
}

func (t *credentialTransport) declared(u *url.URL) bool {
	return slices.ContainsFunc(t.bases, func(b *url.URL) bool {
		return strings.EqualFold(b.Scheme, u.Scheme) && strings.EqualFold(b.Host, u.Host)
	})
}

func (t *credentialTransport) hosts() string {
	var hs []string
	for _, b := range t.bases {
		if h := b.Scheme + "://" + b.Host; !slices.Contains(hs, h) {
			hs = append(hs, h)
		}
	}
	return strings.Join(hs, ", ")
}

// outboundError words a failed outbound call without its URL, which may
// carry the credential (a query parameter).
func outboundError(host string, err error) error {
	var denied *egress.DeniedError
	if errors.As(err, &denied) {
		if h, _, _ := net.SplitHostPort(host); h == denied.Addr.String() || host == denied.Addr.String() {
			return fmt.Errorf("plugboard refused to connect to %s: %s", denied.Addr, denied.Reason)
		}
		return fmt.Errorf("plugboard refused to connect to %s at %s: %s", host, denied.Addr, denied.Reason)
	}
	var urlErr *url.Error
	if errors.As(err, &urlErr) {
		err = urlErr.Err
	}
	return err
}

// declaredBases lists the base URLs the type declares for the credential:
// the values of its URL and TEMPLATE inputs that are absolute http(s) URLs,
// and the OAuth 2.0 endpoints, in the order of the declaration. (A type's
// explicit HTTP declaration, where it has one, takes their place.)
func declaredBases(ct *ent.ConnectionType, resolved map[string]string) []*url.URL {
	var out []*url.URL
	add := func(raw string) {
		u, err := url.Parse(raw)
		if err == nil && (u.Scheme == "http" || u.Scheme == "https") && u.Host != "" && u.User == nil {
			out = append(out, u)
		}
	}
	for _, in := range ct.Inputs {
		if !in.Secret && (in.Type == "URL" || in.Type == "TEMPLATE") && resolved[in.Key] != "" {
			add(resolved[in.Key])
		}
	}
	if spec := ct.Oauth2; spec != nil {
		for _, tmpl := range []string{spec.TokenURL, spec.AuthorizeURL, spec.RevokeURL} {
			if v, err := sdk.RenderTemplate(tmpl, resolved); err == nil && v != "" {
				add(v)
			}
		}
	}
	return out
}

// injectionFor returns how the credential goes into a request of a type
// without an explicit declaration: an OAuth 2.0 type sends its access
// token as a bearer token; an API key type its one secret input as a
// bearer token; a basic auth type its username and its secret input as
// basic auth. It returns nil for a type it knows no way for.
func injectionFor(ct *ent.ConnectionType, resolved map[string]string, tok *oauth.Token) func(*http.Request) {
	switch ct.AuthKind {
	case connectiontype.AuthKindOAUTH2_AUTHORIZATION_CODE, connectiontype.AuthKindOAUTH2_CLIENT_CREDENTIALS:
		return func(r *http.Request) {
			if tok != nil && tok.AccessToken != "" {
				r.Header.Set("Authorization", "Bearer "+tok.AccessToken)
			}
		}
	case connectiontype.AuthKindAPI_KEY:
		if key, ok := oneSecret(ct, resolved); ok {
			return func(r *http.Request) { r.Header.Set("Authorization", "Bearer "+key) }
		}
	case connectiontype.AuthKindBASIC:
		password, ok := oneSecret(ct, resolved)
		if user := resolved["username"]; ok && user != "" {
			return func(r *http.Request) { r.SetBasicAuth(user, password) }
		}
	}
	return nil
}

// oneSecret returns the value of the type's one secret input that has a
// value, if there is exactly one.
func oneSecret(ct *ent.ConnectionType, resolved map[string]string) (string, bool) {
	var vals []string
	for _, in := range ct.Inputs {
		if in.Secret && resolved[in.Key] != "" {
			vals = append(vals, resolved[in.Key])
		}
	}
	if len(vals) != 1 {
		return "", false
	}
	return vals[0], true
}
