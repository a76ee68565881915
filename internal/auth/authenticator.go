package auth

import (
	"context"
	"strings"
)

// apiTokenPrefix starts every API token; anything else is an embedding
// token.
const apiTokenPrefix = "pb_"

// Authenticator turns any bearer token into a viewer: API tokens
// (ORG_ADMIN, RUNTIME) by their "pb_" prefix, anything else as an
// embedding token (CUSTOMER_USER).
type Authenticator struct {
	Tokens *Tokens
	// Embedding verifies embedding tokens; nil refuses them.
	Embedding *Embedding
}

// Authenticate returns the viewer of bearer, or ErrUnauthenticated.
func (a *Authenticator) Authenticate(ctx context.Context, bearer string) (*Viewer, error) {
	if bearer == "" {
		return nil, ErrUnauthenticated
	}
	if strings.HasPrefix(bearer, apiTokenPrefix) {
		return a.Tokens.Authenticate(ctx, bearer)
	}
	if a.Embedding == nil {
		return nil, ErrUnauthenticated
	}
	return a.Embedding.Authenticate(ctx, bearer)
}
