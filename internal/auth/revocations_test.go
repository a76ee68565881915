package auth_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"

	"github.com/plugboard/plugboard/ent/intercept"
	"github.com/plugboard/plugboard/internal/auth"
	"github.com/plugboard/plugboard/internal/connection/scopes"
	"github.com/plugboard/plugboard/internal/store/storetest"
)

// fakeRevocations records what it is told and says whether caches may be
// trusted.
type fakeRevocations struct {
	trusted atomic.Bool
	told    []string
}

func (f *fakeRevocations) Revoked(_ context.Context, kind string, _, _ int) error {
	f.told = append(f.told, kind)
	return nil
}

func (f *fakeRevocations) Trusted() bool { return f.trusted.Load() }

// TestTokenCacheAndRevocations: a revocation is told to every replica; an
// untrusted cache is not served; a check that overlaps a revocation does
// not put its answer back in the cache.
func TestTokenCacheAndRevocations(t *testing.T) {
	s := storetest.SQLite(t)
	auth.InstallTenantFilter(s.Client, scopes.CustomerVisible())
	ctx := context.Background()
	sys := auth.SystemContext(ctx)
	org, err := s.Client.Organization.Create().SetName("Acme").SetSlug("acme").Save(sys)
	if err != nil {
		t.Fatal(err)
	}
	rev := &fakeRevocations{}
	rev.trusted.Store(true)
	tokens := &auth.Tokens{DB: s.Client, Revocations: rev}
	var lookups atomic.Int64
	var duringLookup atomic.Pointer[func()]
	s.Client.APIToken.Intercept(intercept.Func(func(context.Context, intercept.Query) error {
		lookups.Add(1)
		if f := duringLookup.Swap(nil); f != nil {
			(*f)()
		}
		return nil
	}))
	plain, row, err := tokens.Create(ctx, org.ID, auth.RoleOrgAdmin, "ci")
	if err != nil {
		t.Fatal(err)
	}
	check := func(want int64, what string) {
		t.Helper()
		lookups.Store(0)
		if _, err := tokens.Authenticate(ctx, plain); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		if got := lookups.Load(); got != want {
			t.Fatalf("%s: %d lookups, want %d", what, got, want)
		}
	}
	check(1, "first use")
	check(0, "cached")
	rev.trusted.Store(false)
	check(1, "while revocations cannot be heard")
	rev.trusted.Store(true)
	// A revocation heard while the token is being checked: the answer is
	// not remembered.
	forget := func() { tokens.Forget(row.ID) }
	tokens.Forget(0)
	duringLookup.Store(&forget)
	check(1, "checked during a revocation")
	check(1, "after a check that overlapped a revocation")
	check(0, "cached again")

	admin := auth.NewContext(ctx, &auth.Viewer{Role: auth.RoleOrgAdmin, OrganizationID: org.ID})
	if _, err := tokens.Revoke(admin, row.ID); err != nil {
		t.Fatal(err)
	}
	if len(rev.told) != 1 || rev.told[0] != auth.RevokedAPIToken {
		t.Fatalf("told %v", rev.told)
	}
	if _, err := tokens.Authenticate(ctx, plain); !errors.Is(err, auth.ErrUnauthenticated) {
		t.Fatalf("a revoked token: %v", err)
	}
}
