// Package asana implements the Asana plugin: one API key connection type
// for personal access tokens, tested against GET /users/me through the
// host, which sends the token: the plugin never holds it.
package asana

import (
	"context"
	_ "embed" // the icon
	"encoding/json"
	"net/http"
	"strings"

	"github.com/plugboard/plugboard/plugins/sdk"
)

// icon is the type's icon, served by plugboard.
//
//go:embed icon.svg
var icon []byte

// TypeKey is the key of the connection type.
const TypeKey = "asana.apiKey"

// Version is the plugin version.
const Version = "0.1.0"

// DefaultBaseURL is the Asana REST API.
const DefaultBaseURL = "https://app.asana.com/api/1.0"

// TokenPattern is the shape of an Asana personal access token. Asana calls
// its token format opaque and has changed it (0/<32 hex>, then
// 1/<user gid>:<32 hex>, then 2/<user gid>/<app gid>:<32 hex>), so the
// pattern checks only what every format shares: a single-digit format
// version, a slash, then at least 16 characters of digits, letters and
// ":/._~+=-". It catches paste mistakes (spaces, a "Bearer " prefix, a
// client secret or a truncated token) without rejecting a future format.
const TokenPattern = `^[0-9]/[0-9A-Za-z:/._~+=-]{16,}$`

// New returns the Asana plugin.
func New() *sdk.Plugin {
	return &sdk.Plugin{Key: "asana", Version: Version, Types: []sdk.Type{
		{ConnectionType: connectionType, Validate: validate, Test: test},
	}}
}

var connectionType = sdk.ConnectionType{
	Key:         TypeKey,
	Label:       "Asana personal access token",
	Description: "Connects with a personal access token, created in the Asana developer console.",
	IconURL:     "https://app.asana.com/favicon.ico",
	IconSVG:     icon,
	AuthKind:    sdk.AuthAPIKey,
	// The host sends the token as a bearer token.
	TestThroughHost: true,
	Inputs: []sdk.Input{
		{
			Key:            "apiKey",
			Label:          "Personal access token",
			Type:           sdk.InputPassword,
			Secret:         true,
			Required:       true,
			Pattern:        TokenPattern,
			PatternMessage: "This does not look like an Asana personal access token: it starts with a digit and a slash, such as 2/1200…:0123….",
			Placeholder:    "2/1200000000000000/1200000000000001:0123456789abcdef0123456789abcdef",
			Description:    "In Asana: Settings → Apps → View developer console → Personal access tokens → Create new token.",
		},
		{
			Key:         "baseUrl",
			Label:       "API base URL",
			Type:        sdk.InputURL,
			Default:     DefaultBaseURL,
			Hidden:      true,
			Description: "The Asana API root; change it only for a proxy or a test server.",
		},
	},
	HTTP: &sdk.HTTPSpec{
		BaseURL: "{{#baseUrl}}", AllowedHosts: []string{"app.asana.com"},
		Inject: sdk.InjectBearer, Input: "apiKey",
	},
}

// validate words the two paste mistakes people make most for what they
// are; any other token that misses the pattern gets the input's
// PatternMessage.
func validate(values map[string]string) []sdk.Diagnostic {
	token := values["apiKey"]
	switch {
	case strings.HasPrefix(strings.ToLower(strings.TrimSpace(token)), "bearer "):
		return []sdk.Diagnostic{sdk.ErrorDiag("apiKey", `Paste the token without the "Bearer " prefix.`)}
	case strings.TrimSpace(token) != token:
		return []sdk.Diagnostic{sdk.ErrorDiag("apiKey", "The token has spaces or line breaks around it; paste it without them.")}
	}
	return nil
}

// test asks Asana who the token belongs to.
func test(ctx context.Context, req *sdk.TestRequest) (*sdk.TestResponse, error) {
	httpReq, err := http.NewRequest(http.MethodGet, strings.TrimRight(req.Values["baseUrl"], "/")+"/users/me", nil)
	if err != nil {
		return &sdk.TestResponse{OK: false, Message: "The API base URL is not usable."}, nil
	}
	if !req.ThroughHost() { // a host older than protocol 1.2 sent the token
		httpReq.Header.Set("Authorization", "Bearer "+req.Values["apiKey"])
	}
	httpReq.Header.Set("Accept", "application/json")
	return sdk.CheckHTTP(ctx, req.HTTP, httpReq, func(status int, body []byte) *sdk.TestResponse {
		switch status {
		case http.StatusOK:
			var me struct {
				Data struct {
					Name string `json:"name"`
				} `json:"data"`
			}
			if json.Unmarshal(body, &me) == nil && me.Data.Name != "" {
				return &sdk.TestResponse{OK: true, Message: "Connected to Asana as " + me.Data.Name + "."}
			}
			return &sdk.TestResponse{OK: true, Message: "Connected to Asana."}
		case http.StatusUnauthorized:
			return &sdk.TestResponse{OK: false, Message: "Asana says the token was rejected: it is wrong, expired or revoked."}
		}
		return nil // "<host> answered <status>."
	}), nil
}
