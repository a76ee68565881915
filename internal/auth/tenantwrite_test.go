package auth_test

import (
	"context"
	"errors"
	"strconv"
	"testing"

	"github.com/plugboard/plugboard/ent"
	"github.com/plugboard/plugboard/ent/customer"
	"github.com/plugboard/plugboard/internal/auth"
	"github.com/plugboard/plugboard/internal/connection/scopes"
	"github.com/plugboard/plugboard/internal/store"
	"github.com/plugboard/plugboard/internal/store/storetest"
)

// tenantFixture is two organizations with one customer each, and the
// contexts of an admin of the first and of plugboard itself.
type tenantFixture struct {
	db           *ent.Client
	sys, admin   context.Context
	orgA, orgB   *ent.Organization
	custA, custB *ent.Customer
}

// newTenantFixture creates the fixture's rows in s, their slugs ending in
// suffix so that many fixtures share one database.
func newTenantFixture(t *testing.T, s *store.Store, suffix string) *tenantFixture {
	t.Helper()
	f := &tenantFixture{db: s.Client, sys: auth.SystemContext(t.Context())}
	f.orgA = s.Client.Organization.Create().SetName("A").SetSlug("a-" + suffix).SaveX(f.sys)
	f.orgB = s.Client.Organization.Create().SetName("B").SetSlug("b-" + suffix).SaveX(f.sys)
	f.custA = s.Client.Customer.Create().SetOrganizationID(f.orgA.ID).SetExternalID("a").SetName("Customer A").SaveX(f.sys)
	f.custB = s.Client.Customer.Create().SetOrganizationID(f.orgB.ID).SetExternalID("b").SetName("Customer B").SaveX(f.sys)
	f.admin = auth.NewContext(t.Context(), &auth.Viewer{Role: auth.RoleOrgAdmin, OrganizationID: f.orgA.ID, Actor: "token:1"})
	return f
}

// name reads a customer's name as plugboard itself, past the tenant filter.
func (f *tenantFixture) name(t *testing.T, id int) string {
	t.Helper()
	return f.db.Customer.GetX(f.sys, id).Name
}

// customers counts the customer rows of both organizations.
func (f *tenantFixture) customers(t *testing.T) int {
	t.Helper()
	return f.db.Customer.Query().Where(customer.OrganizationIDIn(f.orgA.ID, f.orgB.ID)).CountX(f.sys)
}

// organizations counts every organization row.
func (f *tenantFixture) organizations(t *testing.T) int {
	t.Helper()
	return f.db.Organization.Query().CountX(f.sys)
}

func TestTenantWritesRefusedAcrossOrganizations(t *testing.T) {
	checkCrossOrganizationWritesRefused(t, "", func(_ *testing.T, f *tenantFixture) context.Context { return f.admin })
}

// crossOrganizationWrites are writes of the fixture's first organization's
// viewer to the second organization's rows.
var crossOrganizationWrites = []struct {
	name  string
	write func(ctx context.Context, f *tenantFixture) error
	// notFound: the write fails as *ent.NotFoundError.
	notFound bool
}{
	{"UpdateOne", func(ctx context.Context, f *tenantFixture) error {
		return f.db.Customer.UpdateOneID(f.custB.ID).SetName("taken").Exec(ctx)
	}, true},
	{"UpdateOne in a transaction", func(ctx context.Context, f *tenantFixture) error {
		tx, err := f.db.Tx(ctx)
		if err != nil {
			return err
		}
		defer func() { _ = tx.Rollback() }()
		if err := tx.Customer.UpdateOneID(f.custB.ID).SetName("taken").Exec(ctx); err != nil {
			return err
		}
		return tx.Commit()
	}, true},
	{"UpdateOne of an organization", func(ctx context.Context, f *tenantFixture) error {
		return f.db.Organization.UpdateOneID(f.orgB.ID).SetName("taken").Exec(ctx)
	}, true},
	{"DeleteOne", func(ctx context.Context, f *tenantFixture) error {
		return f.db.Customer.DeleteOneID(f.custB.ID).Exec(ctx)
	}, true},
	{"Create in another organization", func(ctx context.Context, f *tenantFixture) error {
		return f.db.Customer.Create().SetOrganizationID(f.orgB.ID).SetExternalID("x").SetName("taken").Exec(ctx)
	}, false},
	{"Create of an organization", func(ctx context.Context, f *tenantFixture) error {
		return f.db.Organization.Create().SetName("taken").SetSlug("org-c").Exec(ctx)
	}, false},
}

// checkCrossOrganizationWritesRefused runs every cross-organization write
// as viewer (fixtures named prefix and the case's index) and checks that
// each fails and changes nothing.
func checkCrossOrganizationWritesRefused(t *testing.T, prefix string, viewer func(t *testing.T, f *tenantFixture) context.Context) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		auth.InstallTenantFilter(s.Client, scopes.CustomerVisible())
		for i, tc := range crossOrganizationWrites {
			t.Run(tc.name, func(t *testing.T) {
				f := newTenantFixture(t, s, prefix+strconv.Itoa(i))
				customers, orgs := f.customers(t), f.organizations(t)
				err := tc.write(viewer(t, f), f)
				if err == nil {
					t.Fatal("a write to another organization succeeded")
				}
				if tc.notFound && !ent.IsNotFound(err) {
					t.Fatalf("want a not-found error, got %v", err)
				}
				if got := f.customers(t); got != customers {
					t.Errorf("customers: %d, want %d", got, customers)
				}
				if got := f.name(t, f.custB.ID); got != "Customer B" {
					t.Errorf("the other organization's customer is now named %q", got)
				}
				if got := f.db.Organization.GetX(f.sys, f.orgB.ID).Name; got != "B" {
					t.Errorf("the other organization is now named %q", got)
				}
				if got := f.organizations(t); got != orgs {
					t.Errorf("organizations: %d, want %d", got, orgs)
				}
			})
		}
	})
}

func TestTenantBulkWritesStayInTheOrganization(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		auth.InstallTenantFilter(s.Client, scopes.CustomerVisible())
		f := newTenantFixture(t, s, "bulk")
		n, err := f.db.Customer.Update().Where(customer.OrganizationIDIn(f.orgA.ID, f.orgB.ID)).
			SetName("renamed").Save(f.admin)
		if err != nil || n != 1 {
			t.Fatalf("bulk update: %d rows, %v; want 1 row", n, err)
		}
		if got := f.name(t, f.custA.ID); got != "renamed" {
			t.Errorf("own customer named %q, want renamed", got)
		}
		if got := f.name(t, f.custB.ID); got != "Customer B" {
			t.Errorf("the other organization's customer is now named %q", got)
		}
		n, err = f.db.Customer.Delete().Exec(f.admin)
		if err != nil || n != 1 {
			t.Fatalf("bulk delete: %d rows, %v; want 1 row", n, err)
		}
		if _, err := f.db.Customer.Get(f.sys, f.custB.ID); err != nil {
			t.Errorf("the other organization's customer: %v", err)
		}
	})
}

func TestTenantWritesInTheOrganization(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		auth.InstallTenantFilter(s.Client, scopes.CustomerVisible())
		f := newTenantFixture(t, s, "same")
		if err := f.db.Customer.UpdateOneID(f.custA.ID).SetName("renamed").Exec(f.admin); err != nil {
			t.Fatalf("update own customer: %v", err)
		}
		if got := f.name(t, f.custA.ID); got != "renamed" {
			t.Errorf("own customer named %q, want renamed", got)
		}
		if err := f.db.Organization.UpdateOneID(f.orgA.ID).SetName("A2").Exec(f.admin); err != nil {
			t.Fatalf("update own organization: %v", err)
		}
		// A create without an organization lands in the viewer's.
		c, err := f.db.Customer.Create().SetExternalID("new").SetName("New").Save(f.admin)
		if err != nil || c.OrganizationID != f.orgA.ID {
			t.Fatalf("create: %+v, %v; want organization %d", c, err, f.orgA.ID)
		}
		named, err := f.db.Customer.Create().SetOrganizationID(f.orgA.ID).SetExternalID("named").SetName("Named").Save(f.admin)
		if err != nil || named.OrganizationID != f.orgA.ID {
			t.Fatalf("create naming the organization: %+v, %v", named, err)
		}
		if err := f.db.Customer.DeleteOneID(c.ID).Exec(f.admin); err != nil {
			t.Fatalf("delete own customer: %v", err)
		}
		// plugboard itself writes any organization's rows.
		if err := f.db.Customer.UpdateOneID(f.custB.ID).SetName("by system").Exec(f.sys); err != nil {
			t.Fatalf("system update: %v", err)
		}
	})
}

func TestTenantWritesWithoutViewer(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		auth.InstallTenantFilter(s.Client, scopes.CustomerVisible())
		f := newTenantFixture(t, s, "none")
		err := f.db.Customer.UpdateOneID(f.custA.ID).SetName("taken").Exec(context.Background())
		if !errors.Is(err, auth.ErrNoViewer) {
			t.Fatalf("update without a viewer: %v, want ErrNoViewer", err)
		}
		if got := f.name(t, f.custA.ID); got != "Customer A" {
			t.Errorf("customer named %q after a refused write", got)
		}
	})
}
