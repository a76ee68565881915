package auth_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/plugboard/plugboard/internal/auth"
	"github.com/plugboard/plugboard/internal/connection/scopes"
	"github.com/plugboard/plugboard/internal/store"
	"github.com/plugboard/plugboard/internal/store/storetest"
)

func TestTokens(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		auth.InstallTenantFilter(s.Client, scopes.CustomerVisible())
		ctx := context.Background()
		sys := auth.SystemContext(ctx)
		org, err := s.Client.Organization.Create().SetName("Acme").SetSlug("acme").Save(sys)
		if err != nil {
			t.Fatal(err)
		}
		now := time.Now().UTC()
		tokens := &auth.Tokens{DB: s.Client, Now: func() time.Time { return now }}
		plain, row, err := tokens.Create(ctx, org.ID, auth.RoleOrgAdmin, "ci")
		if err != nil {
			t.Fatal(err)
		}
		if row.TokenHash == plain || len(row.TokenHash) != 64 {
			t.Fatal("the token is not stored as a hash")
		}
		v, err := tokens.Authenticate(ctx, plain)
		if err != nil || v.Role != auth.RoleOrgAdmin || v.OrganizationID != org.ID || v.TokenID != row.ID {
			t.Fatalf("authenticate: %+v %v", v, err)
		}
		for _, bad := range []string{"", "pb_admin_", plain + "x", "Bearer " + plain, "pb_rt_" + plain[len("pb_admin_"):]} {
			if _, err := tokens.Authenticate(ctx, bad); !errors.Is(err, auth.ErrUnauthenticated) {
				t.Errorf("token %q: %v", bad, err)
			}
		}
		// Revoking through this process takes effect at once, cache or not.
		if _, err := tokens.Revoke(auth.NewContext(ctx, v), row.ID); err != nil {
			t.Fatal(err)
		}
		if _, err := tokens.Authenticate(ctx, plain); !errors.Is(err, auth.ErrUnauthenticated) {
			t.Fatalf("a revoked token authenticated: %v", err)
		}
		// Revoked elsewhere (another replica): refused once the cache entry
		// is older than CacheTTL.
		plain2, row2, err := tokens.Create(ctx, org.ID, auth.RoleRuntime, "runtime")
		if err != nil {
			t.Fatal(err)
		}
		if v, err := tokens.Authenticate(ctx, plain2); err != nil || v.Role != auth.RoleRuntime {
			t.Fatalf("runtime token: %+v %v", v, err)
		}
		if err := s.Client.APIToken.UpdateOneID(row2.ID).SetRevokedAt(now).Exec(sys); err != nil {
			t.Fatal(err)
		}
		now = now.Add(auth.CacheTTL + time.Second)
		if _, err := tokens.Authenticate(ctx, plain2); !errors.Is(err, auth.ErrUnauthenticated) {
			t.Fatalf("a token revoked elsewhere still authenticates after CacheTTL: %v", err)
		}
		// An expired token is refused.
		plain3, row3, err := tokens.Create(ctx, org.ID, auth.RoleOrgAdmin, "short")
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Client.APIToken.UpdateOneID(row3.ID).SetExpiresAt(now.Add(-time.Second)).Exec(sys); err != nil {
			t.Fatal(err)
		}
		if _, err := tokens.Authenticate(ctx, plain3); !errors.Is(err, auth.ErrUnauthenticated) {
			t.Fatalf("an expired token authenticated: %v", err)
		}
		// An admin of another organization cannot revoke this one's tokens.
		other, err := s.Client.Organization.Create().SetName("Other").SetSlug("other").Save(sys)
		if err != nil {
			t.Fatal(err)
		}
		otherAdmin := auth.NewContext(ctx, &auth.Viewer{Role: auth.RoleOrgAdmin, OrganizationID: other.ID})
		if _, err := tokens.Revoke(otherAdmin, row3.ID); err == nil {
			t.Fatal("another organization revoked a token")
		}
	})
}

func TestTenantFilterNeedsAViewer(t *testing.T) {
	s := storetest.SQLite(t)
	auth.InstallTenantFilter(s.Client, scopes.CustomerVisible())
	if _, err := s.Client.Credential.Query().All(context.Background()); !errors.Is(err, auth.ErrNoViewer) {
		t.Fatalf("a tenant query without a viewer: %v", err)
	}
	if _, err := s.Client.Credential.Query().All(auth.SystemContext(context.Background())); err != nil {
		t.Fatal(err)
	}
}
