package connection

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"strings"
	"testing"

	"github.com/plugboard/plugboard/ent"
	"github.com/plugboard/plugboard/ent/auditevent"
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

// Each registration, issue and revocation is in the organization's audit
// log, by the admin, once: revoking again and a refused registration
// write nothing.
func TestAccessAudits(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		f := newAccessFixture(t, s)
		pemText := edPublicPEM(t)
		if _, err := f.access.RegisterSigningKey(f.admin, auth.RegisterKeyInput{Kid: "ed-2", Algorithm: auth.AlgEdDSA, PublicKeyPEM: pemText}); err != nil {
			t.Fatal(err)
		}
		var ie *auth.InputError
		if _, err := f.access.RegisterSigningKey(f.admin, auth.RegisterKeyInput{Kid: "ed-2", Algorithm: auth.AlgEdDSA, PublicKeyPEM: pemText}); !errors.As(err, &ie) || ie.Code != auth.CodeTaken {
			t.Fatalf("a taken kid: %v", err)
		}
		for range 2 {
			if _, err := f.access.RevokeSigningKey(f.admin, f.keyID); err != nil {
				t.Fatal(err)
			}
			if _, err := f.access.RevokeAPIToken(f.admin, f.tokenID); err != nil {
				t.Fatal(err)
			}
		}
		events, err := s.Client.AuditEvent.Query().Order(ent.Asc(auditevent.FieldID)).All(f.admin)
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, e := range events {
			if e.Actor != "test" || e.OrganizationID != f.orgID {
				t.Errorf("%s by %q in organization %d", e.Action, e.Actor, e.OrganizationID)
			}
			got = append(got, e.Action)
		}
		want := []string{"api_token.created", "signing_key.registered", "signing_key.registered", "signing_key.revoked", "api_token.revoked"}
		if strings.Join(got, " ") != strings.Join(want, " ") {
			t.Fatalf("audit actions %v, want %v", got, want)
		}
		n, err := s.Client.SigningKey.Query().Count(auth.SystemContext(context.Background()))
		if err != nil || n != 2 {
			t.Fatalf("signing keys: %d %v", n, err)
		}
	})
}
