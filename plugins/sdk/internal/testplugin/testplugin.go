// Package testplugin is the provider behind the SDK's own tests: its
// description uses every attribute of the protocol, and its values drive
// misbehaviour (panics, errors, hangs) that the tests check a host survives.
package testplugin

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"sort"
	"time"

	"github.com/plugboard/plugboard/plugins/sdk"
)

// The values of the "mode" input that make Validate and Test misbehave.
const (
	ModePanic = "panic" // panic with the value of the "secret" input
	ModeError = "error" // return an error
	ModeHang  = "hang"  // block until the context is done
)

// Provider implements sdk.Provider.
type Provider struct{}

// New returns the provider.
func New() *Provider { return &Provider{} }

// Description is what Describe returns.
func Description() *sdk.Description {
	return &sdk.Description{
		Key:     "testplugin",
		Version: "1.2.3",
		ConnectionTypes: []sdk.ConnectionType{
			{
				Key:           "testplugin.everything",
				Label:         "Everything",
				Description:   "A type that uses every input attribute.",
				IconURL:       "https://example.com/icon.svg",
				IconSVG:       []byte(`<svg xmlns="http://www.w3.org/2000/svg"/>`),
				AuthKind:      sdk.AuthCustom,
				SchemaVersion: 3,
				Inputs: []sdk.Input{
					{Key: "mode", Label: "Mode", Type: sdk.InputString, Description: "How the plugin misbehaves."},
					{Key: "secret", Label: "Secret", Type: sdk.InputPassword, Secret: true, Example: "s3cr3t"},
					{Key: "host", Label: "Host", Type: sdk.InputString, Required: true, Placeholder: "db.example.com", OnPremControlled: true, Pattern: `[a-z0-9.-]+`,
						PatternMessage: "Enter a host name in lower case, such as db.example.com."},
					{Key: "port", Label: "Port", Type: sdk.InputNumber, Default: "5432", OnPremControlled: true, Hidden: true},
					{Key: "notes", Label: "Notes", Type: sdk.InputText, Collection: sdk.CollectionNone},
					{Key: "enabled", Label: "Enabled", Type: sdk.InputBoolean, Default: "true"},
					{Key: "region", Label: "Region", Type: sdk.InputPicklist, Default: "eu", Options: []sdk.Option{{Value: "eu", Label: "Europe"}, {Value: "us", Label: "United States"}}},
					{Key: "endpoint", Label: "Endpoint", Type: sdk.InputURL, Default: "https://api.example.com"},
					{Key: "settings", Label: "Settings", Type: sdk.InputJSON, Default: `{"a":1}`},
					{Key: "tags", Label: "Tags", Type: sdk.InputString, Collection: sdk.CollectionValueList},
					{Key: "headers", Label: "Headers", Type: sdk.InputString, Collection: sdk.CollectionKeyValueList},
					{Key: "url", Label: "URL", Type: sdk.InputTemplate, Template: "https://{{#host}}:{{#port}}/{{#region}}"},
				},
			},
			{
				Key:      "testplugin.oauth2",
				Label:    "OAuth 2.0",
				AuthKind: sdk.AuthOAuth2AuthorizationCode,
				Inputs: []sdk.Input{
					{Key: "baseUrl", Label: "Base URL", Type: sdk.InputURL, Default: "https://auth.example.com", Hidden: true},
					{Key: "scopes", Label: "Scopes", Type: sdk.InputString, Default: "read,write", Hidden: true},
					{Key: "appId", Label: "App ID", Type: sdk.InputString, Required: true, Hidden: true},
					{Key: "appSecret", Label: "App secret", Type: sdk.InputPassword, Required: true, Secret: true, Hidden: true},
				},
				OAuth2: &sdk.OAuth2Spec{
					AuthorizeURL:         "{{#baseUrl}}/authorize",
					TokenURL:             "{{#baseUrl}}/token",
					RevokeURL:            "{{#baseUrl}}/revoke",
					Scopes:               "{{#scopes}}",
					ScopeSeparator:       ",",
					PKCE:                 sdk.PKCES256,
					AuthStyle:            sdk.AuthStyleBody,
					ClientIDInput:        "appId",
					ClientSecretInput:    "appSecret",
					ExtraAuthorizeParams: map[string]string{"access_type": "offline", "prompt": "consent"},
					ExtraTokenParams:     map[string]string{"audience": "{{#baseUrl}}/api"},
					RefreshMargin:        90 * time.Second,
				},
				HTTP: httpSpec(),
			},
			throughHostType,
		},
	}
}

var throughHostType = sdk.ConnectionType{
	Key:             ThroughHostType,
	Label:           "Through the host",
	AuthKind:        sdk.AuthAPIKey,
	TestThroughHost: true,
	HTTP:            &sdk.HTTPSpec{BaseURL: "{{#baseUrl}}", Inject: sdk.InjectBearer, Input: "apiKey"},
	Inputs: []sdk.Input{
		{Key: "baseUrl", Label: "Base URL", Type: sdk.InputURL, Default: "https://api.example.com", Hidden: true},
		{Key: "path", Label: "Path", Type: sdk.InputString, Default: "/whoami", Hidden: true},
		{Key: "apiKey", Label: "API key", Type: sdk.InputPassword, Required: true, Secret: true},
	},
}

// ThroughHostType is the type that tests through the host: its Test sends
// GET <baseUrl><path> with the client the host hands it and reports what
// came back (HostReport).
const ThroughHostType = "testplugin.throughHost"

// Describe implements sdk.Provider.
func (*Provider) Describe(context.Context) (*sdk.Description, error) {
	return Description(), nil
}

// Validate implements sdk.Provider.
func (*Provider) Validate(ctx context.Context, req *sdk.ValidateRequest) (*sdk.ValidateResponse, error) {
	ct := Description().Type(req.TypeKey)
	if ct == nil {
		return nil, sdk.UnknownTypeError(req.TypeKey)
	}
	if err := misbehave(ctx, req.Values); err != nil {
		return nil, err
	}
	return &sdk.ValidateResponse{Diagnostics: sdk.ValidateValues(ct, req.Values)}, nil
}

// TestReport is the JSON message of a successful Test: what arrived, without
// any value (values may be secrets).
type TestReport struct {
	TypeKey     string
	ValueKeys   []string
	TokenType   string
	HasAccess   bool
	HasRefresh  bool
	ExpiryUnix  int64
	ExtraKeys   []string
	HasDeadline bool
}

// Test implements sdk.Provider. It fails unless the token's access token is
// "good", and reports in the message what arrived.
func (*Provider) Test(ctx context.Context, req *sdk.TestRequest) (*sdk.TestResponse, error) {
	if Description().Type(req.TypeKey) == nil {
		return nil, sdk.UnknownTypeError(req.TypeKey)
	}
	if err := misbehave(ctx, req.Values); err != nil {
		return nil, err
	}
	if req.TypeKey == ThroughHostType {
		return testThroughHost(ctx, req)
	}
	if req.Token == nil || req.Token.AccessToken != "good" {
		return &sdk.TestResponse{OK: false, Message: "not connected"}, nil
	}
	_, hasDeadline := ctx.Deadline()
	r := TestReport{
		TypeKey:     req.TypeKey,
		ValueKeys:   sortedKeys(req.Values),
		TokenType:   req.Token.TokenType,
		HasAccess:   req.Token.AccessToken != "",
		HasRefresh:  req.Token.RefreshToken != "",
		ExtraKeys:   sortedKeys(req.Token.Extra),
		HasDeadline: hasDeadline,
	}
	if !req.Token.Expiry.IsZero() {
		r.ExpiryUnix = req.Token.Expiry.Unix()
	}
	b, err := json.Marshal(r)
	if err != nil {
		return nil, err
	}
	return &sdk.TestResponse{OK: true, Message: string(b)}, nil
}

func misbehave(ctx context.Context, values map[string]string) error {
	switch values["mode"] {
	case ModePanic:
		panic(values["secret"]) // the SDK must not let this value out
	case ModeError:
		return errors.New("the test plugin was asked to fail")
	case ModeHang:
		<-ctx.Done()
		return ctx.Err()
	}
	return nil
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// HostReport is the JSON message of a Test of ThroughHostType that got an
// answer through the host.
type HostReport struct {
	ValueKeys []string
	HasToken  bool
	Status    int
	Body      string
	BodyLen   int
	Truncated bool
	Error     string
}

// testThroughHost sends one request through req.HTTP and reports it.
func testThroughHost(ctx context.Context, req *sdk.TestRequest) (*sdk.TestResponse, error) {
	if !req.ThroughHost() {
		return &sdk.TestResponse{OK: false, Message: "not through the host"}, nil
	}
	if req.Values["baseUrl"] == "" {
		return &sdk.TestResponse{OK: false, Message: "the base URL is missing"}, nil
	}
	r := HostReport{ValueKeys: sortedKeys(req.Values), HasToken: req.Token != nil}
	httpReq, err := http.NewRequestWithContext(ctx, http.MethodGet, req.Values["baseUrl"]+req.Values["path"], nil)
	if err != nil {
		return nil, err
	}
	resp, err := req.HTTP.Do(httpReq)
	if err != nil {
		r.Error = err.Error()
	} else {
		body, err := io.ReadAll(resp.Body)
		_ = resp.Body.Close()
		r.Status, r.BodyLen = resp.StatusCode, len(body)
		r.Truncated = errors.Is(err, sdk.ErrHostHTTPBodyTruncated)
		if len(body) <= 200 {
			r.Body = string(body)
		}
	}
	b, err := json.Marshal(r)
	if err != nil {
		return nil, err
	}
	return &sdk.TestResponse{OK: r.Status == http.StatusOK, Message: string(b)}, nil
}

// httpSpec sets every field of sdk.HTTPSpec, for the round-trip test.
func httpSpec() *sdk.HTTPSpec {
	return &sdk.HTTPSpec{
		BaseURL:              "{{#baseUrl}}/api",
		AllowedHosts:         []string{"api.example.com", "*.example.com"},
		BaseURLOverrideInput: "baseUrl",
		Inject:               sdk.InjectHeader,
		Input:                "appSecret",
		Header:               "X-Api-Key",
		Prefix:               "Key ",
		UsernameInput:        "appId",
		PasswordInput:        "appSecret",
		QueryParam:           "api_key",
		RateLimitResetHeader: "X-RateLimit-Reset",
	}
}
