package sdk

import (
	"errors"
	"reflect"
	"strings"
	"testing"
)

// validDescription returns a description that passes ValidateDescription,
// for the cases below to break one rule at a time.
func validDescription() *Description {
	return &Description{
		Key:     "acme",
		Version: "1.0.0",
		ConnectionTypes: []ConnectionType{
			{
				Key: "acme.apiKey", Label: "API key", AuthKind: AuthAPIKey,
				Inputs: []Input{
					{Key: "apiKey", Label: "API key", Type: InputPassword, Secret: true, Required: true, Pattern: "[a-z0-9]+"},
					{Key: "tenant", Label: "Tenant", Type: InputString, Required: true},
					{Key: "url", Label: "URL", Type: InputTemplate, Template: "https://{{#tenant}}.acme.com"},
					{Key: "region", Label: "Region", Type: InputPicklist, Default: "eu", Options: []Option{{Value: "eu"}, {Value: "us"}}},
				},
			},
			{
				Key: "acme.oauth2", Label: "OAuth", AuthKind: AuthOAuth2AuthorizationCode,
				Inputs: []Input{
					{Key: "base", Label: "Base", Type: InputURL, Default: "https://login.acme.com", Hidden: true},
					{Key: "clientId", Label: "Client id", Type: InputString, Required: true},
					{Key: "clientSecret", Label: "Client secret", Type: InputPassword, Secret: true, Required: true},
				},
				OAuth2: &OAuth2Spec{AuthorizeURL: "{{#base}}/authorize", TokenURL: "{{#base}}/token", PKCE: PKCES256},
			},
		},
	}
}

func TestValidateDescription(t *testing.T) {
	if err := ValidateDescription(validDescription()); err != nil {
		t.Fatalf("the valid description fails: %v", err)
	}
	tests := []struct {
		name   string
		mutate func(d *Description)
		want   string
	}{
		{"bad plugin key", func(d *Description) { d.Key = "Acme" }, "plugin key"},
		{"no version", func(d *Description) { d.Version = "" }, "version is empty"},
		{"no types", func(d *Description) { d.ConnectionTypes = nil }, "no connection types"},
		{"duplicate type", func(d *Description) { d.ConnectionTypes[1].Key = "acme.apiKey" }, `type "acme.apiKey" is declared more than once`},
		{"type key without plugin prefix", func(d *Description) { d.ConnectionTypes[0].Key = "other.apiKey" }, `key must read "acme."`},
		{"unknown auth kind", func(d *Description) { d.ConnectionTypes[0].AuthKind = "TOKEN" }, "unknown auth kind"},
		{"duplicate input", func(d *Description) { d.ConnectionTypes[0].Inputs[1].Key = "apiKey" }, `input "apiKey" is declared more than once`},
		{"bad input key", func(d *Description) { d.ConnectionTypes[0].Inputs[1].Key = "my tenant" }, "bad key"},
		{"unknown input type", func(d *Description) { d.ConnectionTypes[0].Inputs[1].Type = "EMAIL" }, "unknown input type"},
		{"unknown collection", func(d *Description) { d.ConnectionTypes[0].Inputs[1].Collection = "SET" }, "unknown collection"},
		{"pattern does not compile", func(d *Description) { d.ConnectionTypes[0].Inputs[0].Pattern = "[a-" }, "pattern does not compile"},
		{"default misses pattern", func(d *Description) {
			d.ConnectionTypes[0].Inputs[1].Pattern = "[a-z]+"
			d.ConnectionTypes[0].Inputs[1].Default = "ABC"
		}, "default does not match the pattern"},
		{"pattern message without pattern", func(d *Description) {
			d.ConnectionTypes[0].Inputs[1].PatternMessage = "Enter a tenant."
		}, "patternMessage without a pattern"},
		{"default not an option", func(d *Description) { d.ConnectionTypes[0].Inputs[3].Default = "mars" }, "default must be one of"},
		{"picklist without options", func(d *Description) {
			d.ConnectionTypes[0].Inputs[3].Options = nil
			d.ConnectionTypes[0].Inputs[3].Default = ""
		}, "needs options"},
		{"duplicate option", func(d *Description) { d.ConnectionTypes[0].Inputs[3].Options[1].Value = "eu" }, `option "eu" is declared more than once`},
		{"options on a string", func(d *Description) { d.ConnectionTypes[0].Inputs[1].Options = []Option{{Value: "x"}} }, "only PICKLIST inputs have options"},
		{"template slot names no input", func(d *Description) { d.ConnectionTypes[0].Inputs[2].Template = "https://{{#shop}}" }, "{{#shop}} names no input"},
		{"template slot names itself", func(d *Description) { d.ConnectionTypes[0].Inputs[2].Template = "{{#url}}" }, "names the input itself"},
		{"template uses a secret", func(d *Description) { d.ConnectionTypes[0].Inputs[2].Template = "{{#apiKey}}" }, "must be secret too"},
		{"malformed template", func(d *Description) { d.ConnectionTypes[0].Inputs[2].Template = "{{#tenant" }, "not closed"},
		{"template without template", func(d *Description) { d.ConnectionTypes[0].Inputs[2].Template = "" }, "needs a template"},
		{"template on a string", func(d *Description) { d.ConnectionTypes[0].Inputs[1].Template = "{{#apiKey}}" }, "only TEMPLATE inputs have a template"},
		{"password not secret", func(d *Description) { d.ConnectionTypes[0].Inputs[0].Secret = false }, "PASSWORD input must be secret"},
		{"secret boolean", func(d *Description) {
			d.ConnectionTypes[0].Inputs[1].Secret = true
			d.ConnectionTypes[0].Inputs[1].Type = InputBoolean
		}, "secret input must be PASSWORD"},
		{"secret with default", func(d *Description) { d.ConnectionTypes[0].Inputs[0].Default = "abc" }, "cannot have a default"},
		{"number default", func(d *Description) {
			d.ConnectionTypes[0].Inputs[1].Type = InputNumber
			d.ConnectionTypes[0].Inputs[1].Default = "ten"
		}, "default must be a number"},
		{"no label", func(d *Description) { d.ConnectionTypes[0].Inputs[1].Label = "" }, "label is empty"},
		{"OAuth2 type without spec", func(d *Description) { d.ConnectionTypes[1].OAuth2 = nil }, "needs an OAuth2 spec"},
		{"spec on an API key type", func(d *Description) { d.ConnectionTypes[0].OAuth2 = &OAuth2Spec{TokenURL: "https://x"} }, "only OAuth 2.0 types"},
		{"no authorize URL", func(d *Description) { d.ConnectionTypes[1].OAuth2.AuthorizeURL = "" }, "authorize URL is empty"},
		{"no token URL", func(d *Description) { d.ConnectionTypes[1].OAuth2.TokenURL = "" }, "token URL is empty"},
		{"spec slot names no input", func(d *Description) { d.ConnectionTypes[1].OAuth2.TokenURL = "{{#host}}/token" }, "{{#host}} names no input"},
		{"spec URL not absolute", func(d *Description) { d.ConnectionTypes[1].OAuth2.RevokeURL = "/revoke" }, "revoke URL must be an absolute"},
		{"unknown PKCE", func(d *Description) { d.ConnectionTypes[1].OAuth2.PKCE = "MD5" }, "unknown PKCE"},
		{"no client id input", func(d *Description) { d.ConnectionTypes[1].OAuth2.ClientIDInput = "appId" }, `client id input "appId"`},
		{"client secret not secret", func(d *Description) {
			d.ConnectionTypes[1].Inputs[2].Secret = false
			d.ConnectionTypes[1].Inputs[2].Type = InputString
		}, `client secret input "clientSecret" must be secret`},
		{"bad extra param template", func(d *Description) {
			d.ConnectionTypes[1].OAuth2.ExtraTokenParams = map[string]string{"aud": "{{#nope}}"}
		}, `extra token param "aud"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := validDescription()
			tt.mutate(d)
			err := ValidateDescription(d)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want it to mention %q", err, tt.want)
			}
		})
	}
}

// The client credentials flow has no authorization step: a type declares a
// token URL, and no authorize URL, which may name a TEMPLATE input.
func TestValidateDescriptionClientCredentials(t *testing.T) {
	clientCredentials := func() *Description {
		return &Description{Key: "acme", Version: "1.0.0", ConnectionTypes: []ConnectionType{{
			Key: "acme.app", Label: "App-only", AuthKind: AuthOAuth2ClientCredentials,
			Inputs: []Input{
				{Key: "tenant", Label: "Tenant", Type: InputString, Required: true},
				{Key: "host", Label: "Host", Type: InputURL, Default: "https://login.acme.com", Hidden: true},
				{Key: "tokenUrl", Label: "Token URL", Type: InputTemplate, Template: "{{#host}}/{{#tenant}}/token", Hidden: true},
				{Key: "clientId", Label: "Client id", Type: InputString, Required: true},
				{Key: "clientSecret", Label: "Client secret", Type: InputPassword, Secret: true, Required: true},
			},
			OAuth2: &OAuth2Spec{TokenURL: "{{#tokenUrl}}", Scopes: "https://api.acme.com/.default", PKCE: PKCENone, AuthStyle: AuthStyleBody},
		}}}
	}
	if err := ValidateDescription(clientCredentials()); err != nil {
		t.Fatalf("a client credentials type without an authorize URL fails: %v", err)
	}
	d := clientCredentials()
	d.ConnectionTypes[0].OAuth2.TokenURL = ""
	if err := ValidateDescription(d); err == nil || !strings.Contains(err.Error(), "token URL is empty") {
		t.Errorf("a client credentials type without a token URL: err = %v, want it to say the token URL is empty", err)
	}
}

func TestValidateValues(t *testing.T) {
	ct := &ConnectionType{Inputs: []Input{
		{Key: "key", Label: "API key", Type: InputPassword, Secret: true, Required: true, Pattern: "[a-f0-9]{4}"},
		{Key: "port", Label: "Port", Type: InputNumber, Default: "5432"},
		{Key: "on", Label: "On", Type: InputBoolean},
		{Key: "url", Label: "URL", Type: InputURL},
		{Key: "json", Label: "JSON", Type: InputJSON},
		{Key: "pick", Label: "Pick", Type: InputPicklist, Options: []Option{{Value: "a"}, {Value: "b"}}},
		{Key: "tags", Label: "Tags", Type: InputPicklist, Collection: CollectionValueList, Options: []Option{{Value: "a"}}},
		{Key: "headers", Label: "Headers", Type: InputString, Collection: CollectionKeyValueList},
		{Key: "tmpl", Label: "T", Type: InputTemplate, Template: "{{#port}}", Required: true},
		{Key: "shop", Label: "Store name", Type: InputString, Pattern: "[a-z]+", PatternMessage: "Enter the store name in lower case."},
		{Key: "codes", Label: "Codes", Type: InputString, Pattern: "[A-Z]{2}", Collection: CollectionValueList},
	}}
	tests := []struct {
		name   string
		values map[string]string
		want   map[string]string // field -> part of the summary
	}{
		{"empty", nil, map[string]string{"key": "is required"}},
		{"valid", map[string]string{
			"key": "00ff", "port": "1", "on": "true", "url": "https://x.test/a", "json": `{"a":[1]}`, "pick": "b",
			"tags": `["a"]`, "headers": `[{"key":"X-A","value":"1"}]`,
		}, map[string]string{}},
		{"invalid", map[string]string{
			"key": "canary-secret-7f3a", "port": "x", "on": "yes", "url": "/relative", "json": "{", "pick": "c",
			"tags": `["b"]`, "headers": `{"X-A":"1"}`, "shop": "Acme", "codes": `["DE","eu"]`,
		}, map[string]string{
			// A pattern failure shows the declared message, or a
			// generic one naming the field: never the pattern.
			"key": "API key is not in the expected format.", "port": "must be a number", "on": `"true" or "false"`,
			"url": "absolute URL", "json": "valid JSON", "pick": "one of: a, b", "tags": "each item must be one of",
			"headers": "JSON array of", "shop": "Enter the store name in lower case.",
			"codes": "Codes has an invalid item: each item is not in the expected format.",
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := map[string]string{}
			for _, d := range ValidateValues(ct, tt.values) {
				if d.Severity != SeverityError {
					t.Errorf("diagnostic %+v is not an ERROR", d)
				}
				if strings.Contains(d.Summary, "canary") {
					t.Errorf("diagnostic %+v quotes the value", d)
				}
				if strings.ContainsAny(d.Summary, "[]{}") && d.Field != "headers" {
					t.Errorf("diagnostic %+v shows a pattern", d)
				}
				got[d.Field] = d.Summary
			}
			if len(got) != len(tt.want) {
				t.Errorf("diagnostics %v, want fields %v", got, tt.want)
			}
			for field, part := range tt.want {
				if !strings.Contains(got[field], part) {
					t.Errorf("field %q: summary %q, want it to contain %q", field, got[field], part)
				}
			}
		})
	}
}

func TestResolveValues(t *testing.T) {
	ct := &ConnectionType{Inputs: []Input{
		{Key: "shop", Type: InputString},
		{Key: "base", Type: InputURL, Default: "https://example.com"},
		{Key: "url", Type: InputTemplate, Template: "{{#base}}/{{#shop}}"},
	}}
	got, err := ResolveValues(ct, map[string]string{"shop": "acme", "url": "ignored", "extra": "kept"})
	want := map[string]string{"shop": "acme", "base": "https://example.com", "url": "https://example.com/acme", "extra": "kept"}
	if err != nil || !reflect.DeepEqual(got, want) {
		t.Fatalf("ResolveValues = %v, %v; want %v", got, err, want)
	}
	got, err = ResolveValues(ct, nil)
	if err != nil || got["url"] != "https://example.com/" || got["shop"] != "" {
		t.Fatalf("ResolveValues(nil) = %v, %v", got, err)
	}
	ct.Inputs[2].Template = "{{#"
	if _, err := ResolveValues(ct, nil); !errors.Is(err, ErrInvalidTemplate) {
		t.Fatalf("malformed template: err = %v", err)
	}
}
