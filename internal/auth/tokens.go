package auth

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/plugboard/plugboard/ent"
	"github.com/plugboard/plugboard/ent/apitoken"
	"github.com/plugboard/plugboard/internal/secrets"
)

// Token prefixes say what a token is when it turns up in a log or a
// secret scanner.
const (
	adminPrefix   = "pb_admin_"
	runtimePrefix = "pb_rt_"
)

// Tokens issues and checks API tokens. Only a token's SHA-256 is stored.
type Tokens struct {
	DB  *ent.Client
	Now func() time.Time
}

func (t *Tokens) now() time.Time {
	if t.Now != nil {
		return t.Now()
	}
	return time.Now().UTC()
}

// Create issues a new token of role for the organization and returns its
// plaintext, shown once.
func (t *Tokens) Create(ctx context.Context, orgID int, role Role, name string) (string, *ent.APIToken, error) {
	var prefix string
	var r apitoken.Role
	switch role {
	case RoleOrgAdmin:
		prefix, r = adminPrefix, apitoken.RoleORG_ADMIN
	case RoleRuntime:
		prefix, r = runtimePrefix, apitoken.RoleRUNTIME
	default:
		return "", nil, fmt.Errorf("tokens of role %s are not API tokens", role)
	}
	plain, err := secrets.RandomToken(prefix, 32)
	if err != nil {
		return "", nil, err
	}
	row, err := t.DB.APIToken.Create().
		SetOrganizationID(orgID).
		SetRole(r).
		SetName(name).
		SetTokenHash(secrets.HashToken(plain)).
		Save(SystemContext(ctx))
	if err != nil {
		return "", nil, fmt.Errorf("storing token: %w", err)
	}
	return plain, row, nil
}

// Authenticate returns the viewer of a bearer token, or ErrUnauthenticated.
func (t *Tokens) Authenticate(ctx context.Context, bearer string) (*Viewer, error) {
	if !strings.HasPrefix(bearer, adminPrefix) && !strings.HasPrefix(bearer, runtimePrefix) {
		return nil, ErrUnauthenticated
	}
	sys := SystemContext(ctx)
	row, err := t.DB.APIToken.Query().
		Where(apitoken.TokenHash(secrets.HashToken(bearer))).
		Only(sys)
	if ent.IsNotFound(err) {
		return nil, ErrUnauthenticated
	}
	if err != nil {
		return nil, fmt.Errorf("looking up token: %w", err)
	}
	now := t.now()
	if row.RevokedAt != nil || (row.ExpiresAt != nil && !row.ExpiresAt.After(now)) {
		return nil, ErrUnauthenticated
	}
	// Record use at most once a minute, so reads stay reads.
	if row.LastUsedAt == nil || now.Sub(*row.LastUsedAt) > time.Minute {
		_ = t.DB.APIToken.UpdateOneID(row.ID).SetLastUsedAt(now).Exec(sys)
	}
	role := RoleOrgAdmin
	if row.Role == apitoken.RoleRUNTIME {
		role = RoleRuntime
	}
	return &Viewer{
		Role:           role,
		OrganizationID: row.OrganizationID,
		TokenID:        row.ID,
		Actor:          "token:" + strconv.Itoa(row.ID),
	}, nil
}

// Revoke revokes a token of the viewer's organization.
func (t *Tokens) Revoke(ctx context.Context, id int) error {
	v, err := RequireAdmin(ctx)
	if err != nil {
		return err
	}
	// Updates are not filtered by the tenant interceptor: name the
	// organization explicitly.
	n, err := t.DB.APIToken.Update().
		Where(apitoken.ID(id), apitoken.OrganizationID(v.OrganizationID), apitoken.RevokedAtIsNil()).
		SetRevokedAt(t.now()).
		Save(ctx)
	if err != nil {
		return err
	}
	if n == 0 {
		return fmt.Errorf("token %d: %w", id, ErrForbidden)
	}
	return nil
}
