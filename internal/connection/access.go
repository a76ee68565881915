package connection

import (
	"context"
	"fmt"
	"time"

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
// organization, records it in the audit log, and returns its plaintext,
// shown once.
func (a *Access) IssueAPIToken(ctx context.Context, role auth.Role, name string) (string, *ent.APIToken, error) {
	v, err := Authorize(ctx, ManageTokens)
	if err != nil {
		return "", nil, err
	}
	plain, row, err := a.tokens().Issue(ctx, role, name)
	if err != nil {
		return "", nil, err
	}
	if err := a.audit(ctx, a.DB, v, "api_token.created", fmt.Sprintf("%s token %d created", role, row.ID)); err != nil {
		return "", nil, err
	}
	return plain, row, nil
}

// RevokeAPIToken revokes an API token of the viewer's organization,
// records it in the audit log unless it was revoked already, and returns
// it as it now is.
func (a *Access) RevokeAPIToken(ctx context.Context, id int) (*ent.APIToken, error) {
	v, err := Authorize(ctx, ManageTokens)
	if err != nil {
		return nil, err
	}
	revoked, err := a.tokens().Revoke(ctx, id)
	if err != nil {
		return nil, err
	}
	if revoked {
		if err := a.audit(ctx, a.DB, v, "api_token.revoked", fmt.Sprintf("token %d revoked", id)); err != nil {
			return nil, err
		}
	}
	return a.DB.APIToken.Get(ctx, id)
}

// RegisterSigningKey stores a public key that verifies the embedding
// tokens of the viewer's organization, with its audit entry in the same
// transaction.
func (a *Access) RegisterSigningKey(ctx context.Context, in auth.RegisterKeyInput) (*ent.SigningKey, error) {
	v, err := Authorize(ctx, ManageSigningKeys)
	if err != nil {
		return nil, err
	}
	var key *ent.SigningKey
	err = inTx(ctx, a.DB, func(tx *ent.Tx) error {
		if key, err = a.embedding().RegisterKey(ctx, tx.Client(), in); err != nil {
			return err
		}
		return a.audit(ctx, tx.Client(), v, "signing_key.registered",
			fmt.Sprintf("signing key %s (%s) registered", in.Kid, in.Algorithm))
	})
	if err != nil {
		return nil, err
	}
	return key.Unwrap(), nil
}

// RevokeSigningKey revokes a signing key of the viewer's organization,
// records it in the audit log unless it was revoked already, and returns
// it as it now is.
func (a *Access) RevokeSigningKey(ctx context.Context, id int) (*ent.SigningKey, error) {
	v, err := Authorize(ctx, ManageSigningKeys)
	if err != nil {
		return nil, err
	}
	revoked, err := a.embedding().RevokeKey(ctx, id)
	if err != nil {
		return nil, err
	}
	if revoked {
		if err := a.audit(ctx, a.DB, v, "signing_key.revoked", fmt.Sprintf("signing key %d revoked", id)); err != nil {
			return nil, err
		}
	}
	return a.DB.SigningKey.Get(ctx, id)
}

// audit writes one entry of the viewer's organization's log through the
// domain's one writer.
func (a *Access) audit(ctx context.Context, db *ent.Client, v *auth.Viewer, action, message string) error {
	err := writeAudit(ctx, db, time.Now().UTC(), auditEntry{orgID: v.OrganizationID, actor: v.Actor, action: action, message: message})
	if err != nil {
		return fmt.Errorf("auditing %s: %w", action, err)
	}
	return nil
}
