// Package schematype holds the Go types of the JSON columns of the ent
// schema: what a plugin declared about a connection type, and per-input
// settings of a connection. They are plain data; the rules that use them live
// in internal/connection.
package schematype

// InputType is the type of one declared input.
type InputType string

// Collection says whether an input holds one value or a list.
type Collection string

// Option is one choice of a PICKLIST input.
type Option struct {
	Value string `json:"value"`
	Label string `json:"label"`
}

// Input is one input field declared by a plugin for a connection type.
type Input struct {
	Key              string     `json:"key"`
	Label            string     `json:"label"`
	Type             InputType  `json:"type"`
	Required         bool       `json:"required,omitempty"`
	Default          string     `json:"default,omitempty"`
	Example          string     `json:"example,omitempty"`
	Placeholder      string     `json:"placeholder,omitempty"`
	Description      string     `json:"description,omitempty"`
	Shown            bool       `json:"shown"`
	Secret           bool       `json:"secret,omitempty"`
	Options          []Option   `json:"options,omitempty"`
	Pattern          string     `json:"pattern,omitempty"`
	PatternMessage   string     `json:"patternMessage,omitempty"` // shown when a value does not match Pattern
	Collection       Collection `json:"collection,omitempty"`
	OnPremControlled bool       `json:"onPremControlled,omitempty"`
	Template         string     `json:"template,omitempty"`
}

// OAuth2Spec is the OAuth 2.0 spec a plugin declared for a connection type.
// String fields may hold {{#key}} slots naming inputs.
type OAuth2Spec struct {
	AuthorizeURL         string            `json:"authorizeUrl,omitempty"`
	TokenURL             string            `json:"tokenUrl,omitempty"`
	RevokeURL            string            `json:"revokeUrl,omitempty"`
	Scopes               string            `json:"scopes,omitempty"`
	ScopeSeparator       string            `json:"scopeSeparator,omitempty"`
	PKCEMethod           string            `json:"pkceMethod,omitempty"`
	AuthStyle            string            `json:"authStyle,omitempty"`
	ClientIDInput        string            `json:"clientIdInput,omitempty"`
	ClientSecretInput    string            `json:"clientSecretInput,omitempty"`
	ExtraAuthorizeParams map[string]string `json:"extraAuthorizeParams,omitempty"`
	ExtraTokenParams     map[string]string `json:"extraTokenParams,omitempty"`
	RefreshMarginSeconds int64             `json:"refreshMarginSeconds,omitempty"`
}

// HTTPSpec is how the credential proxy calls a connection type's API, as
// its plugin declared it. String fields may hold {{#key}} slots naming
// inputs.
type HTTPSpec struct {
	BaseURL      string   `json:"baseUrl"`
	AllowedHosts []string `json:"allowedHosts,omitempty"`
	// BaseURLOverrideInput names an input that, when set, replaces BaseURL.
	BaseURLOverrideInput string `json:"baseUrlOverrideInput,omitempty"`
	// Inject is BEARER, HEADER, BASIC or QUERY.
	Inject        string `json:"inject"`
	Input         string `json:"input,omitempty"`
	Header        string `json:"header,omitempty"`
	Prefix        string `json:"prefix,omitempty"`
	UsernameInput string `json:"usernameInput,omitempty"`
	PasswordInput string `json:"passwordInput,omitempty"`
	QueryParam    string `json:"queryParam,omitempty"`
	// RateLimitResetHeader names the answer header that says when a
	// rate-limited call may be retried (seconds), besides Retry-After.
	RateLimitResetHeader string `json:"rateLimitResetHeader,omitempty"`
}

// InputSource says who fills an input of an ORGANIZATION_CUSTOMER
// connection: the organization once (ORG) or per customer (CUSTOMER).
type InputSource string

// Input sources.
const (
	InputSourceOrg      InputSource = "ORG"
	InputSourceCustomer InputSource = "CUSTOMER"
)

// InputSetting is a connection's setting for one input of its type.
type InputSetting struct {
	Source InputSource `json:"source,omitempty"`
	// Shown overrides the declaration's visibility to customers when set.
	Shown *bool `json:"shown,omitempty"`
}

// SecretMeta says when a secret input was last set, without its value.
type SecretMeta struct {
	UpdatedAt int64 `json:"updatedAt"` // unix milliseconds
}

// FieldError is a problem with one input of a rejected save.
type FieldError struct {
	Field   []string `json:"field"`
	Code    string   `json:"code"`
	Message string   `json:"message"`
}
