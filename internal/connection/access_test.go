package connection

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"testing"

	"github.com/plugboard/plugboard/internal/auth"
	"github.com/plugboard/plugboard/internal/connection/scopes"
	"github.com/plugboard/plugboard/internal/store"
	"github.com/plugboard/plugboard/internal/store/storetest"
)

func edPublicPEM(t *testing.T) string {
	t.Helper()
	pub, _, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}))
}

// accessFixture is an organization with one customer, an admin's token
// and signing key, and the contexts of every kind of viewer.
type accessFixture struct {
	access                      *Access
	admin, customer, runtime    context.Context
	tokenID, keyID, orgID, cust int
}

func newAccessFixture(t *testing.T, s *store.Store) *accessFixture {
	t.Helper()
	auth.InstallTenantFilter(s.Client, scopes.CustomerVisible())
	ctx := context.Background()
	sys := auth.SystemContext(ctx)
	org, err := s.Client.Organization.Create().SetName("Acme").SetSlug("acme").Save(sys)
	if err != nil {
		t.Fatal(err)
	}
	c1, err := s.Client.Customer.Create().SetOrganizationID(org.ID).SetExternalID("c1").SetName("Customer One").Save(sys)
	if err != nil {
		t.Fatal(err)
	}
	f := &accessFixture{
		access:   &Access{DB: s.Client},
		admin:    auth.NewContext(ctx, &auth.Viewer{Role: auth.RoleOrgAdmin, OrganizationID: org.ID, Actor: "test"}),
		customer: auth.NewContext(ctx, &auth.Viewer{Role: auth.RoleCustomerUser, OrganizationID: org.ID, CustomerID: c1.ID}),
		runtime:  auth.NewContext(ctx, &auth.Viewer{Role: auth.RoleRuntime, OrganizationID: org.ID}),
		orgID:    org.ID, cust: c1.ID,
	}
	_, tok, err := f.access.IssueAPIToken(f.admin, auth.RoleRuntime, "ci")
	if err != nil {
		t.Fatal(err)
	}
	key, err := f.access.RegisterSigningKey(f.admin, auth.RegisterKeyInput{Kid: "ed-1", Algorithm: auth.AlgEdDSA, PublicKeyPEM: edPublicPEM(t)})
	if err != nil {
		t.Fatal(err)
	}
	f.tokenID, f.keyID = tok.ID, key.ID
	return f
}

// Only an organization admin issues and revokes API tokens and signing
// keys; a refused call changes nothing.
func TestAccessIsForAdmins(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		f := newAccessFixture(t, s)
		pemText := edPublicPEM(t)
		calls := map[string]func(ctx context.Context) error{
			"register signing key": func(ctx context.Context) error {
				_, err := f.access.RegisterSigningKey(ctx, auth.RegisterKeyInput{Kid: "other", Algorithm: auth.AlgEdDSA, PublicKeyPEM: pemText})
				return err
			},
			"revoke signing key": func(ctx context.Context) error { _, err := f.access.RevokeSigningKey(ctx, f.keyID); return err },
			"issue API token": func(ctx context.Context) error {
				_, _, err := f.access.IssueAPIToken(ctx, auth.RoleOrgAdmin, "other")
				return err
			},
			"revoke API token": func(ctx context.Context) error { _, err := f.access.RevokeAPIToken(ctx, f.tokenID); return err },
		}
		viewers := []struct {
			name string
			ctx  context.Context
			want error
		}{
			{"customer user", f.customer, auth.ErrForbidden},
			{"runtime", f.runtime, auth.ErrForbidden},
			{"no viewer", context.Background(), auth.ErrUnauthenticated},
		}
		for call, fn := range calls {
			for _, vw := range viewers {
				if err := fn(vw.ctx); !errors.Is(err, vw.want) {
					t.Errorf("%s as %s: want %v, got %v", call, vw.name, vw.want, err)
				}
			}
		}
		sys := auth.SystemContext(context.Background())
		keys, err := s.Client.SigningKey.Query().All(sys)
		if err != nil || len(keys) != 1 || keys[0].RevokedAt != nil {
			t.Fatalf("signing keys after refused calls: %v %v", keys, err)
		}
		toks, err := s.Client.APIToken.Query().All(sys)
		if err != nil || len(toks) != 1 || toks[0].RevokedAt != nil {
			t.Fatalf("API tokens after refused calls: %v %v", toks, err)
		}
		// The admin's own calls go through and are audited.
		for call, fn := range calls {
			if err := fn(f.admin); err != nil {
				t.Errorf("%s as admin: %v", call, err)
			}
		}
		n, err := s.Client.AuditEvent.Query().Count(f.admin)
		if err != nil || n != 6 { // the fixture's two, then four
			t.Fatalf("audit events: %d %v", n, err)
		}
	})
}
