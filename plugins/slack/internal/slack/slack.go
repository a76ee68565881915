// Package slack implements the Slack plugin: one OAuth 2.0 authorization
// code connection type for a Slack app, tested with auth.test.
package slack

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/plugboard/plugboard/plugins/sdk"
)

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
)

// testTimeout bounds Test when the host gives no deadline.
const testTimeout = 30 * time.Second

// Provider implements sdk.Provider for Slack.
type Provider struct {
	// Client makes the HTTP calls; nil means http.DefaultClient.
	Client *http.Client
}

// New returns the Slack provider.
func New() *Provider { return &Provider{} }

var connectionType = sdk.ConnectionType{
	Key:         TypeKey,
	Label:       "Slack",
	Description: "Connects a Slack workspace through your Slack app (OAuth 2.0, bot token).",
	IconURL:     "https://a.slack-edge.com/80588/marketing/img/meta/favicon-32.png",
	AuthKind:    sdk.AuthOAuth2AuthorizationCode,
	Inputs: []sdk.Input{
		{Key: "authorizeUrl", Label: "Authorize URL", Type: sdk.InputURL, Default: DefaultAuthorizeURL, Hidden: true},
		{Key: "tokenUrl", Label: "Token URL", Type: sdk.InputURL, Default: DefaultTokenURL, Hidden: true,
			Description: "Test calls auth.test on the API of this URL's host."},
		{Key: "revokeUrl", Label: "Revoke URL", Type: sdk.InputURL, Default: DefaultRevokeURL, Hidden: true},
		{Key: "scopes", Label: "Scopes", Type: sdk.InputString, Default: DefaultScopes, Hidden: true,
			Description: "Bot token scopes, separated by commas.", Pattern: `[a-z0-9_.:-]+(,[a-z0-9_.:-]+)*`},
		{Key: "clientId", Label: "Client ID", Type: sdk.InputString, Required: true, Hidden: true,
			Description: "From your Slack app's Basic Information page."},
		{Key: "clientSecret", Label: "Client secret", Type: sdk.InputPassword, Secret: true, Required: true, Hidden: true,
			Description: "From your Slack app's Basic Information page."},
		{Key: "signingSecret", Label: "Signing secret", Type: sdk.InputPassword, Secret: true,
			Description: "Verifies requests Slack sends to your app (events, interactivity)."},
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

// Describe implements sdk.Provider.
func (*Provider) Describe(context.Context) (*sdk.Description, error) {
	return &sdk.Description{Key: "slack", Version: Version, ConnectionTypes: []sdk.ConnectionType{connectionType}}, nil
}

// Validate implements sdk.Provider.
func (*Provider) Validate(_ context.Context, req *sdk.ValidateRequest) (*sdk.ValidateResponse, error) {
	if req.TypeKey != TypeKey {
		return nil, sdk.UnknownTypeError(req.TypeKey)
	}
	return &sdk.ValidateResponse{Diagnostics: sdk.ValidateValues(&connectionType, req.Values)}, nil
}

// Test implements sdk.Provider: with a token it calls auth.test on the
// Slack API (the host of tokenUrl, so a test server can stand in).
func (p *Provider) Test(ctx context.Context, req *sdk.TestRequest) (*sdk.TestResponse, error) {
	if req.TypeKey != TypeKey {
		return nil, sdk.UnknownTypeError(req.TypeKey)
	}
	if req.Token == nil || req.Token.AccessToken == "" {
		return &sdk.TestResponse{OK: false, Message: "Not connected: authorize the Slack app first."}, nil
	}
	token := req.Token.AccessToken
	values, err := sdk.ResolveValues(&connectionType, req.Values)
	if err != nil {
		return nil, err
	}
	secrets := []string{token, req.Token.RefreshToken, values["clientSecret"], values["signingSecret"]}
	for _, d := range sdk.ValidateValues(&connectionType, values) {
		if d.Severity == sdk.SeverityError {
			return &sdk.TestResponse{OK: false, Message: "The values are not valid: " + d.Summary}, nil
		}
	}
	tokenURL, err := url.Parse(values["tokenUrl"])
	if err != nil {
		return &sdk.TestResponse{OK: false, Message: "The token URL is not usable."}, nil
	}
	api := (&url.URL{Scheme: tokenURL.Scheme, Host: tokenURL.Host, Path: "/api/auth.test"}).String()

	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, testTimeout)
		defer cancel()
	}
	httpReq, err := http.NewRequestWithContext(ctx, http.MethodPost, api, nil)
	if err != nil {
		return &sdk.TestResponse{OK: false, Message: "The token URL is not usable."}, nil
	}
	httpReq.Header.Set("Authorization", "Bearer "+token)
	client := p.Client
	if client == nil {
		client = http.DefaultClient
	}
	resp, err := client.Do(httpReq)
	if err != nil {
		if ctx.Err() != nil {
			return &sdk.TestResponse{OK: false, Message: "Slack did not answer in time."}, nil
		}
		return &sdk.TestResponse{OK: false, Message: redact("Could not reach Slack: "+err.Error(), secrets)}, nil
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return &sdk.TestResponse{OK: false, Message: redact(fmt.Sprintf("Slack answered %s.", resp.Status), secrets)}, nil
	}
	var body struct {
		OK    bool   `json:"ok"`
		Error string `json:"error"`
		Team  string `json:"team"`
		User  string `json:"user"`
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&body); err != nil {
		return &sdk.TestResponse{OK: false, Message: "Slack answered something other than JSON."}, nil
	}
	if !body.OK {
		switch body.Error {
		case "invalid_auth", "not_authed", "token_revoked", "token_expired", "account_inactive":
			return &sdk.TestResponse{OK: false, Message: redact("Slack rejected the token ("+body.Error+"): reconnect the app.", secrets)}, nil
		}
		return &sdk.TestResponse{OK: false, Message: redact("Slack answered an error: "+body.Error, secrets)}, nil
	}
	msg := "Connected to Slack"
	if body.Team != "" {
		msg += " workspace " + body.Team
	}
	if body.User != "" {
		msg += " as " + body.User
	}
	return &sdk.TestResponse{OK: true, Message: redact(msg+".", secrets)}, nil
}

// redact removes secrets from a message, in case an error or a server ever
// echoes one.
func redact(msg string, secrets []string) string {
	for _, s := range secrets {
		if s != "" {
			msg = strings.ReplaceAll(msg, s, "[redacted]")
		}
	}
	return msg
}
