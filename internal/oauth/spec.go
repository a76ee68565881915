package oauth

import (
	"net/url"
	"strings"
	"time"

	"golang.org/x/oauth2"

	"github.com/plugboard/plugboard/ent"
	"github.com/plugboard/plugboard/ent/connectiontype"
	"github.com/plugboard/plugboard/ent/schema/schematype"
	"github.com/plugboard/plugboard/plugins/sdk"
)

// Flow is a type's OAuth 2.0 spec rendered against one credential's
// values: everything a request to the provider needs.
type Flow struct {
	kind         connectiontype.AuthKind
	authorizeURL string
	tokenURL     string
	revokeURL    string
	clientID     string
	clientIDKey  string
	clientSecret string
	scopes       []string
	scopeSep     string
	pkce         string // S256, PLAIN or NONE
	authStyle    oauth2.AuthStyle
	extraAuth    map[string]string
	extraToken   map[string]string
	margin       time.Duration
	// secrets are the values a message must never show: the secret inputs.
	secrets []string
}

// PKCE methods and token auth styles as stored in schematype.OAuth2Spec.
const (
	pkceS256  = "S256"
	pkcePlain = "PLAIN"
	pkceNone  = "NONE"
)

// MarginOf returns the refresh margin of ct.
func (s *Service) MarginOf(ct *ent.ConnectionType) time.Duration {
	if ct != nil && ct.Oauth2 != nil && ct.Oauth2.RefreshMarginSeconds > 0 {
		return time.Duration(ct.Oauth2.RefreshMarginSeconds) * time.Second
	}
	return s.margin
}

// isOAuth reports whether ct runs one of the OAuth 2.0 flows.
func isOAuth(ct *ent.ConnectionType) bool {
	return ct != nil && ct.Oauth2 != nil &&
		(ct.AuthKind == connectiontype.AuthKindOAUTH2_AUTHORIZATION_CODE ||
			ct.AuthKind == connectiontype.AuthKindOAUTH2_CLIENT_CREDENTIALS)
}

// FlowOf renders ct's OAuth 2.0 spec with values (resolved: defaults and
// templates applied).
func (s *Service) FlowOf(ct *ent.ConnectionType, values map[string]string) (*Flow, error) {
	if !isOAuth(ct) {
		return nil, ErrNotOAuth
	}
	f, err := s.flowSettings(ct)
	if err != nil {
		return nil, err
	}
	for _, in := range ct.Inputs {
		if in.Secret && len(values[in.Key]) >= 4 {
			f.secrets = append(f.secrets, values[in.Key])
		}
	}
	if err := f.renderURLs(ct, values); err != nil {
		return nil, err
	}
	f.setClient(ct.Oauth2, values)
	if err := f.check(ct); err != nil {
		return nil, err
	}
	return f, nil
}

// flowSettings reads the fixed settings of ct's spec: scope separator,
// PKCE method, token auth style, refresh margin.
func (s *Service) flowSettings(ct *ent.ConnectionType) (*Flow, error) {
	sp := ct.Oauth2
	f := &Flow{
		kind:     ct.AuthKind,
		scopeSep: sp.ScopeSeparator,
		pkce:     strings.ToUpper(sp.PKCEMethod),
		margin:   s.MarginOf(ct),
	}
	if f.scopeSep == "" {
		f.scopeSep = " "
	}
	if f.pkce == "" {
		f.pkce = pkceS256
	}
	switch f.pkce {
	case pkceS256, pkcePlain, pkceNone:
	default:
		return nil, misconfigured("connection type %s declares an unknown PKCE method", ct.Key)
	}
	switch strings.ToUpper(sp.AuthStyle) {
	case "", string(sdk.AuthStyleHeader):
		f.authStyle = oauth2.AuthStyleInHeader
	case string(sdk.AuthStyleBody):
		f.authStyle = oauth2.AuthStyleInParams
	default:
		return nil, misconfigured("connection type %s declares an unknown token auth style", ct.Key)
	}
	return f, nil
}

// renderURLs renders the URLs, scopes and extra parameters of ct's spec
// against values.
func (f *Flow) renderURLs(ct *ent.ConnectionType, values map[string]string) error {
	sp := ct.Oauth2
	var err error
	render := func(what, tmpl string) string {
		if err != nil || tmpl == "" {
			return ""
		}
		var out string
		if out, err = sdk.RenderTemplate(tmpl, values); err != nil {
			err = misconfigured("the %s of connection type %s cannot be rendered: %v", what, ct.Key, err)
		}
		return strings.TrimSpace(out)
	}
	f.tokenURL = render("token URL", sp.TokenURL)
	f.revokeURL = render("revoke URL", sp.RevokeURL)
	if ct.AuthKind == connectiontype.AuthKindOAUTH2_AUTHORIZATION_CODE {
		f.authorizeURL = render("authorize URL", sp.AuthorizeURL)
	}
	scopes := render("scopes", sp.Scopes)
	f.extraAuth = renderMap(render, "authorize parameter", sp.ExtraAuthorizeParams)
	f.extraToken = renderMap(render, "token parameter", sp.ExtraTokenParams)
	if err != nil {
		return err
	}
	f.scopes = splitScopes(scopes, f.scopeSep)
	return nil
}

// setClient takes the client id and secret from the inputs sp names.
func (f *Flow) setClient(sp *schematype.OAuth2Spec, values map[string]string) {
	f.clientIDKey = sp.ClientIDInput
	secretKey := sp.ClientSecretInput
	if f.clientIDKey == "" {
		f.clientIDKey = "clientId"
	}
	if secretKey == "" {
		secretKey = "clientSecret"
	}
	f.clientID, f.clientSecret = values[f.clientIDKey], values[secretKey]
	if len(f.clientSecret) >= 4 {
		f.secrets = append(f.secrets, f.clientSecret)
	}
}

// check refuses a flow that cannot make its requests.
func (f *Flow) check(ct *ent.ConnectionType) error {
	if f.clientID == "" {
		return misconfigured("the credential has no client id (input %q): save it first", f.clientIDKey)
	}
	if !isHTTPURL(f.tokenURL) {
		return misconfigured("connection type %s has no usable token URL", ct.Key)
	}
	if f.kind == connectiontype.AuthKindOAUTH2_AUTHORIZATION_CODE && !isHTTPURL(f.authorizeURL) {
		return misconfigured("connection type %s has no usable authorize URL", ct.Key)
	}
	if f.revokeURL != "" && !isHTTPURL(f.revokeURL) {
		return misconfigured("connection type %s has an unusable revoke URL", ct.Key)
	}
	return nil
}

func renderMap(render func(what, tmpl string) string, what string, m map[string]string) map[string]string {
	if len(m) == 0 {
		return nil
	}
	out := make(map[string]string, len(m))
	for k, v := range m {
		out[k] = render(what+" "+k, v)
	}
	return out
}

// splitScopes splits a scope list on sep and on white space.
func splitScopes(s, sep string) []string {
	fields := strings.FieldsFunc(s, func(r rune) bool {
		return r == ' ' || r == '\t' || r == '\n' || r == '\r' || strings.ContainsRune(sep, r)
	})
	if len(fields) == 0 {
		return nil
	}
	return fields
}

func isHTTPURL(s string) bool {
	u, err := url.Parse(s)
	return err == nil && (u.Scheme == "https" || u.Scheme == "http") && u.Host != ""
}

// config returns the x/oauth2 config of an authorization code flow. Scopes
// are left out: they are sent with the type's own separator (scopeParam).
func (f *Flow) config(redirectURL string) *oauth2.Config {
	return &oauth2.Config{
		ClientID:     f.clientID,
		ClientSecret: f.clientSecret,
		Endpoint: oauth2.Endpoint{
			AuthURL:   f.authorizeURL,
			TokenURL:  f.tokenURL,
			AuthStyle: f.authStyle,
		},
		RedirectURL: redirectURL,
	}
}

// scopeParam is the scope parameter: the scopes joined by the type's
// separator (Slack uses commas, the RFC spaces).
func (f *Flow) scopeParam() string { return strings.Join(f.scopes, f.scopeSep) }

// grantedScopes returns the scopes of a token response: its scope field if
// present, else the requested scopes.
func (f *Flow) grantedScopes(scope any) []string {
	if s, ok := scope.(string); ok && strings.TrimSpace(s) != "" {
		return splitScopes(s, f.scopeSep)
	}
	return append([]string(nil), f.scopes...)
}

// Margin is how long before its expiry a token of the flow is refreshed.
func (f *Flow) Margin() time.Duration { return f.margin }
