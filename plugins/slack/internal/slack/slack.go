// Package slack implements the Slack plugin: one OAuth 2.0 authorization
// code connection type for a Slack app, tested with auth.test.
package slack

import (
	"context"
	_ "embed" // the icon
	"encoding/json"
	"net/http"
	"net/url"
	"strings"

	"github.com/plugboard/plugboard/plugins/sdk"
)

// icon is the type's icon, served by plugboard.
//
//go:embed icon.svg
var icon []byte

// TypeKey is the key of the connection type.
const TypeKey = "slack.oauth2"

// Version is the plugin version.
const Version = "0.1.0"

// The Slack endpoints, the inputs' defaults.
const (
	DefaultAuthorizeURL = "https://slack.com/oauth/v2/authorize"
	DefaultTokenURL     = "https://slack.com/api/oauth.v2.access"
	DefaultRevokeURL    = "https://slack.com/api/auth.revoke"
	DefaultScopes       = "chat:write,channels:read"
	DefaultAPIBaseURL   = "https://slack.com/api"
)

// New returns the Slack plugin.
func New() *sdk.Plugin {
	return &sdk.Plugin{Key: "slack", Version: Version, Types: []sdk.Type{
		{ConnectionType: connectionType, Test: test},
	}}
}

var connectionType = sdk.ConnectionType{
	Key:         TypeKey,
	Label:       "Slack",
	Description: "Connects a Slack workspace through your Slack app (OAuth 2.0, bot token).",
	IconURL:     "https://a.slack-edge.com/80588/marketing/img/meta/favicon-32.png",
	IconSVG:     icon,
	AuthKind:    sdk.AuthOAuth2AuthorizationCode,
	// The host sends the access token as a bearer token.
	TestThroughHost: true,
	Inputs: []sdk.Input{
		{Key: "authorizeUrl", Label: "Authorize URL", Type: sdk.InputURL, Default: DefaultAuthorizeURL, Hidden: true},
		{Key: "tokenUrl", Label: "Token URL", Type: sdk.InputURL, Default: DefaultTokenURL, Hidden: true,
			Description: "Test calls auth.test on the API of this URL's host."},
		{Key: "revokeUrl", Label: "Revoke URL", Type: sdk.InputURL, Default: DefaultRevokeURL, Hidden: true},
		{Key: "scopes", Label: "Scopes", Type: sdk.InputString, Default: DefaultScopes, Hidden: true,
			Description: "Bot token scopes, separated by commas.", Pattern: `[a-z0-9_.:-]+(,[a-z0-9_.:-]+)*`,
			PatternMessage: "Scopes must be Slack scope names separated by commas, without spaces, such as chat:write,channels:read."},
		{Key: "clientId", Label: "Client ID", Type: sdk.InputString, Required: true, Hidden: true,
			Description: "From your Slack app's Basic Information page."},
		{Key: "clientSecret", Label: "Client secret", Type: sdk.InputPassword, Secret: true, Required: true, Hidden: true,
			Description: "From your Slack app's Basic Information page."},
		// A setting of the organization's Slack app, like the client id
		// and secret: customers only press Connect.
		{Key: "signingSecret", Label: "Signing secret", Type: sdk.InputPassword, Secret: true, Hidden: true,
			Description: "Verifies requests Slack sends to your app (events, interactivity)."},
		{Key: "apiBaseUrl", Label: "API base URL", Type: sdk.InputURL, Default: DefaultAPIBaseURL, Hidden: true,
			Description: "The Slack Web API root the credential proxy calls; change it only for a test server."},
	},
	HTTP: &sdk.HTTPSpec{
		BaseURL: "{{#apiBaseUrl}}", AllowedHosts: []string{"slack.com"},
		Inject: sdk.InjectBearer,
	},
	OAuth2: &sdk.OAuth2Spec{
		AuthorizeURL:      "{{#authorizeUrl}}",
		TokenURL:          "{{#tokenUrl}}",
		RevokeURL:         "{{#revokeUrl}}",
		Scopes:            "{{#scopes}}",
		ScopeSeparator:    ",",
		PKCE:              sdk.PKCES256,
		AuthStyle:         sdk.AuthStyleBody,
		ClientIDInput:     "clientId",
		ClientSecretInput: "clientSecret",
	},
}

// test calls auth.test on the Slack API with the token (the API of
// tokenUrl's host, so a test server can stand in).
func test(ctx context.Context, req *sdk.TestRequest) (*sdk.TestResponse, error) {
	if req.Token == nil || (!req.ThroughHost() && req.Token.AccessToken == "") {
		return &sdk.TestResponse{OK: false, Message: "Not connected: authorize the Slack app first."}, nil
	}
	tokenURL, err := url.Parse(req.Values["tokenUrl"])
	if err != nil {
		return &sdk.TestResponse{OK: false, Message: "The token URL is not usable."}, nil
	}
	api := (&url.URL{Scheme: tokenURL.Scheme, Host: tokenURL.Host, Path: "/api/auth.test"}).String()
	if req.ThroughHost() {
		// The host sends it to the API base URL the type declares.
		api = strings.TrimRight(req.Values["apiBaseUrl"], "/") + "/auth.test"
	}
	httpReq, err := http.NewRequest(http.MethodPost, api, nil)
	if err != nil {
		return &sdk.TestResponse{OK: false, Message: "The token URL is not usable."}, nil
	}
	if !req.ThroughHost() { // a host older than protocol 1.2 sent the token
		httpReq.Header.Set("Authorization", "Bearer "+req.Token.AccessToken)
	}
	return sdk.CheckHTTP(ctx, req.HTTP, httpReq, authTestAnswer), nil
}

// authTestAnswer is the verdict on Slack's answer to auth.test.
func authTestAnswer(status int, body []byte) *sdk.TestResponse {
	if status != http.StatusOK {
		return nil // "<host> answered <status>."
	}
	var answer struct {
		OK    bool   `json:"ok"`
		Error string `json:"error"`
		Team  string `json:"team"`
		User  string `json:"user"`
	}
	if err := json.Unmarshal(body, &answer); err != nil {
		return &sdk.TestResponse{OK: false, Message: "Slack answered something other than JSON."}
	}
	if !answer.OK {
		switch answer.Error {
		case "invalid_auth", "not_authed", "token_revoked", "token_expired", "account_inactive":
			return &sdk.TestResponse{OK: false, Message: "Slack rejected the token (" + answer.Error + "): reconnect the app."}
		}
		return &sdk.TestResponse{OK: false, Message: "Slack answered an error: " + answer.Error}
	}
	msg := "Connected to Slack"
	if answer.Team != "" {
		msg += " workspace " + answer.Team
	}
	if answer.User != "" {
		msg += " as " + answer.User
	}
	return &sdk.TestResponse{OK: true, Message: msg + "."}
}
