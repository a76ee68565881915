// Package shopify implements the Shopify plugin: one API key connection
// type for a store's Admin API access token, tested with GET shop.json.
package shopify

import (
	"context"
	_ "embed" // the icon
	"encoding/json"
	"fmt"
	"net/http"
	"strings"

	"github.com/plugboard/plugboard/plugins/sdk"
)

// icon is the type's icon, served by plugboard.
//
//go:embed icon.svg
var icon []byte

// TypeKey is the key of the connection type.
const TypeKey = "shopify.apiKey"

// Version is the plugin version.
const Version = "0.1.0"

// APIVersions are the Admin API versions offered, oldest first; the last
// is the default.
var APIVersions = []string{"2024-07", "2024-10", "2025-01", "2025-04", "2025-07"}

// New returns the Shopify plugin.
func New() *sdk.Plugin {
	return &sdk.Plugin{Key: "shopify", Version: Version, Types: []sdk.Type{
		{ConnectionType: connectionType, Validate: validate, Test: test},
	}}
}

var connectionType = func() sdk.ConnectionType {
	var versions []sdk.Option
	for _, v := range APIVersions {
		versions = append(versions, sdk.Option{Value: v, Label: v})
	}
	return sdk.ConnectionType{
		Key:         TypeKey,
		Label:       "Shopify Admin API access token",
		Description: "Connects to one store with an Admin API access token of a custom app.",
		IconURL:     "https://cdn.shopify.com/shopifycloud/brochure/assets/favicon.ico",
		IconSVG:     icon,
		AuthKind:    sdk.AuthAPIKey,
		// The host sends the access token (X-Shopify-Access-Token).
		TestThroughHost: true,
		Inputs: []sdk.Input{
			{Key: "shop", Label: "Store name", Type: sdk.InputString, Required: true, Pattern: `^[a-z0-9][a-z0-9-]*$`,
				PatternMessage: "Enter the store name as in acme.myshopify.com: lower-case letters, digits and dashes.",
				Placeholder:    "acme", Description: "The name in acme.myshopify.com."},
			{Key: "storeUrl", Label: "Store admin URL", Type: sdk.InputTemplate, Template: "https://{{#shop}}.myshopify.com/admin"},
			{Key: "accessToken", Label: "Admin API access token", Type: sdk.InputPassword, Secret: true, Required: true,
				Placeholder: "shpat_…", Description: "In the store admin: Settings → Apps and sales channels → Develop apps → your app → API credentials."},
			// The version the organization's integration is written
			// against: its setting, not the store owner's.
			{Key: "apiVersion", Label: "API version", Type: sdk.InputPicklist, Default: APIVersions[len(APIVersions)-1], Options: versions,
				Hidden: true, Description: "The Admin API version your integration calls."},
			{Key: "baseUrlOverride", Label: "Admin URL override", Type: sdk.InputURL, Hidden: true,
				Description: "Replaces the store admin URL, for a proxy or a test server."},
		},
		// Proxied paths follow the admin URL: /api/<version>/shop.json.
		HTTP: &sdk.HTTPSpec{
			BaseURL: "https://{{#shop}}.myshopify.com/admin", AllowedHosts: []string{"*.myshopify.com"},
			BaseURLOverrideInput: "baseUrlOverride",
			Inject:               sdk.InjectHeader, Header: "X-Shopify-Access-Token", Input: "accessToken",
		},
	}
}()

// validate words the most common mistake, a domain for the store name.
func validate(values map[string]string) []sdk.Diagnostic {
	if strings.Contains(values["shop"], ".") {
		return []sdk.Diagnostic{sdk.ErrorDiag("shop", "Enter only the store name (acme), not the domain (acme.myshopify.com).")}
	}
	return nil
}

// test reads the store's shop.json.
func test(ctx context.Context, req *sdk.TestRequest) (*sdk.TestResponse, error) {
	values := req.Values
	base := values["storeUrl"]
	if o := values["baseUrlOverride"]; o != "" {
		base = o
	}
	httpReq, err := http.NewRequest(http.MethodGet, strings.TrimRight(base, "/")+"/api/"+values["apiVersion"]+"/shop.json", nil)
	if err != nil {
		return &sdk.TestResponse{OK: false, Message: "The store URL is not usable."}, nil
	}
	if !req.ThroughHost() { // a host older than protocol 1.2 sent the token
		httpReq.Header.Set("X-Shopify-Access-Token", values["accessToken"])
	}
	httpReq.Header.Set("Accept", "application/json")
	return sdk.CheckHTTP(ctx, req.HTTP, httpReq, func(status int, body []byte) *sdk.TestResponse {
		switch status {
		case http.StatusOK:
			var shop struct {
				Shop struct {
					Name string `json:"name"`
				} `json:"shop"`
			}
			if json.Unmarshal(body, &shop) == nil && shop.Shop.Name != "" {
				return &sdk.TestResponse{OK: true, Message: "Connected to the store " + shop.Shop.Name + "."}
			}
			return &sdk.TestResponse{OK: true, Message: "Connected to the store."}
		case http.StatusUnauthorized:
			return &sdk.TestResponse{OK: false, Message: "Shopify rejected the access token: it is wrong or the app was uninstalled."}
		case http.StatusForbidden:
			return &sdk.TestResponse{OK: false, Message: "The access token may not read the store's details; check the app's API access scopes."}
		case http.StatusPaymentRequired:
			return &sdk.TestResponse{OK: false, Message: "The store is frozen or closed (Shopify answered 402 Payment Required)."}
		case http.StatusNotFound:
			return &sdk.TestResponse{OK: false, Message: fmt.Sprintf("No store %s.myshopify.com, or API version %s is not available.", values["shop"], values["apiVersion"])}
		}
		return nil // "<host> answered <status>."
	}), nil
}
