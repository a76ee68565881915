package msgraph

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/plugboard/plugboard/plugins/sdk"
	"github.com/plugboard/plugboard/plugins/sdk/sdktest"
)

const (
	tenantID = "6f1c2d3e-4a5b-4c6d-8e9f-0a1b2c3d4e5f"
	clientID = "0b9c8d7e-6f5a-4b3c-9d2e-1f0a9b8c7d6e"
	// secret has the shape of a client secret's Value; token of an access
	// token. Both hold the canary, which must appear in no message.
	secret = "Xy78Q~" + sdktest.Canary
	token  = "eyJ0eXAiOiJKV1QiLCJhbGciOiJSUzI1NiJ9." + sdktest.Canary
)

// valid returns complete values, with kv (key, value, ...) set over them.
func valid(kv ...string) map[string]string {
	v := map[string]string{"tenant": tenantID, "clientId": clientID, "clientSecret": secret}
	for i := 0; i < len(kv); i += 2 {
		v[kv[i]] = kv[i+1]
	}
	return v
}

func TestConformance(t *testing.T) {
	sdktest.Check(t, sdktest.Build(t, "github.com/plugboard/plugboard/plugins/msgraph"))
}

func TestDescriptionFollowsMicrosoft(t *testing.T) {
	d, err := New().Describe(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if err := sdk.ValidateDescription(d); err != nil {
		t.Fatalf("ValidateDescription: %v", err)
	}
	ct := d.Type(TypeKey)
	s := ct.OAuth2
	if ct.AuthKind != sdk.AuthOAuth2ClientCredentials || s.AuthorizeURL != "" || s.PKCE != sdk.PKCENone ||
		s.AuthStyle != sdk.AuthStyleBody || s.ScopeSeparator != " " || s.ClientIDInput != "clientId" || s.ClientSecretInput != "clientSecret" {
		t.Errorf("type = %s, spec = %+v", ct.AuthKind, s)
	}
	for _, tt := range []struct {
		values    map[string]string
		wantToken string
	}{
		{valid(), "https://login.microsoftonline.com/" + tenantID + "/oauth2/v2.0/token"},
		{valid("tenant", "contoso.onmicrosoft.com"), "https://login.microsoftonline.com/contoso.onmicrosoft.com/oauth2/v2.0/token"},
		{valid("authorityHost", "http://127.0.0.1:8080"), "http://127.0.0.1:8080/" + tenantID + "/oauth2/v2.0/token"},
	} {
		values, err := sdk.ResolveValues(ct, tt.values)
		if err != nil {
			t.Fatal(err)
		}
		tokenURL, err1 := sdk.RenderTemplate(s.TokenURL, values)
		scopes, err2 := sdk.RenderTemplate(s.Scopes, values)
		if err1 != nil || err2 != nil || tokenURL != tt.wantToken || scopes != DefaultScopes {
			t.Errorf("token URL %q (%v), scopes %q (%v); want %q and %q", tokenURL, err1, scopes, err2, tt.wantToken, DefaultScopes)
		}
		if values["graphBaseUrl"] != DefaultGraphBaseURL {
			t.Errorf("graphBaseUrl = %q", values["graphBaseUrl"])
		}
	}
	for _, key := range []string{"authorityHost", "tokenUrl", "scopes", "graphBaseUrl"} {
		if !ct.Input(key).Hidden {
			t.Errorf("input %q is shown; only the tenant, client ID and secret are", key)
		}
	}
}

func TestValidate(t *testing.T) {
	sdktest.CheckValidate(t, New(), TypeKey, []sdktest.ValidateCase{
		{Name: "tenant ID", Values: valid()},
		{Name: "upper-case GUIDs", Values: valid("tenant", strings.ToUpper(tenantID), "clientId", strings.ToUpper(clientID))},
		{Name: "initial domain", Values: valid("tenant", "contoso.onmicrosoft.com")},
		{Name: "custom domain", Values: valid("tenant", "login.contoso.co.uk")},
		{Name: "test servers", Values: valid("authorityHost", "http://127.0.0.1:8080", "graphBaseUrl", "http://127.0.0.1:8080/v1.0")},
		{Name: "national cloud", Values: valid("authorityHost", "https://login.microsoftonline.us",
			"scopes", "https://graph.microsoft.us/.default", "graphBaseUrl", "https://graph.microsoft.us/v1.0")},
		{Name: "empty", Values: map[string]string{}, Errors: map[string]string{
			"tenant": "Tenant is required", "clientId": "is required", "clientSecret": "is required",
		}},
		{Name: "common", Values: valid("tenant", "common"), Errors: map[string]string{"tenant": "not common, organizations or consumers"}},
		{Name: "organizations", Values: valid("tenant", "Organizations"), Errors: map[string]string{"tenant": "needs one tenant"}},
		{Name: "tenant URL", Values: valid("tenant", "https://login.microsoftonline.com/"+tenantID), Errors: map[string]string{"tenant": "not a URL"}},
		{Name: "email", Values: valid("tenant", "admin@contoso.onmicrosoft.com"), Errors: map[string]string{"tenant": "not an email address"}},
		{Name: "tenant line break", Values: valid("tenant", tenantID+"\n"), Errors: map[string]string{"tenant": "spaces or line breaks"}},
		{Name: "tenant name", Values: valid("tenant", "Contoso"), Errors: map[string]string{"tenant": "Directory (tenant) ID"}},
		{Name: "client ID is a name", Values: valid("clientId", "plugboard-app"), Errors: map[string]string{"clientId": "Application (client) ID, a GUID"}},
		{Name: "client ID with a space", Values: valid("clientId", " "+clientID), Errors: map[string]string{"clientId": "spaces or line breaks"}},
		{Name: "secret ID", Values: valid("clientSecret", "1e2d3c4b-5a69-4788-9a0b-c1d2e3f4a5b6"), Errors: map[string]string{"clientSecret": "the secret's Value"}},
		{Name: "secret line break", Values: valid("clientSecret", secret+"\n"), Errors: map[string]string{"clientSecret": "spaces or line breaks"}},
		{Name: "delegated scope", Values: valid("scopes", "User.Read"), Errors: map[string]string{"scopes": ".default scope"}},
		{Name: "authority with a path", Values: valid("authorityHost", "https://login.microsoftonline.com/"+tenantID), Errors: map[string]string{"authorityHost": "only the scheme and host"}},
		{Name: "relative Graph URL", Values: valid("graphBaseUrl", "graph.microsoft.com/v1.0"), Errors: map[string]string{"graphBaseUrl": "absolute URL"}},
	})
}

func TestTest(t *testing.T) {
	tests := []struct {
		name    string
		handler http.HandlerFunc
		wantOK  bool
		want    string
	}{
		{"ok", func(w http.ResponseWriter, r *http.Request) {
			w.Write([]byte(`{"value":[{"id":"` + tenantID + `","displayName":"Contoso"}]}`))
		}, true, "Connected to Microsoft Graph for the organization Contoso (tenant " + tenantID + ")."},
		{"ok without a name", func(w http.ResponseWriter, r *http.Request) {
			w.Write([]byte(`{"value":[]}`))
		}, true, "Connected to Microsoft Graph."},
		{"Graph echoes the token", func(w http.ResponseWriter, r *http.Request) {
			w.Write([]byte(`{"value":[{"id":"1","displayName":"` + token + `"}]}`))
		}, true, "organization [redacted]"},
		{"token rejected", func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(http.StatusUnauthorized)
			w.Write([]byte(`{"error":{"code":"InvalidAuthenticationToken","message":"Lifetime validation failed, the token is expired."}}`))
		}, false, "Microsoft Graph rejected the access token (InvalidAuthenticationToken)"},
		{"no admin consent", func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(http.StatusForbidden)
			w.Write([]byte(`{"error":{"code":"Authorization_RequestDenied","message":"Insufficient privileges to complete the operation."}}`))
		}, false, "(Authorization_RequestDenied): the app needs the application permission Organization.Read.All with admin consent"},
		{"error code not quoted when odd", func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(http.StatusForbidden)
			w.Write([]byte(`{"error":{"code":"see ` + token + `"}}`))
		}, false, "refused to read the organization: the app needs"},
		{"server error", func(w http.ResponseWriter, r *http.Request) {
			http.Error(w, token, http.StatusServiceUnavailable)
		}, false, "answered 503 Service Unavailable."},
		{"too slow", sdktest.Hang, false, "did not answer in time"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := sdktest.Server(t, sdktest.Expect{
				Path:   "/v1.0/organization",
				Query:  map[string]string{"$select": "id,displayName"},
				Header: map[string]string{"Authorization": "Bearer " + token},
			}, tt.handler)
			ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
			defer cancel()
			resp, err := New().Test(ctx, &sdk.TestRequest{
				TypeKey: TypeKey,
				Values:  valid("graphBaseUrl", srv.URL+"/v1.0/"),
				Token:   &sdk.Token{AccessToken: token, TokenType: "Bearer"},
			})
			sdktest.CheckAnswer(t, resp, err, tt.wantOK, tt.want)
		})
	}
}

func TestTestWithoutCallingOut(t *testing.T) {
	unreachable := valid("graphBaseUrl", "http://127.0.0.1:1/v1.0")
	tests := []struct {
		name   string
		values map[string]string
		token  *sdk.Token
		want   string
	}{
		{"no token", unreachable, nil, "No access token yet"},
		{"empty token", unreachable, &sdk.Token{}, "No access token yet"},
		{"invalid values", valid("tenant", "common"), &sdk.Token{AccessToken: token}, "The values are not valid: App-only access needs one tenant"},
		{"no values", map[string]string{}, nil, "Tenant is required"},
		{"unreachable", unreachable, &sdk.Token{AccessToken: token}, "Could not reach 127.0.0.1:1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, err := New().Test(context.Background(), &sdk.TestRequest{TypeKey: TypeKey, Values: tt.values, Token: tt.token})
			sdktest.CheckAnswer(t, resp, err, false, tt.want)
		})
	}
}

// TestClientCredentialsFlow plays the host: it gets a token the way the
// declaration says (token URL and scopes rendered from the values, client
// id and secret in the form body, no PKCE) from a stand-in for Microsoft
// Entra ID, and tests it against a stand-in for Microsoft Graph.
func TestClientCredentialsFlow(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case r.Method == http.MethodPost && r.URL.Path == "/contoso.onmicrosoft.com/oauth2/v2.0/token":
			if r.ParseForm() != nil || r.PostForm.Get("grant_type") != "client_credentials" || r.PostForm.Get("client_id") != clientID ||
				r.PostForm.Get("client_secret") != secret || r.PostForm.Get("scope") != DefaultScopes || r.PostForm.Has("code_verifier") {
				t.Errorf("token request: unexpected form (keys %v)", keys(r.PostForm))
				http.Error(w, `{"error":"invalid_request"}`, http.StatusBadRequest)
				return
			}
			w.Header().Set("Content-Type", "application/json")
			json.NewEncoder(w).Encode(map[string]any{"token_type": "Bearer", "expires_in": 3599, "access_token": token})
		case r.Method == http.MethodGet && r.URL.Path == "/v1.0/organization" && r.Header.Get("Authorization") == "Bearer "+token:
			w.Write([]byte(`{"value":[{"id":"` + tenantID + `","displayName":"Contoso"}]}`))
		default:
			t.Errorf("unexpected request %s %s", r.Method, r.URL.Path)
			http.NotFound(w, r)
		}
	}))
	defer srv.Close()

	values := valid("tenant", "contoso.onmicrosoft.com", "authorityHost", srv.URL, "graphBaseUrl", srv.URL+"/v1.0")
	if resp, err := New().Validate(context.Background(), &sdk.ValidateRequest{TypeKey: TypeKey, Values: values}); err != nil || len(resp.Diagnostics) > 0 {
		t.Fatalf("the values are not valid: %+v, %v", resp, err)
	}
	resolved, err := sdk.ResolveValues(&connectionType, values)
	if err != nil {
		t.Fatal(err)
	}
	spec := connectionType.OAuth2
	tokenURL, err := sdk.RenderTemplate(spec.TokenURL, resolved)
	if err != nil {
		t.Fatal(err)
	}
	scopes, err := sdk.RenderTemplate(spec.Scopes, resolved)
	if err != nil {
		t.Fatal(err)
	}
	form := url.Values{
		"grant_type":    {"client_credentials"},
		"client_id":     {resolved[spec.ClientIDInput]},
		"client_secret": {resolved[spec.ClientSecretInput]},
		"scope":         {strings.Join(strings.Split(scopes, spec.ScopeSeparator), " ")},
	}
	httpResp, err := http.PostForm(tokenURL, form)
	if err != nil {
		t.Fatal(err)
	}
	defer httpResp.Body.Close()
	var tok struct {
		AccessToken string `json:"access_token"`
		TokenType   string `json:"token_type"`
	}
	if err := json.NewDecoder(httpResp.Body).Decode(&tok); err != nil || tok.AccessToken == "" {
		t.Fatalf("token response %s: %v", httpResp.Status, err)
	}

	resp, err := New().Test(context.Background(), &sdk.TestRequest{
		TypeKey: TypeKey, Values: values, Token: &sdk.Token{AccessToken: tok.AccessToken, TokenType: tok.TokenType},
	})
	sdktest.CheckAnswer(t, resp, err, true, "organization Contoso")
}

func keys(v url.Values) []string {
	var out []string
	for k := range v {
		out = append(out, k)
	}
	return out
}
