package pluginhost

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	"github.com/plugboard/plugboard/plugins/sdk"
)

// A connection type that tests through the host (sdk.ConnectionType.
// TestThroughHost) never receives a secret: the host sends its Validate and
// Test the values of the other inputs only, no token, and serves the
// plugin's HTTP requests for the length of the Test over go-plugin's broker
// with a RoundTripper its caller passes (the one that injects the
// credential). The rule lives here, at the one place that talks to plugins,
// so no caller can send such a type a secret by mistake.

// TestsThroughHost reports whether the loaded plugin that declared typeKey
// tests it through the host.
func (h *Host) TestsThroughHost(typeKey string) bool {
	m, err := h.route(typeKey)
	if err != nil {
		return false
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.throughHost[typeKey]
}

// TestThroughHost asks the plugin that declared typeKey, a type that tests
// through the host, to test the credential: the plugin gets values without
// the secret inputs, of the token only its type and expiry (that there is
// one), and each HTTP request it makes is sent with rt, which injects the
// credential and checks where the request goes. A redirect is returned to
// the plugin, never followed. For a type that does not test through the
// host it fails with ErrNotThroughHost.
func (h *Host) TestThroughHost(ctx context.Context, typeKey string, values map[string]string, tok *sdk.Token, rt http.RoundTripper) (*sdk.TestResponse, error) {
	m, err := h.route(typeKey)
	if err != nil {
		return nil, err
	}
	withheld, ok := m.withheld(typeKey, values)
	if !ok {
		return nil, fmt.Errorf("plugin %q: test: connection type %q: %w", m.name, typeKey, ErrNotThroughHost)
	}
	client := &http.Client{Transport: rt, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	req := &sdk.TestRequest{TypeKey: typeKey, Values: withheld, Token: tokenShape(tok), HTTP: client}
	return h.test(ctx, m, req, m.redactor(typeKey, values, tok))
}

// tokenShape is what a through-host Test learns of a token: that there is
// one, its type and expiry; never the tokens nor the extra fields (an id
// token may be among them).
func tokenShape(tok *sdk.Token) *sdk.Token {
	if tok == nil {
		return nil
	}
	return &sdk.Token{TokenType: tok.TokenType, Expiry: tok.Expiry}
}

// ErrNotThroughHost: TestThroughHost was asked for a type whose plugin
// wants the values (it does not set TestThroughHost).
var ErrNotThroughHost = errors.New("the connection type does not test through the host")

// withheld returns values without the type's secret inputs, and whether
// the type tests through the host (when not, it returns values as they
// are).
func (m *managed) withheld(typeKey string, values map[string]string) (map[string]string, bool) {
	m.mu.Lock()
	through, secret := m.throughHost[typeKey], m.secretInputs[typeKey]
	m.mu.Unlock()
	if !through {
		return values, false
	}
	out := make(map[string]string, len(values))
	for k, v := range values {
		if !secret[k] {
			out[k] = v
		}
	}
	return out, true
}

// refusingTransport is the HTTP of a through-host type tested by Test (with
// values, not through the host): the secrets stay here and nothing goes
// out.
type refusingTransport struct{}

func (refusingTransport) RoundTrip(*http.Request) (*http.Response, error) {
	return nil, errors.New("plugboard tested this connection without a way out (a bug in plugboard: such a type is tested through the host)")
}

func throughHostTypes(d *sdk.Description) map[string]bool {
	out := map[string]bool{}
	for _, ct := range d.ConnectionTypes {
		if ct.TestThroughHost {
			out[ct.Key] = true
		}
	}
	return out
}
