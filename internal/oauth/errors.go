package oauth

import (
	"errors"
	"fmt"
	"strings"
)

// Errors the API layer maps to GraphQL error codes. Every error this
// package returns wraps at most one of them, and no error text ever carries
// a token, a refresh token, a PKCE verifier, a client secret or a code.
var (
	// ErrNotFound: the credential does not exist or is not the viewer's.
	ErrNotFound = errors.New("not found")
	// ErrNotOAuth: the credential's connection type does not use the OAuth
	// 2.0 flow asked for.
	ErrNotOAuth = errors.New("the connection type does not use this OAuth 2.0 flow")
	// ErrMisconfigured: the type's OAuth 2.0 settings or the credential's
	// values cannot make a request (no client id, a token URL naming an
	// input without a value, no callback URL configured, ...).
	ErrMisconfigured = errors.New("the OAuth 2.0 settings are incomplete")
	// ErrRedirectNotAllowed: a success or failure redirect URL is not on the
	// organization's redirect allow-list.
	ErrRedirectNotAllowed = errors.New("the redirect URL is not on the organization's redirect allow-list")
	// ErrStateInvalid: the callback's state is missing, unknown, or does
	// not belong to the credential's organization.
	ErrStateInvalid = errors.New("the authorization state is not valid")
	// ErrStateExpired: the callback came after the state expired.
	ErrStateExpired = errors.New("the authorization state has expired")
	// ErrStateUsed: the state was already used once.
	ErrStateUsed = errors.New("the authorization state was already used")
	// ErrNotConnected: the credential holds no token yet (or was
	// disconnected): it must be connected first.
	ErrNotConnected = errors.New("the credential is not connected: authorize it first")
	// ErrReconnectNeeded: the provider refused the grant (invalid_grant,
	// revoked) or refreshing failed too often; the credential is FAILED
	// until the customer connects again.
	ErrReconnectNeeded = errors.New("the credential must be reconnected")
	// ErrProvider: the provider failed or refused a request in a way that
	// may pass (5xx, timeout, network error) or that the caller should
	// show; a *ProviderError says what happened.
	ErrProvider = errors.New("the OAuth 2.0 provider failed")
)

// RedirectError is a success or failure redirect URL that is not allowed.
// It wraps ErrRedirectNotAllowed and names the input at fault.
type RedirectError struct {
	// Field is the input: "redirectURL" or "failureURL".
	Field string
	// Err says why; it wraps ErrRedirectNotAllowed.
	Err error
}

func (e *RedirectError) Error() string {
	msg := e.Err.Error()
	if e.Field == "failureURL" {
		msg = strings.Replace(msg, "the redirect URL", "the failure URL", 1)
	}
	return msg
}

// Unwrap lets errors.Is see ErrRedirectNotAllowed.
func (e *RedirectError) Unwrap() error { return e.Err }

// ProviderError is a failed call to a provider's token or revoke endpoint,
// described without any secret.
type ProviderError struct {
	// Code is a stable reason: the provider's OAuth 2.0 error code
	// (invalid_grant, invalid_client, ...) or one of timeout, network,
	// http_<status>, bad_response.
	Code string
	// Message says what happened, for people; sanitized and clipped.
	Message string
	// Permanent reports that retrying cannot help: the customer must
	// reconnect (or fix the client credentials).
	Permanent bool
}

func (e *ProviderError) Error() string { return e.Message }

// Unwrap lets errors.Is see ErrProvider, and ErrReconnectNeeded for a
// permanent failure.
func (e *ProviderError) Unwrap() []error {
	if e.Permanent {
		return []error{ErrProvider, ErrReconnectNeeded}
	}
	return []error{ErrProvider}
}

// CredentialError is an error about one credential. Its text names the
// credential by its row id, for the log; an API names it to its caller by
// the id the caller knows (the global id) and Err's text.
type CredentialError struct {
	ID  int
	Err error
}

func (e *CredentialError) Error() string { return fmt.Sprintf("credential %d: %v", e.ID, e.Err) }

// Unwrap lets errors.Is see the error of this package that Err wraps.
func (e *CredentialError) Unwrap() error { return e.Err }

func credentialErr(id int, err error) error { return &CredentialError{ID: id, Err: err} }

func misconfigured(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrMisconfigured, fmt.Sprintf(format, args...))
}
