package slack

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/plugboard/plugboard/plugins/sdk"
	"github.com/plugboard/plugboard/plugins/sdk/sdktest"
)

// canary is a secret that must appear in no message.
const canary = "canary-secret-7f3a"

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
	tests := []struct {
		name   string
		values map[string]string
		want   []string // fields with an ERROR
	}{
		{"complete", map[string]string{"clientId": "123.456", "clientSecret": canary, "signingSecret": canary}, nil},
		{"empty", map[string]string{}, []string{"clientId", "clientSecret"}},
		{"bad scopes", map[string]string{"clientId": "1", "clientSecret": canary, "scopes": "chat:write channels:read"}, []string{"scopes"}},
		{"bad token URL", map[string]string{"clientId": "1", "clientSecret": canary, "tokenUrl": "slack.com/api"}, []string{"tokenUrl"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, err := New().Validate(context.Background(), &sdk.ValidateRequest{TypeKey: TypeKey, Values: tt.values})
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, d := range resp.Diagnostics {
				got = append(got, d.Field)
				if strings.Contains(d.Summary+d.Detail, canary) {
					t.Errorf("diagnostic %+v leaks a secret", d)
				}
			}
			if strings.Join(got, ",") != strings.Join(tt.want, ",") {
				t.Errorf("diagnostics on %v, want %v", got, tt.want)
			}
		})
	}
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
		}, false, "502 Bad Gateway"},
		{"not JSON", func(w http.ResponseWriter, r *http.Request) {
			w.Write([]byte(`<html>`))
		}, false, "other than JSON"},
		{"too slow", func(w http.ResponseWriter, r *http.Request) {
			select {
			case <-r.Context().Done():
			case <-time.After(5 * time.Second):
			}
		}, false, "did not answer in time"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if r.Method != http.MethodPost || r.URL.Path != "/api/auth.test" || r.Header.Get("Authorization") != "Bearer "+token {
					http.Error(w, "unexpected request", http.StatusBadRequest)
					return
				}
				tt.handler(w, r)
			}))
			defer srv.Close()
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
			if err != nil {
				t.Fatal(err)
			}
			if resp.OK != tt.wantOK || !strings.Contains(resp.Message, tt.want) {
				t.Errorf("Test = %+v, want OK=%v and a message with %q", resp, tt.wantOK, tt.want)
			}
			if strings.Contains(resp.Message, canary) {
				t.Errorf("the message leaks a secret: %q", resp.Message)
			}
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
		{"unreachable", complete, &sdk.Token{AccessToken: canary}, "Could not reach Slack"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, err := New().Test(context.Background(), &sdk.TestRequest{TypeKey: TypeKey, Values: tt.values, Token: tt.token})
			if err != nil {
				t.Fatal(err)
			}
			if resp.OK || !strings.Contains(resp.Message, tt.want) || strings.Contains(resp.Message, canary) {
				t.Errorf("Test = %+v, want not OK with %q and no secret", resp, tt.want)
			}
		})
	}
}
