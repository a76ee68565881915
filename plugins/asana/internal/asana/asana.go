// Package asana implements the Asana plugin: one API key connection type
// for personal access tokens, tested against GET /users/me.
package asana

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/plugboard/plugboard/plugins/sdk"
)

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

// testTimeout bounds Test when the host gives no deadline.
const testTimeout = 30 * time.Second

// Provider implements sdk.Provider for Asana.
type Provider struct {
	// Client makes the HTTP calls; nil means http.DefaultClient.
	Client *http.Client
}

// New returns the Asana provider.
func New() *Provider { return &Provider{} }

var connectionType = sdk.ConnectionType{
	Key:         TypeKey,
	Label:       "Asana personal access token",
	Description: "Connects with a personal access token, created in the Asana developer console.",
	IconURL:     "https://app.asana.com/favicon.ico",
	AuthKind:    sdk.AuthAPIKey,
	Inputs: []sdk.Input{
		{
			Key:         "apiKey",
			Label:       "Personal access token",
			Type:        sdk.InputPassword,
			Secret:      true,
			Required:    true,
			Pattern:     TokenPattern,
			Placeholder: "2/1200000000000000/1200000000000001:0123456789abcdef0123456789abcdef",
			Description: "In Asana: Settings → Apps → View developer console → Personal access tokens → Create new token.",
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
}

// Describe implements sdk.Provider.
func (*Provider) Describe(context.Context) (*sdk.Description, error) {
	return &sdk.Description{Key: "asana", Version: Version, ConnectionTypes: []sdk.ConnectionType{connectionType}}, nil
}

// Validate implements sdk.Provider.
func (*Provider) Validate(_ context.Context, req *sdk.ValidateRequest) (*sdk.ValidateResponse, error) {
	if req.TypeKey != TypeKey {
		return nil, sdk.UnknownTypeError(req.TypeKey)
	}
	return &sdk.ValidateResponse{Diagnostics: validate(req.Values)}, nil
}

func validate(values map[string]string) []sdk.Diagnostic {
	ds := sdk.ValidateValues(&connectionType, values)
	token := values["apiKey"]
	for i, d := range ds {
		if d.Field != "apiKey" || token == "" {
			continue
		}
		// A friendlier message than "must match the pattern".
		switch {
		case strings.HasPrefix(strings.ToLower(token), "bearer "):
			ds[i].Summary = `Paste the token without the "Bearer " prefix.`
		case strings.TrimSpace(token) != token:
			ds[i].Summary = "The token has spaces or line breaks around it; paste it without them."
		default:
			ds[i].Summary = "This does not look like an Asana personal access token: it starts with a digit and a slash, such as 2/1200…:0123…."
		}
		ds[i].Detail = "Expected the pattern " + TokenPattern
	}
	return ds
}

// Test implements sdk.Provider: it asks Asana who the token belongs to.
func (p *Provider) Test(ctx context.Context, req *sdk.TestRequest) (*sdk.TestResponse, error) {
	if req.TypeKey != TypeKey {
		return nil, sdk.UnknownTypeError(req.TypeKey)
	}
	values, err := sdk.ResolveValues(&connectionType, req.Values)
	if err != nil {
		return nil, err
	}
	for _, d := range validate(values) {
		if d.Severity == sdk.SeverityError {
			return &sdk.TestResponse{OK: false, Message: "The values are not valid: " + d.Summary}, nil
		}
	}
	token := values["apiKey"]

	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, testTimeout)
		defer cancel()
	}
	url := strings.TrimRight(values["baseUrl"], "/") + "/users/me"
	httpReq, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return &sdk.TestResponse{OK: false, Message: "The API base URL is not usable."}, nil
	}
	httpReq.Header.Set("Authorization", "Bearer "+token)
	httpReq.Header.Set("Accept", "application/json")

	client := p.Client
	if client == nil {
		client = http.DefaultClient
	}
	resp, err := client.Do(httpReq)
	if err != nil {
		if ctx.Err() != nil {
			return &sdk.TestResponse{OK: false, Message: "Asana did not answer in time."}, nil
		}
		return &sdk.TestResponse{OK: false, Message: redact("Could not reach Asana: "+err.Error(), token)}, nil
	}
	defer resp.Body.Close()

	switch resp.StatusCode {
	case http.StatusOK:
		var me struct {
			Data struct {
				Name string `json:"name"`
			} `json:"data"`
		}
		if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&me); err == nil && me.Data.Name != "" {
			return &sdk.TestResponse{OK: true, Message: redact("Connected to Asana as "+me.Data.Name+".", token)}, nil
		}
		return &sdk.TestResponse{OK: true, Message: "Connected to Asana."}, nil
	case http.StatusUnauthorized:
		return &sdk.TestResponse{OK: false, Message: "Asana says the token was rejected: it is wrong, expired or revoked."}, nil
	default:
		return &sdk.TestResponse{OK: false, Message: redact(fmt.Sprintf("Asana answered %s.", resp.Status), token)}, nil
	}
}

// redact removes the token from a message, in case an error or a server
// ever echoes it.
func redact(msg, token string) string {
	if token == "" {
		return msg
	}
	return strings.ReplaceAll(msg, token, "[redacted]")
}
