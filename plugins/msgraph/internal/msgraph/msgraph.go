// Package msgraph implements the Microsoft Graph plugin: one OAuth 2.0
// client credentials connection type for app-only access with a Microsoft
// Entra ID app registration, tested with GET /organization.
package msgraph

import (
	"context"
	_ "embed" // the icon
	"encoding/json"
	"net/http"
	"net/url"
	"regexp"
	"strings"

	"github.com/plugboard/plugboard/plugins/sdk"
)

// icon is the type's icon, served by plugboard.
//
//go:embed icon.svg
var icon []byte

// TypeKey is the key of the connection type.
const TypeKey = "msgraph.clientCredentials"

// Version is the plugin version.
const Version = "0.1.0"

// The Microsoft endpoints, the inputs' defaults.
const (
	DefaultAuthorityHost = "https://login.microsoftonline.com"
	DefaultScopes        = "https://graph.microsoft.com/.default"
	DefaultGraphBaseURL  = "https://graph.microsoft.com/v1.0"
)

// GUIDPattern is the shape of a tenant ID and of an application (client) ID.
const GUIDPattern = `[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}`

// TenantPattern accepts a tenant ID (a GUID) or a domain name of the tenant,
// such as contoso.onmicrosoft.com or contoso.com. It rejects "common",
// "organizations" and "consumers", which name no single tenant and so cannot
// issue an app-only token.
const TenantPattern = GUIDPattern + `|([A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,63}`

var guid = regexp.MustCompile(`^` + GUIDPattern + `$`)

// New returns the Microsoft Graph plugin.
func New() *sdk.Plugin {
	return &sdk.Plugin{Key: "msgraph", Version: Version, Types: []sdk.Type{
		{ConnectionType: connectionType, Validate: validate, Test: test},
	}}
}

var connectionType = sdk.ConnectionType{
	Key:         TypeKey,
	Label:       "Microsoft Graph (app-only)",
	Description: "Connects to a Microsoft 365 tenant as an application, with the client ID and a client secret of an app registration in Microsoft Entra ID.",
	IconURL:     "https://graph.microsoft.com/favicon.ico",
	IconSVG:     icon,
	AuthKind:    sdk.AuthOAuth2ClientCredentials,
	// The host sends the access token as a bearer token.
	TestThroughHost: true,
	Inputs: []sdk.Input{
		{Key: "tenant", Label: "Tenant", Type: sdk.InputString, Required: true, Pattern: TenantPattern,
			PatternMessage: "Enter the Directory (tenant) ID, a GUID from the app registration's Overview page, or a domain of the tenant such as contoso.onmicrosoft.com.",
			Placeholder:    "contoso.onmicrosoft.com",
			Description:    "The Directory (tenant) ID from the app registration's Overview page, or a domain of the tenant."},
		{Key: "clientId", Label: "Application (client) ID", Type: sdk.InputString, Required: true, Pattern: GUIDPattern,
			PatternMessage: "Enter the Application (client) ID, a GUID from the app registration's Overview page; not the app's name or a secret.",
			Placeholder:    "00000000-0000-0000-0000-000000000000",
			Description:    "From the app registration's Overview page in the Microsoft Entra admin center."},
		{Key: "clientSecret", Label: "Client secret", Type: sdk.InputPassword, Secret: true, Required: true,
			Description: "The Value of a client secret (not its Secret ID), from the app registration's Certificates & secrets page."},
		{Key: "authorityHost", Label: "Authority host", Type: sdk.InputURL, Default: DefaultAuthorityHost, Hidden: true,
			Description: "The Microsoft Entra sign-in host; change it for a national cloud or a test server."},
		{Key: "tokenUrl", Label: "Token URL", Type: sdk.InputTemplate, Template: "{{#authorityHost}}/{{#tenant}}/oauth2/v2.0/token", Hidden: true},
		{Key: "scopes", Label: "Scopes", Type: sdk.InputString, Default: DefaultScopes, Hidden: true,
			Description: "App-only tokens take the resource's .default scope: the application permissions granted to the app."},
		{Key: "graphBaseUrl", Label: "Graph base URL", Type: sdk.InputURL, Default: DefaultGraphBaseURL, Hidden: true,
			Description: "The Microsoft Graph API root that Test calls; change it for a national cloud or a test server."},
	},
	OAuth2: &sdk.OAuth2Spec{
		TokenURL:          "{{#tokenUrl}}",
		Scopes:            "{{#scopes}}",
		ScopeSeparator:    " ",
		PKCE:              sdk.PKCENone,
		AuthStyle:         sdk.AuthStyleBody,
		ClientIDInput:     "clientId",
		ClientSecretInput: "clientSecret",
	},
	HTTP: &sdk.HTTPSpec{
		BaseURL: "{{#graphBaseUrl}}",
		AllowedHosts: []string{"graph.microsoft.com", "graph.microsoft.us", "dod-graph.microsoft.us",
			"microsoftgraph.chinacloudapi.cn"},
		Inject: sdk.InjectBearer,
	},
}

// validate words the pattern errors for a person who copies values out of
// the Microsoft Entra admin center, and adds the checks a pattern cannot
// express.
func validate(values map[string]string) []sdk.Diagnostic {
	var ds []sdk.Diagnostic
	if problem := tenantProblem(values["tenant"]); problem != "" {
		ds = append(ds, sdk.ErrorDiag("tenant", problem))
	}
	if id := values["clientId"]; strings.TrimSpace(id) != id {
		ds = append(ds, sdk.ErrorDiag("clientId", "The client ID has spaces or line breaks around it; paste it without them."))
	}
	if secret := values["clientSecret"]; secret != "" {
		switch {
		case strings.TrimSpace(secret) != secret:
			ds = append(ds, sdk.ErrorDiag("clientSecret", "The client secret has spaces or line breaks around it; paste it without them."))
		case guid.MatchString(secret):
			ds = append(ds, sdk.ErrorDiag("clientSecret", "This looks like the secret's ID. Enter the secret's Value, shown once when the secret is created under Certificates & secrets."))
		}
	}
	for _, scope := range strings.Fields(values["scopes"]) {
		if !strings.HasSuffix(scope, "/.default") {
			ds = append(ds, sdk.ErrorDiag("scopes", "App-only access takes a resource's .default scope, such as "+DefaultScopes+"; the granted application permissions decide what the token may do."))
			break
		}
	}
	// Only an absolute URL: the declared check words any other value.
	if u, err := url.Parse(values["authorityHost"]); err == nil && u.IsAbs() && u.Host != "" && (u.Path != "" || u.RawQuery != "") {
		ds = append(ds, sdk.ErrorDiag("authorityHost", "Enter only the scheme and host of the authority, such as "+DefaultAuthorityHost+"; the tenant and the token path are added to it."))
	}
	return ds
}

// tenantProblem names a known mistake in a tenant, which the pattern
// rejects, without quoting it; "" for any other tenant (one that misses
// the pattern gets its PatternMessage).
func tenantProblem(v string) string {
	t := strings.TrimSpace(v)
	switch strings.ToLower(t) {
	case "common", "organizations", "consumers":
		return "App-only access needs one tenant: enter its tenant ID or a domain such as contoso.onmicrosoft.com, not common, organizations or consumers."
	}
	switch {
	case t != v:
		return "The tenant has spaces or line breaks around it; paste it without them."
	case strings.Contains(t, "/"):
		return "Enter only the tenant ID or domain, not a URL."
	case strings.Contains(t, "@"):
		return "Enter the tenant's domain (the part after the @), not an email address."
	}
	return ""
}

// test reads the tenant's organization from Microsoft Graph, with the token
// plugboard got from the token endpoint.
func test(ctx context.Context, req *sdk.TestRequest) (*sdk.TestResponse, error) {
	if req.Token == nil || (!req.ThroughHost() && req.Token.AccessToken == "") {
		return &sdk.TestResponse{OK: false, Message: "No access token yet: plugboard requests one from Microsoft Entra ID with the client ID and secret."}, nil
	}
	api := strings.TrimRight(req.Values["graphBaseUrl"], "/") + "/organization?$select=id,displayName"
	httpReq, err := http.NewRequest(http.MethodGet, api, nil)
	if err != nil {
		return &sdk.TestResponse{OK: false, Message: "The Graph base URL is not usable."}, nil
	}
	if !req.ThroughHost() { // a host older than protocol 1.2 sent the token
		httpReq.Header.Set("Authorization", "Bearer "+req.Token.AccessToken)
	}
	httpReq.Header.Set("Accept", "application/json")
	return sdk.CheckHTTP(ctx, req.HTTP, httpReq, organizationAnswer), nil
}

// organizationAnswer is the verdict on Graph's answer to GET /organization.
func organizationAnswer(status int, body []byte) *sdk.TestResponse {
	switch status {
	case http.StatusOK:
		var orgs struct {
			Value []struct {
				ID          string `json:"id"`
				DisplayName string `json:"displayName"`
			} `json:"value"`
		}
		if json.Unmarshal(body, &orgs) != nil || len(orgs.Value) == 0 || orgs.Value[0].DisplayName == "" {
			return &sdk.TestResponse{OK: true, Message: "Connected to Microsoft Graph."}
		}
		org := orgs.Value[0]
		msg := "Connected to Microsoft Graph for the organization " + org.DisplayName
		if org.ID != "" {
			msg += " (tenant " + org.ID + ")"
		}
		return &sdk.TestResponse{OK: true, Message: msg + "."}
	case http.StatusUnauthorized:
		return &sdk.TestResponse{OK: false, Message: "Microsoft Graph rejected the access token" + graphError(body) +
			": it expired, was revoked, or was issued for another resource than Microsoft Graph (check the scopes)."}
	case http.StatusForbidden:
		return &sdk.TestResponse{OK: false, Message: "Microsoft Graph refused to read the organization" + graphError(body) +
			": the app needs the application permission Organization.Read.All with admin consent. In the app registration: " +
			"API permissions → Add a permission → Microsoft Graph → Application permissions → Organization.Read.All, then Grant admin consent."}
	}
	return nil // "<host> answered <status>."
}

// graphCode is the shape of a Graph error code worth quoting.
var graphCode = regexp.MustCompile(`^[A-Za-z0-9_.-]{1,64}$`)

// graphError returns " (<code>)" for a Graph error body such as
// {"error":{"code":"Authorization_RequestDenied","message":"…"}}, or "". Only
// the code is quoted: the message is free text.
func graphError(body []byte) string {
	var e struct {
		Error struct {
			Code string `json:"code"`
		} `json:"error"`
	}
	if json.Unmarshal(body, &e) != nil || !graphCode.MatchString(e.Error.Code) {
		return ""
	}
	return " (" + e.Error.Code + ")"
}
