package connection

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"

	"github.com/plugboard/plugboard/ent"
	"github.com/plugboard/plugboard/internal/auth"
	"github.com/plugboard/plugboard/internal/egress"
	"github.com/plugboard/plugboard/internal/oauth"
	"github.com/plugboard/plugboard/plugins/sdk"
)

// This file is the Test step of every live test (a save's, a stored
// credential's, a pending version's), and what the service hands a plugin
// whose type tests through the host: an HTTP transport that takes the
// plugin's request, checks that it goes to the host the type declares for
// the credential, injects the credential as the type's HTTP declaration
// says (the credential proxy's ProxyTarget: one owner for injection) and
// sends it under the egress policy. The plugin never holds a secret value.

// pluginTest runs the plugin's live test of resolved values (and tok).
func (s *Service) pluginTest(ctx context.Context, ct *ent.ConnectionType, resolved map[string]string, tok *oauth.Token) (*sdk.TestResponse, error) {
	if !s.Plugins.TestsThroughHost(ct.Key) {
		return s.Plugins.Test(ctx, ct.Key, resolved, sdkToken(tok))
	}
	rt, problem := s.credentialTransport(ctx, ct, resolved, tok)
	if problem != "" {
		return &sdk.TestResponse{OK: false, Message: problem}, nil
	}
	return s.Plugins.TestThroughHost(ctx, ct.Key, resolved, sdkToken(tok), rt)
}

// credentialTransport is the transport of one test through the host of a
// credential of ct with resolved values and tok, or the sentence that says
// why there is none (the test's failure). Where the call may go and how the
// credential goes on it are the credential proxy's rules (ProxyTarget):
// the type's HTTP declaration, the organization's address policy.
func (s *Service) credentialTransport(ctx context.Context, ct *ent.ConnectionType, resolved map[string]string, tok *oauth.Token) (http.RoundTripper, string) {
	spec := ct.HTTP
	if spec == nil {
		return nil, "The connection type " + ct.Key + " declares no HTTP API for plugboard to test it through."
	}
	policy := s.Egress
	if v := auth.FromContext(ctx); v != nil && v.OrganizationID != 0 {
		allow, err := s.orgAllowsPrivate(ctx, v.OrganizationID)
		if err != nil {
			s.log().Error("test through the host: reading the organization", "err", err)
		}
		policy.AllowPrivate = policy.AllowPrivate || allow
	}
	base, err := proxyBase(spec, resolved, policy)
	if err != nil {
		var denied *ProxyDeniedError
		if errors.As(err, &denied) {
			return nil, "plugboard will not test this credential: " + denied.Reason + "."
		}
		return nil, "plugboard will not test this credential."
	}
	target := &ProxyTarget{TypeKey: ct.Key, Base: base, Policy: policy, svc: s, spec: spec, values: resolved, token: tok, oauth: isOAuth(ct)}
	return &credentialTransport{client: egress.NewClient(policy, egress.ClientOptions{}), target: target}, ""
}

// credentialTransport sends a plugin's requests on with the credential.
type credentialTransport struct {
	client *http.Client
	// target's Base is the only scheme and host a request may go to; a
	// relative URL is taken as a path below it.
	target *ProxyTarget
}

func (t *credentialTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	base := t.target.Base
	target := req.URL
	if !req.URL.IsAbs() {
		target = base.JoinPath(req.URL.Path)
		target.RawQuery = req.URL.RawQuery
	}
	if !strings.EqualFold(target.Scheme, base.Scheme) || !strings.EqualFold(target.Host, base.Host) {
		return nil, fmt.Errorf("plugboard refused to send the credential to %s://%s: the connection type declares %s://%s", target.Scheme, target.Host, base.Scheme, base.Host)
	}
	out := req.Clone(req.Context())
	out.URL, out.Host, out.RequestURI = target, "", ""
	// The credential is the host's to set: what the plugin put there is
	// dropped.
	out.Header.Del("Authorization")
	out.Header.Del("Proxy-Authorization")
	out.Header.Del("Cookie")
	t.target.Inject(out)
	resp, err := t.client.Do(out)
	if err != nil {
		return nil, outboundError(target.Host, err)
	}
	return resp, nil
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
