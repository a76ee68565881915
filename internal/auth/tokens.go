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
//
// A token that checked out is remembered for CacheTTL, so a busy client
// costs no query per request. Revoking through this process forgets it at
// once; Revocations tells the other replicas, which forget it as soon as
// they hear of it, and serve nothing remembered while they cannot hear.
type Tokens struct {
	DB  *ent.Client
	Now func() time.Time
	// Revocations, when set, carries revocations to every replica.
	Revocations Revocations

	cache tokenCache
}

// NewTokens returns the API tokens of db. Revoking or expiring a token
// through any client of db (another Tokens, the command line, a direct
// update) makes this one forget it at once.
func NewTokens(db *ent.Client) *Tokens {
	t := &Tokens{DB: db}
	db.APIToken.Use(func(next ent.Mutator) ent.Mutator {
		return ent.MutateFunc(func(ctx context.Context, m ent.Mutation) (ent.Value, error) {
			v, err := next.Mutate(ctx, m)
			if am, ok := m.(*ent.APITokenMutation); ok && err == nil && !m.Op().Is(ent.OpCreate) {
				_, revoked := am.RevokedAt()
				_, expires := am.ExpiresAt()
				if revoked || expires || m.Op().Is(ent.OpDelete|ent.OpDeleteOne) {
					t.forgetAll()
				}
			}
			return v, err
		})
	})
	return t
}

// CacheTTL is how long a checked token is trusted without a query.
const CacheTTL = 5 * time.Second

// maxCachedTokens bounds the token cache; past it the cache starts over.
const maxCachedTokens = 10000

// Forget drops what is remembered of API token id, or of every token
// when id is 0.
func (t *Tokens) Forget(id int) { t.cache.forget(id) }

func (t *Tokens) forgetAll() { t.cache.forget(0) }

func (t *Tokens) now() time.Time {
	if t.Now != nil {
		return t.Now()
	}
	return time.Now().UTC()
}

// Create issues a new token of role for the organization and returns its
// plaintext, shown once.
func (t *Tokens) Create(ctx context.Context, orgID int, role Role, name string) (string, *ent.APIToken, error) {
	kind, ok := apiTokenKindOf(role)
	if !ok {
		return "", nil, fmt.Errorf("tokens of role %s are not API tokens", role)
	}
	plain, err := secrets.RandomToken(kind.prefix, 32)
	if err != nil {
		return "", nil, err
	}
	row, err := t.DB.APIToken.Create().
		SetOrganizationID(orgID).
		SetRole(kind.stored).
		SetName(name).
		SetTokenHash(secrets.HashToken(plain)).
		Save(OrganizationContext(ctx, orgID))
	if err != nil {
		return "", nil, fmt.Errorf("storing token: %w", err)
	}
	return plain, row, nil
}

// Issue creates a token of role for the viewer's organization and returns
// its plaintext, shown once. The caller decides who may issue and records
// it in the audit log (connection.Access).
func (t *Tokens) Issue(ctx context.Context, role Role, name string) (string, *ent.APIToken, error) {
	v, err := Require(ctx)
	if err != nil {
		return "", nil, err
	}
	if _, ok := apiTokenKindOf(role); !ok {
		return "", nil, &InputError{Field: "role", Code: CodeInvalidValue, Message: "An API token is ORG_ADMIN or RUNTIME."}
	}
	if len(name) > maxTokenNameLen {
		return "", nil, &InputError{Field: "name", Code: CodeInvalidValue,
			Message: fmt.Sprintf("A token name is at most %d characters.", maxTokenNameLen)}
	}
	return t.Create(ctx, v.OrganizationID, role, name)
}

// maxTokenNameLen bounds a token's name.
const maxTokenNameLen = 200

// Authenticate returns the viewer of a bearer token, or ErrUnauthenticated.
func (t *Tokens) Authenticate(ctx context.Context, bearer string) (*Viewer, error) {
	if !strings.HasPrefix(bearer, adminPrefix) && !strings.HasPrefix(bearer, runtimePrefix) {
		return nil, ErrUnauthenticated
	}
	hash := secrets.HashToken(bearer)
	now := t.now()
	if trusted(t.Revocations) {
		if v, ok := t.cache.get(hash, now); ok {
			return v, nil
		}
	}
	gen := t.cache.generation()
	sys := SystemContext(ctx)
	row, err := t.DB.APIToken.Query().
		Where(apitoken.TokenHash(hash)).
		Only(sys)
	if ent.IsNotFound(err) {
		return nil, ErrUnauthenticated
	}
	if err != nil {
		return nil, fmt.Errorf("looking up token: %w", err)
	}
	if row.RevokedAt != nil || (row.ExpiresAt != nil && !row.ExpiresAt.After(now)) {
		return nil, ErrUnauthenticated
	}
	// Record use at most once a minute, so reads stay reads.
	if row.LastUsedAt == nil || now.Sub(*row.LastUsedAt) > time.Minute {
		_ = t.DB.APIToken.UpdateOneID(row.ID).SetLastUsedAt(now).Exec(sys)
	}
	v := &Viewer{
		Role:           roleOfStored(row.Role),
		OrganizationID: row.OrganizationID,
		TokenID:        row.ID,
		Actor:          "token:" + strconv.Itoa(row.ID),
	}
	until := now.Add(CacheTTL)
	if row.ExpiresAt != nil && row.ExpiresAt.Before(until) {
		until = *row.ExpiresAt
	}
	t.cache.put(hash, v, until, gen)
	return v, nil
}

// Revoke revokes a token of the viewer's organization and reports whether
// this call revoked it. A token of another organization is ErrNotFound;
// one already revoked stays as it is (false). The caller decides who may
// revoke and records it in the audit log (connection.Access).
func (t *Tokens) Revoke(ctx context.Context, id int) (bool, error) {
	v, err := Require(ctx)
	if err != nil {
		return false, err
	}
	// The tenant filter and write hook hold both to the viewer's
	// organization: another organization's token is not found.
	n, err := t.DB.APIToken.Update().
		Where(apitoken.ID(id), apitoken.RevokedAtIsNil()).
		SetRevokedAt(t.now()).
		Save(ctx)
	if err != nil {
		return false, err
	}
	if n == 0 {
		// Revoking twice is not an error.
		done, err := t.DB.APIToken.Query().
			Where(apitoken.ID(id), apitoken.RevokedAtNotNil()).
			Exist(ctx)
		if err != nil {
			return false, err
		}
		if done {
			return false, nil
		}
		return false, fmt.Errorf("token %d: %w", id, ErrNotFound)
	}
	t.Forget(id)
	tell(ctx, t.Revocations, RevokedAPIToken, v.OrganizationID, id)
	return true, nil
}
