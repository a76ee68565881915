package connection

import (
	"context"

	"github.com/plugboard/plugboard/ent"
	"github.com/plugboard/plugboard/internal/auth"
)

// Access manages what lets callers in: the organization's API tokens and
// the public keys that verify its embedding tokens. It authorizes each
// call through the table and leaves the work to internal/auth, which
// checks no roles.
type Access struct {
	DB *ent.Client
	// Tokens and Embedding are the server's own, so a revocation drops
	// what their caches remember and is told to every replica. Nil makes
	// a fresh one per call.
	Tokens    *auth.Tokens
	Embedding *auth.Embedding
}

func (a *Access) tokens() *auth.Tokens {
	if a.Tokens != nil {
		return a.Tokens
	}
	return &auth.Tokens{DB: a.DB}
}

func (a *Access) embedding() *auth.Embedding {
	if a.Embedding != nil {
		return a.Embedding
	}
	return &auth.Embedding{DB: a.DB}
}

// IssueAPIToken creates an API token of role for the viewer's
// organization and returns its plaintext, shown once.
func (a *Access) IssueAPIToken(ctx context.Context, role auth.Role, name string) (string, *ent.APIToken, error) {
	if _, err := Authorize(ctx, ManageTokens); err != nil {
		return "", nil, err
	}
	return a.tokens().Issue(ctx, role, name)
}

// RevokeAPIToken revokes an API token of the viewer's organization and
// returns it as it now is.
func (a *Access) RevokeAPIToken(ctx context.Context, id int) (*ent.APIToken, error) {
	if _, err := Authorize(ctx, ManageTokens); err != nil {
		return nil, err
	}
	if err := a.tokens().Revoke(ctx, id); err != nil {
		return nil, err
	}
	return a.DB.APIToken.Get(ctx, id)
}

// RegisterSigningKey stores a public key that verifies the embedding
// tokens of the viewer's organization.
func (a *Access) RegisterSigningKey(ctx context.Context, in auth.RegisterKeyInput) (*ent.SigningKey, error) {
	if _, err := Authorize(ctx, ManageSigningKeys); err != nil {
		return nil, err
	}
	return a.embedding().RegisterKey(ctx, in)
}

// RevokeSigningKey revokes a signing key of the viewer's organization and
// returns it as it now is.
func (a *Access) RevokeSigningKey(ctx context.Context, id int) (*ent.SigningKey, error) {
	if _, err := Authorize(ctx, ManageSigningKeys); err != nil {
		return nil, err
	}
	if err := a.embedding().RevokeKey(ctx, id); err != nil {
		return nil, err
	}
	return a.DB.SigningKey.Get(ctx, id)
}
