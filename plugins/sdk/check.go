package sdk

import (
	"errors"
	"fmt"
	"net/url"
	"regexp"
	"strings"
)

var pluginKeyRE = regexp.MustCompile(`^[a-z][a-z0-9_-]*$`)

// ValidateDescription checks that a plugin's description is consistent: the
// rules a host relies on when it stores connection types and renders forms.
// It returns nil, or an error joining (errors.Join) one error per problem,
// each naming the type and input it is about. The rules:
//
//   - the plugin key is lower-case ([a-z][a-z0-9_-]*), the version is set,
//     and there is at least one connection type;
//   - type keys are unique and read "<plugin key>.<name>"; every type has a
//     label and a known auth kind;
//   - input keys are unique within a type and are letters, digits, "_", "-",
//     "." (starting with a letter or "_"); every input has a label and a
//     known type and collection;
//   - patterns compile, a patternMessage comes with a pattern, and defaults
//     satisfy the input's pattern, type and options;
//   - PICKLIST inputs have options with unique, non-empty values, and only
//     PICKLIST inputs have options;
//   - TEMPLATE inputs (and only they) have a template whose slots name other,
//     non-TEMPLATE inputs of the type; a template that uses a secret input
//     is secret itself; TEMPLATE inputs have no default;
//   - secret inputs are PASSWORD, TEXT, JSON or TEMPLATE and have no
//     default; PASSWORD inputs are secret;
//   - OAuth 2.0 types (and only they) have an OAuth2 spec with a token URL,
//     an authorize URL for the authorization code flow, known PKCE and auth
//     style values, templates whose slots name inputs of the type, URLs that
//     are absolute http(s) URLs once rendered with the defaults, and client id
//     and (secret) client secret inputs that exist.
func ValidateDescription(d *Description) error {
	if d == nil {
		return errors.New("no description")
	}
	c := &checker{}
	if !pluginKeyRE.MatchString(d.Key) {
		c.add("plugin key %q must be lower-case letters, digits, \"_\" or \"-\", starting with a letter", d.Key)
	}
	if d.Version == "" {
		c.add("plugin version is empty")
	}
	if len(d.ConnectionTypes) == 0 {
		c.add("the plugin declares no connection types")
	}
	seen := map[string]bool{}
	for i := range d.ConnectionTypes {
		ct := &d.ConnectionTypes[i]
		if seen[ct.Key] {
			c.add("type %q is declared more than once", ct.Key)
			continue
		}
		seen[ct.Key] = true
		c.checkType(d.Key, ct)
	}
	return errors.Join(c.errs...)
}

type checker struct {
	errs   []error
	prefix string
}

func (c *checker) add(format string, args ...any) {
	c.errs = append(c.errs, errors.New(c.prefix+fmt.Sprintf(format, args...)))
}

func (c *checker) checkType(pluginKey string, ct *ConnectionType) {
	c.prefix = fmt.Sprintf("type %q: ", ct.Key)
	name, ok := strings.CutPrefix(ct.Key, pluginKey+".")
	if !ok || checkSlotKey(name) != nil {
		c.add("key must read %q followed by a name of letters, digits, \"_\", \"-\" or \".\"", pluginKey+".")
	}
	if ct.Label == "" {
		c.add("label is empty")
	}
	if _, err := authKinds.proto(ct.AuthKind); err != nil || ct.AuthKind == "" {
		c.add("unknown auth kind %q", ct.AuthKind)
	}
	if ct.SchemaVersion < 0 {
		c.add("schema version %d is negative", ct.SchemaVersion)
	}
	seen := map[string]bool{}
	for i := range ct.Inputs {
		in := &ct.Inputs[i]
		if seen[in.Key] {
			c.add("input %q is declared more than once", in.Key)
			continue
		}
		seen[in.Key] = true
	}
	for i := range ct.Inputs {
		c.checkInput(ct, &ct.Inputs[i])
	}
	c.prefix = fmt.Sprintf("type %q: ", ct.Key)
	c.checkOAuth2(ct)
	c.checkHTTP(ct)
	if ct.TestThroughHost && ct.HTTP == nil {
		c.add("TestThroughHost needs an HTTP declaration: the host sends the test's requests to its base URL with the credential it declares")
	}
}

func (c *checker) checkInput(ct *ConnectionType, in *Input) {
	c.prefix = fmt.Sprintf("type %q: input %q: ", ct.Key, in.Key)
	if err := checkSlotKey(in.Key); err != nil {
		c.add("bad key: %v", err)
	}
	if in.Label == "" {
		c.add("label is empty")
	}
	if _, err := inputTypes.proto(in.Type); err != nil || in.Type == "" {
		c.add("unknown input type %q", in.Type)
	}
	if _, err := collections.proto(in.Collection); err != nil {
		c.add("unknown collection %q", in.Collection)
	}
	c.checkPattern(in)

	if in.Type == InputPicklist {
		if len(in.Options) == 0 {
			c.add("a PICKLIST input needs options")
		}
		values := map[string]bool{}
		for _, o := range in.Options {
			if o.Value == "" {
				c.add("an option has an empty value")
			} else if values[o.Value] {
				c.add("option %q is declared more than once", o.Value)
			}
			values[o.Value] = true
		}
	} else if len(in.Options) > 0 {
		c.add("only PICKLIST inputs have options, this is %s", in.Type)
	}

	if in.Type == InputTemplate {
		c.checkTemplateInput(ct, in)
	} else if in.Template != "" {
		c.add("only TEMPLATE inputs have a template, this is %s", in.Type)
	}

	if in.Secret {
		switch in.Type {
		case InputPassword, InputText, InputJSON, InputTemplate:
		default:
			c.add("a secret input must be PASSWORD (or TEXT, JSON, TEMPLATE), not %s", in.Type)
		}
		if in.Default != "" {
			c.add("a secret input cannot have a default: the default would ship in the plugin binary")
		}
	} else if in.Type == InputPassword {
		c.add("a PASSWORD input must be secret, or queries would return its value")
	}

	if in.Default != "" && !in.Secret && in.Type != InputTemplate {
		if problem, pattern := checkValue(in, in.Default); pattern {
			c.add("default does not match the pattern")
		} else if problem != "" {
			c.add("default %s", strings.TrimSuffix(problem, "."))
		}
	}
}

// checkPattern checks an input's pattern and its message.
func (c *checker) checkPattern(in *Input) {
	if in.Pattern != "" {
		if _, err := CompilePattern(in.Pattern); err != nil {
			c.add("pattern does not compile: %v", err)
		}
	}
	if in.PatternMessage != "" && in.Pattern == "" {
		c.add("patternMessage without a pattern")
	}
}

func (c *checker) checkTemplateInput(ct *ConnectionType, in *Input) {
	if in.Template == "" {
		c.add("a TEMPLATE input needs a template")
		return
	}
	if in.Default != "" {
		c.add("a TEMPLATE input is computed from its template and cannot have a default")
	}
	if in.Collection != "" && in.Collection != CollectionNone {
		c.add("a TEMPLATE input holds one value, not a %s", in.Collection)
	}
	slots, err := TemplateSlots(in.Template)
	if err != nil {
		c.add("template: %v", err)
		return
	}
	for _, key := range slots {
		other := ct.Input(key)
		switch {
		case key == in.Key:
			c.add("template slot {{#%s}} names the input itself", key)
		case other == nil:
			c.add("template slot {{#%s}} names no input of the type", key)
		case other.Type == InputTemplate:
			c.add("template slot {{#%s}} names another TEMPLATE input; templates do not nest", key)
		case other.Secret && !in.Secret:
			c.add("template slot {{#%s}} names a secret input, so this input must be secret too", key)
		}
	}
}

// checkOAuth2 checks that OAuth 2.0 types, and only they, have a complete
// spec.
func (c *checker) checkOAuth2(ct *ConnectionType) {
	isOAuth2 := ct.AuthKind == AuthOAuth2AuthorizationCode || ct.AuthKind == AuthOAuth2ClientCredentials
	s := ct.OAuth2
	switch {
	case isOAuth2 && s == nil:
		c.add("an %s type needs an OAuth2 spec", ct.AuthKind)
		return
	case !isOAuth2 && s != nil:
		c.add("only OAuth 2.0 types have an OAuth2 spec, this is %s", ct.AuthKind)
		return
	case s == nil:
		return
	}
	c.prefix = fmt.Sprintf("type %q: OAuth2 spec: ", ct.Key)
	c.checkSpecURLs(ct, s)
	c.checkSpecParams(ct, s)
	c.checkSpecSettings(s)
	c.checkClientInputs(ct, s)
}

// checkSpecURLs checks the endpoints of a spec and its scopes: present
// where the flow needs them, templates that name inputs of the type, and
// absolute URLs once rendered with the defaults.
func (c *checker) checkSpecURLs(ct *ConnectionType, s *OAuth2Spec) {
	if s.TokenURL == "" {
		c.add("token URL is empty")
	}
	if ct.AuthKind == AuthOAuth2AuthorizationCode && s.AuthorizeURL == "" {
		c.add("authorize URL is empty; the authorization code flow needs it")
	}
	for _, f := range []struct{ name, tmpl string }{
		{"authorize URL", s.AuthorizeURL},
		{"token URL", s.TokenURL},
		{"revoke URL", s.RevokeURL},
	} {
		if f.tmpl != "" && c.checkSpecTemplate(ct, f.name, f.tmpl) {
			c.checkSpecURL(ct, f.name, f.tmpl)
		}
	}
	c.checkSpecTemplate(ct, "scopes", s.Scopes)
}

// checkSpecParams checks the extra authorize and token parameters: named,
// with templates that name inputs of the type.
func (c *checker) checkSpecParams(ct *ConnectionType, s *OAuth2Spec) {
	for _, params := range []struct {
		name string
		m    map[string]string
	}{{"extra authorize param", s.ExtraAuthorizeParams}, {"extra token param", s.ExtraTokenParams}} {
		for k, v := range params.m {
			if k == "" {
				c.add("an %s has an empty name", params.name)
			}
			c.checkSpecTemplate(ct, fmt.Sprintf("%s %q", params.name, k), v)
		}
	}
}

// checkSpecSettings checks the spec's enum values and refresh margin.
func (c *checker) checkSpecSettings(s *OAuth2Spec) {
	if _, err := pkceMethods.proto(s.PKCE); err != nil {
		c.add("unknown PKCE method %q", s.PKCE)
	}
	if _, err := authStyles.proto(s.AuthStyle); err != nil {
		c.add("unknown token auth style %q", s.AuthStyle)
	}
	if s.RefreshMargin < 0 {
		c.add("refresh margin %s is negative", s.RefreshMargin)
	}
}

// checkClientInputs checks that the client id and (secret) client secret
// inputs the spec names are inputs of the type.
func (c *checker) checkClientInputs(ct *ConnectionType, s *OAuth2Spec) {
	idKey := s.ClientIDInput
	if idKey == "" {
		idKey = "clientId"
	}
	if ct.Input(idKey) == nil {
		c.add("client id input %q is not an input of the type", idKey)
	}
	secretKey := s.ClientSecretInput
	if secretKey == "" {
		secretKey = "clientSecret"
	}
	if in := ct.Input(secretKey); in == nil {
		c.add("client secret input %q is not an input of the type", secretKey)
	} else if !in.Secret {
		c.add("client secret input %q must be secret", secretKey)
	}
}

// checkSpecTemplate checks that a templated spec field parses and that its
// slots name inputs of the type; it reports whether it does.
func (c *checker) checkSpecTemplate(ct *ConnectionType, field, tmpl string) bool {
	slots, err := TemplateSlots(tmpl)
	if err != nil {
		c.add("%s: %v", field, err)
		return false
	}
	ok := true
	for _, key := range slots {
		if ct.Input(key) == nil {
			c.add("%s: template slot {{#%s}} names no input of the type", field, key)
			ok = false
		}
	}
	return ok
}

// checkSpecURL checks a URL field rendered with the defaults, when every
// slot has one (otherwise the URL is only known once values are entered).
func (c *checker) checkSpecURL(ct *ConnectionType, field, tmpl string) {
	defaults := map[string]string{}
	for _, in := range ct.Inputs {
		if in.Default != "" {
			defaults[in.Key] = in.Default
		}
	}
	rendered, err := RenderTemplate(tmpl, defaults)
	if err != nil {
		return
	}
	u, err := url.Parse(rendered)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		c.add("%s must be an absolute http(s) URL once rendered with the defaults", field)
	}
}
