package slack

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/plugboard/plugboard/plugins/sdk"
	"github.com/plugboard/plugboard/plugins/sdk/sdktest"
)

// canary is a secret that must appear in no message.
const canary = sdktest.Canary

func TestConformance(t *testing.T) {
	sdktest.Check(t, sdktest.Build(t, "github.com/plugboard/plugboard/plugins/slack"))
}

func TestDescriptionFollowsSlack(t *testing.T) {
	d, err := New().Describe(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	s := d.Type(TypeKey).OAuth2
	values, err := sdk.ResolveValues(d.Type(TypeKey), nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range []struct{ tmpl, want string }{
		{s.AuthorizeURL, DefaultAuthorizeURL},
		{s.TokenURL, DefaultTokenURL},
		{s.RevokeURL, DefaultRevokeURL},
		{s.Scopes, "chat:write,channels:read"},
	} {
		if got, err := sdk.RenderTemplate(f.tmpl, values); err != nil || got != f.want {
			t.Errorf("RenderTemplate(%q) = %q, %v; want %q", f.tmpl, got, err, f.want)
		}
	}
	if s.ScopeSeparator != "," || s.PKCE != sdk.PKCES256 || s.AuthStyle != sdk.AuthStyleBody {
		t.Errorf("spec = %+v", s)
	}
}

func TestValidate(t *testing.T) {
	sdktest.CheckValidate(t, New(), TypeKey, []sdktest.ValidateCase{
		{Name: "complete", Values: map[string]string{"clientId": "123.456", "clientSecret": canary, "signingSecret": canary}},
		{Name: "empty", Values: map[string]string{}, Errors: map[string]string{"clientId": "is required", "clientSecret": "is required"}},
		{Name: "bad scopes", Values: map[string]string{"clientId": "1", "clientSecret": canary, "scopes": "chat:write channels:read"}, Errors: map[string]string{"scopes": "separated by commas, without spaces"}},
		{Name: "bad token URL", Values: map[string]string{"clientId": "1", "clientSecret": canary, "tokenUrl": "slack.com/api"}, Errors: map[string]string{"tokenUrl": "absolute URL"}},
	})
}

func TestTest(t *testing.T) {
	token := "xoxb-" + canary
	tests := []struct {
		name    string
		handler http.HandlerFunc
		wantOK  bool
		want    string
	}{
		{"ok", func(w http.ResponseWriter, r *http.Request) {
			w.Write([]byte(`{"ok":true,"team":"Acme","user":"plugboard-bot","team_id":"T1"}`))
		}, true, "Connected to Slack workspace Acme as plugboard-bot."},
		{"revoked", func(w http.ResponseWriter, r *http.Request) {
			w.Write([]byte(`{"ok":false,"error":"token_revoked"}`))
		}, false, "Slack rejected the token (token_revoked)"},
		{"other error", func(w http.ResponseWriter, r *http.Request) {
			w.Write([]byte(`{"ok":false,"error":"ratelimited ` + token + `"}`))
		}, false, "ratelimited [redacted]"},
		{"server error", func(w http.ResponseWriter, r *http.Request) {
			http.Error(w, token, http.StatusBadGateway)
		}, false, "answered 502 Bad Gateway."},
		{"not JSON", func(w http.ResponseWriter, r *http.Request) {
			w.Write([]byte(`<html>`))
		}, false, "other than JSON"},
		{"too slow", sdktest.Hang, false, "did not answer in time"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := sdktest.Server(t, sdktest.Expect{
				Method: http.MethodPost,
				Path:   "/api/auth.test",
				Header: map[string]string{"Authorization": "Bearer " + token},
			}, tt.handler)
			ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
			defer cancel()
			resp, err := New().Test(ctx, &sdk.TestRequest{
				TypeKey: TypeKey,
				Values: map[string]string{
					"clientId": "123.456", "clientSecret": canary, "signingSecret": canary,
					"tokenUrl": srv.URL + "/api/oauth.v2.access",
				},
				Token: &sdk.Token{AccessToken: token, RefreshToken: "xoxe-" + canary, TokenType: "bot"},
			})
			sdktest.CheckAnswer(t, resp, err, tt.wantOK, tt.want)
		})
	}
}

func TestTestWithoutCallingOut(t *testing.T) {
	complete := map[string]string{"clientId": "1", "clientSecret": canary, "tokenUrl": "http://127.0.0.1:1/api/oauth.v2.access"}
	tests := []struct {
		name   string
		values map[string]string
		token  *sdk.Token
		want   string
	}{
		{"no token", complete, nil, "Not connected"},
		{"empty token", complete, &sdk.Token{}, "Not connected"},
		{"invalid values", map[string]string{"clientSecret": canary}, &sdk.Token{AccessToken: canary}, "Client ID is required"},
		{"unreachable", complete, &sdk.Token{AccessToken: canary}, "Could not reach 127.0.0.1:1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, err := New().Test(context.Background(), &sdk.TestRequest{TypeKey: TypeKey, Values: tt.values, Token: tt.token})
			sdktest.CheckAnswer(t, resp, err, false, tt.want)
		})
	}
}
