// Package sdk is the public SDK for plugboard plugins.
//
// A plugin declares one or more connection types (their input fields, auth
// kind and OAuth 2.0 spec) and validates and tests values for them. A
// plugin author declares a Plugin, whose Types each hold a declaration and
// the type's own Validate and Test, and calls Serve from main; the SDK
// dispatches by type key, resolves templates, runs the declared checks and
// redacts secrets. Provider is the low-level interface underneath, for a
// plugin that needs more control. The protobuf messages, the go-plugin
// handshake and the gRPC adapters stay inside the SDK.
package sdk

import (
	"context"
	"net/http"
	"time"
)

// ProtocolVersion is the major version of the plugboard plugin protocol. It
// is part of the go-plugin handshake: a host and a plugin only talk when they
// agree on it.
const ProtocolVersion = 1

// AuthKind says how a connection type authenticates.
type AuthKind string

// Auth kinds.
const (
	AuthAPIKey                  AuthKind = "API_KEY"
	AuthBasic                   AuthKind = "BASIC"
	AuthOAuth2AuthorizationCode AuthKind = "OAUTH2_AUTHORIZATION_CODE"
	AuthOAuth2ClientCredentials AuthKind = "OAUTH2_CLIENT_CREDENTIALS"
	AuthCustom                  AuthKind = "CUSTOM"
)

// InputType is the type of one input field.
type InputType string

// Input types.
const (
	InputString   InputType = "STRING"
	InputPassword InputType = "PASSWORD"
	InputText     InputType = "TEXT"
	InputBoolean  InputType = "BOOLEAN"
	InputPicklist InputType = "PICKLIST"
	InputURL      InputType = "URL"
	InputNumber   InputType = "NUMBER"
	InputJSON     InputType = "JSON"
	// InputTemplate is an input whose value is computed from other inputs by
	// its Template, such as "https://{{#shop}}.myshopify.com/admin".
	InputTemplate InputType = "TEMPLATE"
)

// Collection says whether an input holds one value or a list.
type Collection string

// Collections. A VALUE_LIST value is a JSON array of strings; a
// KEY_VALUE_LIST value is a JSON array of {"key": ..., "value": ...} objects.
const (
	CollectionNone         Collection = "NONE"
	CollectionValueList    Collection = "VALUE_LIST"
	CollectionKeyValueList Collection = "KEY_VALUE_LIST"
)

// Option is one choice of a PICKLIST input.
type Option struct {
	Value string
	Label string
}

// Input declares one input field of a connection type.
type Input struct {
	Key         string
	Label       string
	Type        InputType
	Required    bool
	Default     string
	Example     string
	Placeholder string
	// Description is the help text (comments) shown beside the field.
	Description string
	// Hidden inputs are not shown to customers in a config wizard: an
	// organization fills them (an OAuth 2.0 client id, an authorize URL).
	Hidden bool
	// Secret inputs are write-only: stored encrypted, never returned.
	Secret  bool
	Options []Option
	// Pattern is a Go (RE2) regular expression the whole value must match.
	Pattern string
	// PatternMessage is the sentence shown to the person filling the form
	// when a value does not match Pattern, such as "Enter the store name
	// as in acme.myshopify.com: lower-case letters, digits and dashes.".
	// Without it the message is "<Label> is not in the expected format.":
	// a pattern is never shown to anyone.
	PatternMessage string
	Collection     Collection
	// OnPremControlled inputs (host, port) may be replaced by an on-premise
	// agent's address.
	OnPremControlled bool
	// Template is set for TEMPLATE inputs; each {{#key}} slot names another
	// input of the same type.
	Template string
}

// PKCEMethod is the PKCE code challenge method of an OAuth 2.0 type.
type PKCEMethod string

// PKCE methods.
const (
	PKCES256  PKCEMethod = "S256"
	PKCEPlain PKCEMethod = "PLAIN"
	PKCENone  PKCEMethod = "NONE"
)

// TokenAuthStyle says how the client id and secret reach the token endpoint.
type TokenAuthStyle string

// Token auth styles.
const (
	AuthStyleHeader TokenAuthStyle = "HEADER"
	AuthStyleBody   TokenAuthStyle = "BODY"
)

// OAuth2Spec describes the OAuth 2.0 endpoints of a connection type. Every
// string field may hold {{#key}} slots that name inputs of the type, so an
// organization can point a type at another host through an input's value.
type OAuth2Spec struct {
	AuthorizeURL string
	TokenURL     string
	RevokeURL    string
	// Scopes are the scopes to request, separated by ScopeSeparator.
	Scopes         string
	ScopeSeparator string // default " "
	PKCE           PKCEMethod
	AuthStyle      TokenAuthStyle
	// ClientIDInput and ClientSecretInput name the inputs that hold the
	// client credentials (default "clientId" and "clientSecret").
	ClientIDInput        string
	ClientSecretInput    string
	ExtraAuthorizeParams map[string]string
	ExtraTokenParams     map[string]string
	// RefreshMargin overrides the host's refresh margin for this type when
	// it is not zero.
	RefreshMargin time.Duration
}

// MaxIconSVG bounds a connection type's IconSVG.
const MaxIconSVG = 32 << 10

// ConnectionType is one connection type a plugin declares.
type ConnectionType struct {
	// Key is unique across all plugins, conventionally "<plugin>.<name>"
	// such as "asana.apiKey".
	Key         string
	Label       string
	Description string
	IconURL     string
	// IconSVG is the type's icon: an SVG document of at most MaxIconSVG
	// bytes, with no script, event handler or external reference. The
	// host serves it from its own origin (wizards and catalogs show it
	// offline); embed it with go:embed.
	IconSVG  []byte
	AuthKind AuthKind
	Inputs   []Input
	OAuth2   *OAuth2Spec
	// HTTP says how the host's credential proxy calls the type's API, so
	// that an integration runtime calls it without holding the credential.
	// Types without it cannot be proxied.
	HTTP          *HTTPSpec
	SchemaVersion int
	// TestThroughHost says the type's Test makes its HTTP calls through the
	// host (TestRequest.HTTP), which injects the credential: the plugin
	// then never receives the values of secret inputs nor the token, and
	// its Validate gets the other values only (ValidateRequest.
	// SecretsWithheld), the host checking the secret ones against their
	// declarations. A host older than protocol 1.2 ignores it and sends the
	// values as before.
	TestThroughHost bool
}

// InjectStyle is how the credential proxy puts a credential on a call.
type InjectStyle string

// Injection styles.
const (
	// InjectBearer sets "Authorization: Bearer <token>": the OAuth 2.0
	// access token, or the value of HTTPSpec.Input for other types.
	InjectBearer InjectStyle = "BEARER"
	// InjectHeader sets the header HTTPSpec.Header to HTTPSpec.Prefix
	// followed by the value of HTTPSpec.Input (e.g. X-Shopify-Access-Token).
	InjectHeader InjectStyle = "HEADER"
	// InjectBasic sets HTTP basic auth from HTTPSpec.UsernameInput and
	// HTTPSpec.PasswordInput.
	InjectBasic InjectStyle = "BASIC"
	// InjectQuery adds the query parameter HTTPSpec.QueryParam with the
	// value of HTTPSpec.Input.
	InjectQuery InjectStyle = "QUERY"
)

// HTTPSpec says how the credential proxy calls a connection type's API.
type HTTPSpec struct {
	// BaseURL is the upstream URL that proxied paths are appended to; a
	// template whose {{#key}} slots name inputs, such as
	// "https://{{#shop}}.myshopify.com/admin/api".
	BaseURL string
	// AllowedHosts are the hosts the rendered base URL may name when its
	// host comes from an input: exact names, or "*.example.com" for any
	// name below example.com. Empty: any host the credential's values
	// name (the address rules of the proxy still apply).
	AllowedHosts []string
	// BaseURLOverrideInput optionally names an input (hidden, filled by
	// the organization) whose value, when set, replaces BaseURL: a test
	// server or a national cloud. AllowedHosts still apply to it.
	BaseURLOverrideInput string
	Inject               InjectStyle
	// Input names the input whose value is injected (BEARER for non-OAuth
	// types, QUERY, HEADER; HEADER of an OAuth 2.0 type without Input
	// injects the access token).
	Input string
	// Header and Prefix are the header name and value prefix of HEADER.
	Header string
	Prefix string
	// UsernameInput and PasswordInput name the inputs of BASIC.
	UsernameInput string
	PasswordInput string
	// QueryParam is the query parameter of QUERY.
	QueryParam string
	// RateLimitResetHeader optionally names the answer header that says in
	// how many seconds a rate-limited call may be retried, when the API
	// sends no Retry-After.
	RateLimitResetHeader string
}

// Description is what Describe returns: the plugin and its types.
type Description struct {
	Key             string
	Version         string
	ConnectionTypes []ConnectionType
}

// Severity of a diagnostic.
type Severity string

// Severities.
const (
	SeverityError   Severity = "ERROR"
	SeverityWarning Severity = "WARNING"
)

// Diagnostic is one finding of Validate. Field names the input it is about,
// or is empty for the connection as a whole.
type Diagnostic struct {
	Field    string
	Severity Severity
	Summary  string
	Detail   string
}

// Token is an OAuth 2.0 token handed to Test.
type Token struct {
	AccessToken  string
	TokenType    string
	RefreshToken string
	Expiry       time.Time
	Extra        map[string]string
}

// ValidateRequest asks a plugin to check values of one connection type.
type ValidateRequest struct {
	TypeKey string
	Values  map[string]string
	// SecretsWithheld says the values of secret inputs are absent on
	// purpose (a type that tests through the host): the host checks them,
	// and the plugin checks the others.
	SecretsWithheld bool
}

// ValidateResponse carries the diagnostics of a Validate call; no
// diagnostic of severity ERROR means the values are valid.
type ValidateResponse struct {
	Diagnostics []Diagnostic
}

// TestRequest asks a plugin to check values live against the service.
type TestRequest struct {
	TypeKey string
	Values  map[string]string
	Token   *Token
	// HTTP, when set, is the client the Test sends its requests with: in
	// the plugin, a client whose requests go to the host, which injects the
	// credential (the type's TestThroughHost); Values then hold no secret
	// input and Token is nil. A host sets it to the client that sends the
	// plugin's requests on. Each request and response body is limited to
	// MaxHostHTTPBody.
	HTTP *http.Client
}

// ThroughHost reports whether the Test runs through the host: its requests
// go out through HTTP, with the credential the host injects, and the
// request holds no secret value.
func (r *TestRequest) ThroughHost() bool { return r.HTTP != nil }

// TestResponse is the outcome of a live test.
type TestResponse struct {
	OK      bool
	Message string
}

// Provider is what a plugin implements. Every method gets a context that
// carries the host's deadline.
type Provider interface {
	Describe(ctx context.Context) (*Description, error)
	Validate(ctx context.Context, req *ValidateRequest) (*ValidateResponse, error)
	Test(ctx context.Context, req *TestRequest) (*TestResponse, error)
}
