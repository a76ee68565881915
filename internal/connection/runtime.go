package connection

import (
	"context"
	"errors"
	"time"

	"github.com/plugboard/plugboard/ent"
	"github.com/plugboard/plugboard/ent/credential"
	"github.com/plugboard/plugboard/internal/oauth"
)

// RuntimeRead is a credential as an integration runtime reads it: its
// resolved values (secrets included) and, for OAuth 2.0 types, an access
// token.
type RuntimeRead struct {
	Credential *ent.Credential
	Type       *ent.ConnectionType
	Values     map[string]string
	// Token is set for OAuth 2.0 types.
	Token *oauth.Token
}

// NotLiveError refuses the runtime read of a credential without a token
// whose values are not ACTIVE. It wraps ErrConflict.
type NotLiveError struct {
	Status credential.Status
	Detail string
}

func (e *NotLiveError) Error() string {
	return "the credential is " + string(e.Status) + ": " + e.Detail
}

// Unwrap lets errors.Is see ErrConflict.
func (e *NotLiveError) Unwrap() error { return ErrConflict }

// TokenError refuses the runtime read of an OAuth 2.0 credential whose
// access token could not be had; Err is the engine's (a provider failure,
// a reconnect needed, ...).
type TokenError struct{ Err error }

func (e *TokenError) Error() string { return e.Err.Error() }

// Unwrap lets errors.Is see the engine's error.
func (e *TokenError) Unwrap() error { return e.Err }

// errRuntimeInternal is a runtime read that failed on plugboard's side; the
// cause is logged, never shown.
var errRuntimeInternal = errors.New("internal error")

// MayReadRuntime reports whether the viewer of ctx may read credential
// values (the authorization table: only RUNTIME tokens may).
func MayReadRuntime(ctx context.Context) error {
	_, err := Authorize(ctx, ReadRuntimeValues)
	return err
}

// ReadForRuntime returns credential id as an integration runtime reads it:
// for OAuth 2.0 types with an access token valid for at least minValidity
// (<= 0: the refresh margin); other types must be ACTIVE. Every read is
// audited. This is the one place secrets leave plugboard.
func (s *Service) ReadForRuntime(ctx context.Context, id int, minValidity time.Duration) (*RuntimeRead, error) {
	if err := MayReadRuntime(ctx); err != nil {
		return nil, err
	}
	r, err := s.readRuntime(ctx, id, minValidity)
	if err != nil {
		return nil, err
	}
	if r.Values, err = s.runtimeValues(ctx, r.Credential, r.Type, r.Values); err != nil {
		return nil, err
	}
	if err := s.AuditRuntimeRead(ctx, r.Credential); err != nil {
		s.log().Error("runtime read: audit", "credential", r.Credential.ID, "err", err)
		return nil, errRuntimeInternal
	}
	return r, nil
}

// readRuntime is the runtime read without its authorization, audit and
// on-prem address (the callers' own): the credential in the viewer's
// tenant, its resolved values and, for OAuth 2.0 types, a fresh access
// token; other types must be ACTIVE.
func (s *Service) readRuntime(ctx context.Context, id int, minValidity time.Duration) (*RuntimeRead, error) {
	c, err := s.runtimeCredential(ctx, id)
	if err != nil {
		return nil, err
	}
	ct, values, err := s.Resolved(ctx, c)
	if err != nil {
		s.log().Error("runtime read: resolving values", "credential", c.ID, "err", err)
		return nil, errRuntimeInternal
	}
	r := &RuntimeRead{Credential: c, Type: ct, Values: values}
	switch {
	case isOAuth(ct):
		if r.Token, err = s.token(ctx, c.ID, minValidity, c); err != nil {
			return nil, &TokenError{Err: err}
		}
	case c.Status != credential.StatusACTIVE:
		return nil, &NotLiveError{Status: c.Status, Detail: c.StatusDetail}
	}
	return r, nil
}
