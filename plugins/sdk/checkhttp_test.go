package sdk

import (
	"strings"
	"testing"
)

// TestValidateDescriptionHTTP: an HTTP spec must name inputs of its type
// for its base URL and its injection style, and list host names.
func TestValidateDescriptionHTTP(t *testing.T) {
	for _, tc := range []struct {
		name  string
		spec  HTTPSpec
		oauth bool
		want  string // "" for valid
	}{
		{"bearer from an input", HTTPSpec{BaseURL: "{{#url}}/api", Inject: InjectBearer, Input: "apiKey"}, false, ""},
		{"bearer of an OAuth 2.0 type", HTTPSpec{BaseURL: "{{#base}}/api", Inject: InjectBearer}, true, ""},
		{"header with a host pattern", HTTPSpec{BaseURL: "https://{{#tenant}}.acme.com", AllowedHosts: []string{"*.acme.com"},
			Inject: InjectHeader, Header: "X-Key", Input: "apiKey"}, false, ""},
		{"basic", HTTPSpec{BaseURL: "https://acme.com", Inject: InjectBasic, UsernameInput: "tenant", PasswordInput: "apiKey"}, false, ""},
		{"query", HTTPSpec{BaseURL: "https://acme.com", Inject: InjectQuery, QueryParam: "key", Input: "apiKey"}, false, ""},
		{"no base URL", HTTPSpec{Inject: InjectBearer, Input: "apiKey"}, false, "base URL is empty"},
		{"a slot naming no input", HTTPSpec{BaseURL: "{{#nope}}", Inject: InjectBearer, Input: "apiKey"}, false, "names no input"},
		{"bearer of an API key type without input", HTTPSpec{BaseURL: "https://acme.com", Inject: InjectBearer}, false, "bearer input"},
		{"header without a name", HTTPSpec{BaseURL: "https://acme.com", Inject: InjectHeader, Input: "apiKey"}, false, "names no header"},
		{"query without a parameter", HTTPSpec{BaseURL: "https://acme.com", Inject: InjectQuery, Input: "apiKey"}, false, "names no parameter"},
		{"unknown style", HTTPSpec{BaseURL: "https://acme.com", Inject: "COOKIE"}, false, "unknown HTTP inject style"},
		{"a host with a path", HTTPSpec{BaseURL: "https://acme.com", AllowedHosts: []string{"acme.com/x"}, Inject: InjectBearer, Input: "apiKey"}, false, "not a host name"},
		{"an override naming no input", HTTPSpec{BaseURL: "https://acme.com", BaseURLOverrideInput: "nope", Inject: InjectBearer, Input: "apiKey"}, false, "override input"},
	} {
		d := validDescription()
		i := 0
		if tc.oauth {
			i = 1
		}
		spec := tc.spec
		d.ConnectionTypes[i].HTTP = &spec
		err := ValidateDescription(d)
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("%s: %v", tc.name, err)
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("%s: got %v, want an error about %q", tc.name, err, tc.want)
		}
	}
}
