package auth_test

import (
	"context"
	"errors"
	"testing"

	"github.com/plugboard/plugboard/ent"
	"github.com/plugboard/plugboard/ent/customer"
	"github.com/plugboard/plugboard/internal/auth"
	"github.com/plugboard/plugboard/internal/connection/scopes"
	"github.com/plugboard/plugboard/internal/store"
	"github.com/plugboard/plugboard/internal/store/storetest"
)

// inOrgA is plugboard itself inside the fixture's first organization.
func (f *tenantFixture) inOrgA(t *testing.T) context.Context {
	return auth.OrganizationContext(t.Context(), f.orgA.ID)
}

func TestOrganizationContextReadsOneOrganization(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		auth.InstallTenantFilter(s.Client, scopes.CustomerVisible())
		f := newTenantFixture(t, s, "reads")
		ctx := f.inOrgA(t)
		if _, err := f.db.Customer.Get(ctx, f.custB.ID); !ent.IsNotFound(err) {
			t.Errorf("the other organization's customer: %v, want not found", err)
		}
		if _, err := f.db.Organization.Get(ctx, f.orgB.ID); !ent.IsNotFound(err) {
			t.Errorf("the other organization: %v, want not found", err)
		}
		ids := f.db.Customer.Query().Where(customer.OrganizationIDIn(f.orgA.ID, f.orgB.ID)).IDsX(ctx)
		if len(ids) != 1 || ids[0] != f.custA.ID {
			t.Errorf("customers seen: %v, want only %d", ids, f.custA.ID)
		}
		if got := f.db.Organization.Query().IDsX(ctx); len(got) != 1 || got[0] != f.orgA.ID {
			t.Errorf("organizations seen: %v, want only %d", got, f.orgA.ID)
		}
		// An organization that does not exist sees nothing, rather than
		// everything.
		none := auth.OrganizationContext(t.Context(), 0)
		if n := f.db.Customer.Query().CountX(none); n != 0 {
			t.Errorf("organization 0 sees %d customers, want 0", n)
		}
		if n := f.db.Organization.Query().CountX(none); n != 0 {
			t.Errorf("organization 0 sees %d organizations, want 0", n)
		}
	})
}

func TestOrganizationContextWritesRefusedAcrossOrganizations(t *testing.T) {
	checkCrossOrganizationWritesRefused(t, "org", func(t *testing.T, f *tenantFixture) context.Context { return f.inOrgA(t) })
}

func TestOrganizationContextWritesInTheOrganization(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		auth.InstallTenantFilter(s.Client, scopes.CustomerVisible())
		f := newTenantFixture(t, s, "orgsame")
		ctx := f.inOrgA(t)
		n, err := f.db.Customer.Update().Where(customer.OrganizationIDIn(f.orgA.ID, f.orgB.ID)).
			SetName("renamed").Save(ctx)
		if err != nil || n != 1 {
			t.Fatalf("bulk update: %d rows, %v; want 1 row", n, err)
		}
		if got := f.name(t, f.custA.ID); got != "renamed" {
			t.Errorf("own customer named %q, want renamed", got)
		}
		if got := f.name(t, f.custB.ID); got != "Customer B" {
			t.Errorf("the other organization's customer is now named %q", got)
		}
		c, err := f.db.Customer.Create().SetExternalID("new").SetName("New").Save(ctx)
		if err != nil || c.OrganizationID != f.orgA.ID {
			t.Fatalf("create: %+v, %v; want organization %d", c, err, f.orgA.ID)
		}
		n, err = f.db.Customer.Delete().Exec(ctx)
		if err != nil || n != 2 {
			t.Fatalf("bulk delete: %d rows, %v; want 2 rows", n, err)
		}
		if _, err := f.db.Customer.Get(f.sys, f.custB.ID); err != nil {
			t.Errorf("the other organization's customer: %v", err)
		}
	})
}

func TestOrganizationContextIsNoRequestViewer(t *testing.T) {
	ctx := auth.OrganizationContext(context.Background(), 7)
	v := auth.FromContext(ctx)
	if !v.IsSystem() || v.OrganizationID != 7 {
		t.Fatalf("viewer %+v: want plugboard itself inside organization 7", v)
	}
	if _, err := auth.Require(ctx); !errors.Is(err, auth.ErrUnauthenticated) {
		t.Errorf("Require: %v, want ErrUnauthenticated", err)
	}
}
