package sdk_test

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/plugboard/plugboard/plugins/sdk"
	"github.com/plugboard/plugboard/plugins/sdk/sdktest"
)

// declared is a plugin on the declarative layer whose Test answers what
// its "mode" input asks for, and records the values it was called with.
type declared struct {
	plugin    *sdk.Plugin
	validated map[string]string // the values Validate got
	tested    *sdk.TestRequest  // the request Test got
}

func newDeclared() *declared {
	d := &declared{}
	d.plugin = &sdk.Plugin{Key: "decl", Version: "1.0.0", Types: []sdk.Type{{
		ConnectionType: sdk.ConnectionType{
			Key: "decl.apiKey", Label: "Decl API key", AuthKind: sdk.AuthAPIKey,
			Inputs: []sdk.Input{
				{Key: "apiKey", Label: "API key", Type: sdk.InputPassword, Secret: true, Required: true,
					Pattern: `k_[a-z0-9-]+`, PatternMessage: "Enter the key, k_ and letters."},
				{Key: "region", Label: "Region", Type: sdk.InputPicklist, Default: "eu",
					Options: []sdk.Option{{Value: "eu", Label: "Europe"}, {Value: "us", Label: "United States"}}},
				{Key: "baseUrl", Label: "API URL", Type: sdk.InputTemplate, Template: "https://{{#region}}.decl.example"},
				{Key: "mode", Label: "Mode", Type: sdk.InputString},
			},
		},
		Validate: d.validate,
		Test:     d.test,
	}}}
	return d
}

// validate words a "Bearer " prefix for what it is, warns about the US
// region and flags the mode "bad".
func (d *declared) validate(values map[string]string) []sdk.Diagnostic {
	d.validated = values
	var ds []sdk.Diagnostic
	if strings.HasPrefix(values["apiKey"], "Bearer ") {
		ds = append(ds, sdk.ErrorDiag("apiKey", `Paste the key without "Bearer ".`))
	}
	if values["region"] == "us" {
		ds = append(ds, sdk.WarningDiag("region", "The US region is slower from here."))
	}
	if values["mode"] == "bad" {
		ds = append(ds, sdk.ErrorDiag("mode", "Mode bad is not allowed."))
	}
	return ds
}

func (d *declared) test(_ context.Context, req *sdk.TestRequest) (*sdk.TestResponse, error) {
	d.tested = req
	key := req.Values["apiKey"]
	switch req.Values["mode"] {
	case "error":
		return nil, fmt.Errorf("calling %s with %s: %w", req.Values["baseUrl"], url.QueryEscape(key), context.DeadlineExceeded)
	case "echo":
		return &sdk.TestResponse{OK: true, Message: "Connected as " + key + " with " + req.Token.AccessToken + "."}, nil
	}
	return &sdk.TestResponse{OK: true, Message: "Connected to " + req.Values["baseUrl"] + "."}, nil
}

const declKey = "k_" + sdktest.Canary

func TestDeclaredValidate(t *testing.T) {
	tests := []struct {
		name   string
		values map[string]string
		want   []sdk.Diagnostic // Field, Severity and Summary
	}{
		{"valid", map[string]string{"apiKey": declKey}, nil},
		{"declared check", map[string]string{"region": "mars"}, []sdk.Diagnostic{
			sdk.ErrorDiag("apiKey", "API key is required."),
			sdk.ErrorDiag("region", "Region must be one of: eu, us."),
		}},
		{"declared pattern message", map[string]string{"apiKey": sdktest.Canary}, []sdk.Diagnostic{
			sdk.ErrorDiag("apiKey", "Enter the key, k_ and letters."),
		}},
		{"Validate message wins for its field", map[string]string{"apiKey": "Bearer " + declKey, "region": "mars"}, []sdk.Diagnostic{
			sdk.ErrorDiag("apiKey", `Paste the key without "Bearer ".`),
			sdk.ErrorDiag("region", "Region must be one of: eu, us."),
		}},
		{"Validate adds a field", map[string]string{"apiKey": declKey, "mode": "bad"}, []sdk.Diagnostic{
			sdk.ErrorDiag("mode", "Mode bad is not allowed."),
		}},
		{"a warning is added, not a replacement", map[string]string{"apiKey": "Bearer " + declKey, "region": "us"}, []sdk.Diagnostic{
			sdk.ErrorDiag("apiKey", `Paste the key without "Bearer ".`),
			sdk.WarningDiag("region", "The US region is slower from here."),
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, err := newDeclared().plugin.Validate(context.Background(), &sdk.ValidateRequest{TypeKey: "decl.apiKey", Values: tt.values})
			if err != nil {
				t.Fatal(err)
			}
			if fmt.Sprint(resp.Diagnostics) != fmt.Sprint(tt.want) {
				t.Errorf("diagnostics\n got %v\nwant %v", resp.Diagnostics, tt.want)
			}
		})
	}
}

func TestDeclaredValidateGetsResolvedValues(t *testing.T) {
	d := newDeclared()
	if _, err := d.plugin.Validate(context.Background(), &sdk.ValidateRequest{TypeKey: "decl.apiKey", Values: map[string]string{"apiKey": declKey}}); err != nil {
		t.Fatal(err)
	}
	if d.validated["region"] != "eu" || d.validated["baseUrl"] != "https://eu.decl.example" {
		t.Errorf("Validate got %v, want the default region and the rendered template", d.validated)
	}
}

func TestDeclaredTest(t *testing.T) {
	token := &sdk.Token{AccessToken: "at-" + sdktest.Canary, RefreshToken: "rt-" + sdktest.Canary}
	tests := []struct {
		name       string
		values     map[string]string
		wantOK     bool
		want       string
		wantCalled bool
	}{
		{"declared check fails first", map[string]string{"mode": "echo"}, false, "The values are not valid: API key is required.", false},
		{"Validate fails before Test", map[string]string{"apiKey": declKey, "mode": "bad"}, false, "The values are not valid: Mode bad is not allowed.", false},
		{"resolved values", map[string]string{"apiKey": declKey, "region": "us"}, true, "Connected to https://us.decl.example.", true},
		{"secrets redacted in the message", map[string]string{"apiKey": declKey, "mode": "echo"}, true, "Connected as [redacted] with [redacted].", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := newDeclared()
			resp, err := d.plugin.Test(context.Background(), &sdk.TestRequest{TypeKey: "decl.apiKey", Values: tt.values, Token: token})
			sdktest.CheckAnswer(t, resp, err, tt.wantOK, tt.want)
			if called := d.tested != nil; called != tt.wantCalled {
				t.Errorf("the type's Test was called: %v, want %v", called, tt.wantCalled)
			}
			if d.tested != nil && d.tested.Token != token {
				t.Errorf("the type's Test did not get the token")
			}
		})
	}
}

func TestDeclaredTestErrorIsRedacted(t *testing.T) {
	_, err := newDeclared().plugin.Test(context.Background(), &sdk.TestRequest{TypeKey: "decl.apiKey",
		Values: map[string]string{"apiKey": declKey, "mode": "error"}})
	if err == nil {
		t.Fatal("Test returned no error")
	}
	if strings.Contains(err.Error(), sdktest.Canary) {
		t.Errorf("the error quotes the secret: %v", err)
	}
	if !strings.Contains(err.Error(), "calling https://eu.decl.example with [redacted]") {
		t.Errorf("error = %v, want its text with the secret redacted", err)
	}
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("the redacted error lost its chain: %v", err)
	}
	_, err = sdktest.InProcess(t, newDeclared().plugin).Test(context.Background(), &sdk.TestRequest{TypeKey: "decl.apiKey",
		Values: map[string]string{"apiKey": declKey, "mode": "error"}})
	if status.Code(err) != codes.DeadlineExceeded || strings.Contains(fmt.Sprint(err), sdktest.Canary) {
		t.Errorf("over gRPC: error = %v, want DeadlineExceeded without the secret", err)
	}
}

func TestDeclaredUnknownType(t *testing.T) {
	p := newDeclared().plugin
	_, verr := p.Validate(context.Background(), &sdk.ValidateRequest{TypeKey: "decl.other"})
	_, terr := p.Test(context.Background(), &sdk.TestRequest{TypeKey: "decl.other"})
	for _, err := range []error{verr, terr} {
		if !errors.Is(err, sdk.ErrUnknownType) || !strings.Contains(fmt.Sprint(err), `"decl.other"`) {
			t.Errorf("error = %v, want sdk.ErrUnknownType naming the key", err)
		}
	}
	_, err := sdktest.InProcess(t, p).Test(context.Background(), &sdk.TestRequest{TypeKey: "decl.other"})
	if status.Code(err) != codes.NotFound {
		t.Errorf("over gRPC: error = %v, want NotFound", err)
	}
}

func TestDeclaredPluginConforms(t *testing.T) {
	d, err := newDeclared().plugin.Describe(context.Background())
	if err != nil || d.Key != "decl" || d.Version != "1.0.0" || len(d.ConnectionTypes) != 1 || d.Type("decl.apiKey") == nil {
		t.Fatalf("Describe = %+v, %v", d, err)
	}
	sdktest.CheckProvider(t, newDeclared().plugin)
}

func TestDeclaredTypeWithoutFunctions(t *testing.T) {
	p := &sdk.Plugin{Key: "bare", Version: "1", Types: []sdk.Type{{ConnectionType: sdk.ConnectionType{
		Key: "bare.apiKey", Label: "Bare", AuthKind: sdk.AuthAPIKey,
		Inputs: []sdk.Input{{Key: "apiKey", Label: "API key", Type: sdk.InputPassword, Secret: true, Required: true}},
	}}}}
	resp, err := p.Test(context.Background(), &sdk.TestRequest{TypeKey: "bare.apiKey", Values: map[string]string{"apiKey": sdktest.Canary}})
	sdktest.CheckAnswer(t, resp, err, true, "no live test")
	resp, err = p.Test(context.Background(), &sdk.TestRequest{TypeKey: "bare.apiKey"})
	sdktest.CheckAnswer(t, resp, err, false, "API key is required")
}

// TestDeclaredRedactsEscapedSecrets covers a secret that a driver or a URL
// quotes escaped, and a secret inside another.
func TestDeclaredRedactsEscapedSecrets(t *testing.T) {
	password := "p@ss/w rd+" + sdktest.Canary
	p := &sdk.Plugin{Key: "esc", Version: "1", Types: []sdk.Type{{
		ConnectionType: sdk.ConnectionType{Key: "esc.basic", Label: "Escaped", AuthKind: sdk.AuthBasic, Inputs: []sdk.Input{
			{Key: "user", Label: "User", Type: sdk.InputString, Required: true},
			{Key: "password", Label: "Password", Type: sdk.InputPassword, Secret: true},
			{Key: "dsn", Label: "DSN", Type: sdk.InputTemplate, Secret: true, Template: "{{#user}}:{{#password}}@db"},
		}},
		Test: func(_ context.Context, req *sdk.TestRequest) (*sdk.TestResponse, error) {
			v := req.Values
			return &sdk.TestResponse{OK: false, Message: strings.Join([]string{
				url.QueryEscape(v["password"]), url.PathEscape(v["password"]), v["dsn"], v["password"]}, " | ")}, nil
		},
	}}}
	resp, err := p.Test(context.Background(), &sdk.TestRequest{TypeKey: "esc.basic", Values: map[string]string{"user": "ada", "password": password}})
	sdktest.CheckAnswer(t, resp, err, false, "[redacted] | [redacted] | [redacted] | [redacted]")
}
