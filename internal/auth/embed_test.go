package auth_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/plugboard/plugboard/ent/customer"
	"github.com/plugboard/plugboard/ent/user"
	"github.com/plugboard/plugboard/internal/auth"
	"github.com/plugboard/plugboard/internal/connection/scopes"
	"github.com/plugboard/plugboard/internal/store"
	"github.com/plugboard/plugboard/internal/store/storetest"
)

// testKeySet holds the keys of the tests.
type testKeySet struct {
	once                              sync.Once
	rsaA, rsaOther, rsaSmall          *rsa.PrivateKey
	edA, edB, edOther                 ed25519.PrivateKey
	rsaAPEM, rsaOtherPEM, rsaSmallPEM string
	edAPEM, edBPEM, edOPEM            string
}

// testKeys are generated once per test binary: RSA generation is slow.
var testKeys testKeySet

func keys(t *testing.T) *testKeySet {
	t.Helper()
	k := &testKeys
	k.once.Do(func() {
		k.rsaA = mustRSA(2048)
		k.rsaOther = mustRSA(2048)
		k.rsaSmall = mustRSA(1024)
		_, k.edA, _ = ed25519.GenerateKey(rand.Reader)
		_, k.edB, _ = ed25519.GenerateKey(rand.Reader)
		_, k.edOther, _ = ed25519.GenerateKey(rand.Reader)
		k.rsaAPEM = publicPEM(&k.rsaA.PublicKey)
		k.rsaOtherPEM = publicPEM(&k.rsaOther.PublicKey)
		k.rsaSmallPEM = publicPEM(&k.rsaSmall.PublicKey)
		k.edAPEM = publicPEM(k.edA.Public())
		k.edBPEM = publicPEM(k.edB.Public())
		k.edOPEM = publicPEM(k.edOther.Public())
	})
	return k
}

func mustRSA(bits int) *rsa.PrivateKey {
	k, err := rsa.GenerateKey(rand.Reader, bits)
	if err != nil {
		panic(err)
	}
	return k
}

func publicPEM(pub any) string {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		panic(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}))
}

func sign(t *testing.T, m jwt.SigningMethod, key any, kid string, claims jwt.MapClaims) string {
	t.Helper()
	tok := jwt.NewWithClaims(m, claims)
	if kid != "" {
		tok.Header["kid"] = kid
	}
	s, err := tok.SignedString(key)
	if err != nil {
		t.Fatalf("signing: %v", err)
	}
	return s
}

// embedFixture is two organizations with registered signing keys.
type embedFixture struct {
	s          *store.Store
	embed      *auth.Embedding
	now        time.Time
	orgA, orgB int
	c1         int
	adminA     context.Context
	revokedKid string
	logs       *bytes.Buffer
}

func newEmbedFixture(t *testing.T, s *store.Store) *embedFixture {
	t.Helper()
	k := keys(t)
	auth.InstallTenantFilter(s.Client, scopes.CustomerVisible())
	ctx := context.Background()
	sys := auth.SystemContext(ctx)
	a, err := s.Client.Organization.Create().SetName("Acme").SetSlug("acme").Save(sys)
	if err != nil {
		t.Fatal(err)
	}
	b, err := s.Client.Organization.Create().SetName("Globex").SetSlug("globex").Save(sys)
	if err != nil {
		t.Fatal(err)
	}
	c1, err := s.Client.Customer.Create().SetOrganizationID(a.ID).SetExternalID("c1").SetName("Customer One").Save(sys)
	if err != nil {
		t.Fatal(err)
	}
	f := &embedFixture{
		s: s, now: time.Now().UTC().Truncate(time.Second), orgA: a.ID, orgB: b.ID, c1: c1.ID,
		adminA: auth.NewContext(ctx, &auth.Viewer{Role: auth.RoleOrgAdmin, OrganizationID: a.ID, Actor: "test"}),
		logs:   &bytes.Buffer{},
	}
	f.embed = &auth.Embedding{DB: s.Client, Now: func() time.Time { return f.now },
		Log: slog.New(slog.NewTextHandler(f.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))}
	adminB := auth.NewContext(ctx, &auth.Viewer{Role: auth.RoleOrgAdmin, OrganizationID: b.ID, Actor: "test"})
	for _, r := range []struct {
		ctx            context.Context
		kid, alg, pemS string
	}{
		{f.adminA, "rsa-1", auth.AlgRS256, k.rsaAPEM},
		{f.adminA, "ed-1", auth.AlgEdDSA, k.edAPEM},
		{f.adminA, "old", auth.AlgEdDSA, k.edAPEM},
		{adminB, "b-1", auth.AlgEdDSA, k.edBPEM},
		{adminB, "shared", auth.AlgEdDSA, k.edBPEM},
	} {
		key, err := f.embed.RegisterKey(r.ctx, s.Client, auth.RegisterKeyInput{Kid: r.kid, Algorithm: r.alg, PublicKeyPEM: r.pemS})
		if err != nil {
			t.Fatalf("registering %s: %v", r.kid, err)
		}
		if r.kid == "old" {
			if _, err := f.embed.RevokeKey(f.adminA, key.ID); err != nil {
				t.Fatal(err)
			}
			f.revokedKid = r.kid
		}
	}
	return f
}

// claims returns valid claims for user u1 of customer c1 of acme, changed
// by edit.
func (f *embedFixture) claims(edit func(jwt.MapClaims)) jwt.MapClaims {
	c := jwt.MapClaims{
		"iss":      "acme",
		"sub":      "u1",
		"customer": "c1",
		"email":    "u1@example.com",
		"aud":      []string{"plugboard"},
		"iat":      f.now.Add(-time.Minute).Unix(),
		"exp":      f.now.Add(10 * time.Minute).Unix(),
	}
	if edit != nil {
		edit(c)
	}
	return c
}

func TestEmbeddingTokens(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		k := keys(t)
		f := newEmbedFixture(t, s)
		ctx := context.Background()
		rs, ed := jwt.SigningMethodRS256, jwt.SigningMethodEdDSA
		set := func(kv ...any) func(jwt.MapClaims) {
			return func(c jwt.MapClaims) {
				for i := 0; i < len(kv); i += 2 {
					if kv[i+1] == nil {
						delete(c, kv[i].(string))
					} else {
						c[kv[i].(string)] = kv[i+1]
					}
				}
			}
		}
		unix := func(d time.Duration) int64 { return f.now.Add(d).Unix() }
		noneToken := func() string {
			tok := jwt.NewWithClaims(jwt.SigningMethodNone, f.claims(nil))
			tok.Header["kid"] = "rsa-1"
			s, err := tok.SignedString(jwt.UnsafeAllowNoneSignatureType)
			if err != nil {
				t.Fatal(err)
			}
			return s
		}
		tests := []struct {
			name  string
			token string
			ok    bool
		}{
			{"valid RS256", sign(t, rs, k.rsaA, "rsa-1", f.claims(nil)), true},
			{"valid EdDSA", sign(t, ed, k.edA, "ed-1", f.claims(nil)), true},
			{"valid without iat", sign(t, ed, k.edA, "ed-1", f.claims(set("iat", nil))), true},
			{"expired within the leeway", sign(t, ed, k.edA, "ed-1", f.claims(set("exp", unix(-10*time.Second)))), true},
			{"expired", sign(t, ed, k.edA, "ed-1", f.claims(set("exp", unix(-time.Minute)))), false},
			{"not yet valid (nbf)", sign(t, ed, k.edA, "ed-1", f.claims(set("nbf", unix(5*time.Minute)))), false},
			{"issued in the future", sign(t, ed, k.edA, "ed-1", f.claims(set("iat", unix(5*time.Minute)))), false},
			{"wrongly signed RS256 (another key, same kid)", sign(t, rs, k.rsaOther, "rsa-1", f.claims(nil)), false},
			{"wrongly signed EdDSA (another key, same kid)", sign(t, ed, k.edOther, "ed-1", f.claims(nil)), false},
			{"alg none", noneToken(), false},
			{"HS256 with the RSA public PEM as secret", sign(t, jwt.SigningMethodHS256, []byte(k.rsaAPEM), "rsa-1", f.claims(nil)), false},
			{"HS256 with the Ed25519 public PEM as secret", sign(t, jwt.SigningMethodHS256, []byte(k.edAPEM), "ed-1", f.claims(nil)), false},
			{"RS256 header on an EdDSA key", sign(t, rs, k.rsaA, "ed-1", f.claims(nil)), false},
			{"EdDSA header on an RS256 key", sign(t, ed, k.edA, "rsa-1", f.claims(nil)), false},
			{"kid of another organization", sign(t, ed, k.edB, "b-1", f.claims(nil)), false},
			{"kid of another organization, same kid name", sign(t, ed, k.edB, "shared", f.claims(nil)), false},
			{"unknown kid", sign(t, ed, k.edA, "nope", f.claims(nil)), false},
			{"no kid", sign(t, ed, k.edA, "", f.claims(nil)), false},
			{"revoked key", sign(t, ed, k.edA, f.revokedKid, f.claims(nil)), false},
			{"missing exp", sign(t, ed, k.edA, "ed-1", f.claims(set("exp", nil))), false},
			{"exp more than 24 h after iat", sign(t, ed, k.edA, "ed-1", f.claims(set("iat", unix(-time.Hour), "exp", unix(24*time.Hour)))), false},
			{"exp more than 24 h from now without iat", sign(t, ed, k.edA, "ed-1", f.claims(set("iat", nil, "exp", unix(25*time.Hour)))), false},
			{"wrong audience", sign(t, ed, k.edA, "ed-1", f.claims(set("aud", "someone-else"))), false},
			{"no audience", sign(t, ed, k.edA, "ed-1", f.claims(set("aud", nil))), false},
			{"unknown organization", sign(t, ed, k.edA, "ed-1", f.claims(set("iss", "initech"))), false},
			{"no iss", sign(t, ed, k.edA, "ed-1", f.claims(set("iss", nil))), false},
			{"no sub", sign(t, ed, k.edA, "ed-1", f.claims(set("sub", nil))), false},
			{"no customer", sign(t, ed, k.edA, "ed-1", f.claims(set("customer", nil))), false},
			{"customer id too long", sign(t, ed, k.edA, "ed-1", f.claims(set("customer", strings.Repeat("x", 201)))), false},
			{"unknown customer, auto-create off", sign(t, ed, k.edA, "ed-1", f.claims(set("customer", "c-new"))), false},
			{"garbage", "not.a.jwt", false},
			{"empty", "", false},
		}
		for _, tc := range tests {
			t.Run(tc.name, func(t *testing.T) {
				v, err := f.embed.Authenticate(ctx, tc.token)
				if !tc.ok {
					if !errors.Is(err, auth.ErrUnauthenticated) || v != nil {
						t.Fatalf("want ErrUnauthenticated, got %+v, %v", v, err)
					}
					return
				}
				if err != nil {
					t.Fatal(err)
				}
				if v.Role != auth.RoleCustomerUser || v.OrganizationID != f.orgA || v.CustomerID != f.c1 ||
					v.UserID == 0 || v.Actor != "user:u1@c1" || v.TokenID != 0 {
					t.Fatalf("viewer %+v", v)
				}
			})
		}
		// The user u1 was created once, under c1, whatever the number of
		// tokens that named it.
		sys := auth.SystemContext(ctx)
		n, err := s.Client.User.Query().Where(user.CustomerID(f.c1), user.ExternalID("u1")).Count(sys)
		if err != nil || n != 1 {
			t.Fatalf("users u1: %d %v", n, err)
		}
		if n, _ := s.Client.Customer.Query().Where(customer.ExternalID("c-new")).Count(sys); n != 0 {
			t.Fatal("a refused token created a customer")
		}
		// The log says why tokens were refused, never a token.
		logs := f.logs.String()
		if !strings.Contains(logs, "embedding token refused") {
			t.Error("refusals are not logged")
		}
		for _, tc := range tests {
			if tc.token != "" && strings.Contains(logs, tc.token) {
				t.Fatalf("the log holds the token of %q", tc.name)
			}
		}
	})
}

func TestEmbeddingCreatesCustomers(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		k := keys(t)
		f := newEmbedFixture(t, s)
		ctx := context.Background()
		sys := auth.SystemContext(ctx)
		if err := s.Client.Organization.UpdateOneID(f.orgA).SetAutoCreateCustomers(true).Exec(sys); err != nil {
			t.Fatal(err)
		}
		first, err := f.embed.Authenticate(ctx, sign(t, jwt.SigningMethodEdDSA, k.edA, "ed-1", f.claims(func(c jwt.MapClaims) {
			c["customer"], c["sub"] = "c-new", "u-new"
		})))
		if err != nil {
			t.Fatal(err)
		}
		cust, err := s.Client.Customer.Get(sys, first.CustomerID)
		if err != nil || cust.ExternalID != "c-new" || cust.Name != "c-new" || cust.OrganizationID != f.orgA {
			t.Fatalf("created customer %+v %v", cust, err)
		}
		u, err := s.Client.User.Get(sys, first.UserID)
		if err != nil || u.ExternalID != "u-new" || u.CustomerID != cust.ID || u.Email != "u1@example.com" {
			t.Fatalf("created user %+v %v", u, err)
		}
		// A second token (another iat) names the same customer and user.
		second, err := f.embed.Authenticate(ctx, sign(t, jwt.SigningMethodRS256, k.rsaA, "rsa-1", f.claims(func(c jwt.MapClaims) {
			c["customer"], c["sub"], c["iat"] = "c-new", "u-new", f.now.Add(-2*time.Minute).Unix()
		})))
		if err != nil {
			t.Fatal(err)
		}
		if second.CustomerID != first.CustomerID || second.UserID != first.UserID {
			t.Fatalf("second token: %+v, first: %+v", second, first)
		}
		for what, n := range map[string]func(context.Context) (int, error){
			"customers": s.Client.Customer.Query().Where(customer.ExternalID("c-new")).Count,
			"users":     s.Client.User.Query().Where(user.ExternalID("u-new")).Count,
		} {
			if c, err := n(sys); err != nil || c != 1 {
				t.Errorf("%s: %d %v", what, c, err)
			}
		}
		// The same external ids in organization B are B's own, and B does
		// not create customers.
		if _, err := f.embed.Authenticate(ctx, sign(t, jwt.SigningMethodEdDSA, k.edB, "b-1", f.claims(func(c jwt.MapClaims) {
			c["iss"], c["customer"], c["sub"] = "globex", "c-new", "u-new"
		}))); !errors.Is(err, auth.ErrUnauthenticated) {
			t.Fatalf("organization B took A's customer: %v", err)
		}
	})
}

func TestRegisterSigningKey(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		k := keys(t)
		f := newEmbedFixture(t, s)
		ctx := context.Background()
		tests := []struct {
			name      string
			ctx       context.Context
			in        auth.RegisterKeyInput
			wantField string
			wantCode  string
			wantErr   error
		}{
			{"RS256", f.adminA, auth.RegisterKeyInput{Kid: "rsa-2", Algorithm: "RS256", PublicKeyPEM: k.rsaOtherPEM}, "", "", nil},
			{"EdDSA", f.adminA, auth.RegisterKeyInput{Kid: "ed_2.x-y", Algorithm: "EdDSA", PublicKeyPEM: k.edOPEM}, "", "", nil},
			{"duplicate kid", f.adminA, auth.RegisterKeyInput{Kid: "rsa-1", Algorithm: "RS256", PublicKeyPEM: k.rsaOtherPEM}, "kid", auth.CodeTaken, nil},
			{"small RSA key", f.adminA, auth.RegisterKeyInput{Kid: "small", Algorithm: "RS256", PublicKeyPEM: k.rsaSmallPEM}, "publicKeyPEM", auth.CodeInvalidValue, nil},
			{"Ed25519 key for RS256", f.adminA, auth.RegisterKeyInput{Kid: "mix-1", Algorithm: "RS256", PublicKeyPEM: k.edOPEM}, "publicKeyPEM", auth.CodeInvalidValue, nil},
			{"RSA key for EdDSA", f.adminA, auth.RegisterKeyInput{Kid: "mix-2", Algorithm: "EdDSA", PublicKeyPEM: k.rsaOtherPEM}, "publicKeyPEM", auth.CodeInvalidValue, nil},
			{"not PEM", f.adminA, auth.RegisterKeyInput{Kid: "bad", Algorithm: "EdDSA", PublicKeyPEM: "hello"}, "publicKeyPEM", auth.CodeInvalidValue, nil},
			{"empty kid", f.adminA, auth.RegisterKeyInput{Kid: "", Algorithm: "EdDSA", PublicKeyPEM: k.edOPEM}, "kid", auth.CodeInvalidValue, nil},
			{"kid with a space", f.adminA, auth.RegisterKeyInput{Kid: "a b", Algorithm: "EdDSA", PublicKeyPEM: k.edOPEM}, "kid", auth.CodeInvalidValue, nil},
			{"kid of 101 characters", f.adminA, auth.RegisterKeyInput{Kid: strings.Repeat("k", 101), Algorithm: "EdDSA", PublicKeyPEM: k.edOPEM}, "kid", auth.CodeInvalidValue, nil},
			// Who may register (admins only) is the authorization table's:
			// connection's TestAccessIsForAdmins refuses customer users and
			// runtimes.
			{"no viewer", ctx, auth.RegisterKeyInput{Kid: "nv", Algorithm: "EdDSA", PublicKeyPEM: k.edOPEM}, "", "", auth.ErrUnauthenticated},
		}
		for _, tc := range tests {
			t.Run(tc.name, func(t *testing.T) {
				key, err := f.embed.RegisterKey(tc.ctx, s.Client, tc.in)
				var ie *auth.InputError
				switch {
				case tc.wantErr != nil:
					if !errors.Is(err, tc.wantErr) {
						t.Fatalf("want %v, got %v", tc.wantErr, err)
					}
				case tc.wantField != "":
					if !errors.As(err, &ie) || ie.Field != tc.wantField || ie.Code != tc.wantCode {
						t.Fatalf("want %s %s, got %v", tc.wantField, tc.wantCode, err)
					}
				case err != nil:
					t.Fatal(err)
				case key.Kid != tc.in.Kid || string(key.Algorithm) != tc.in.Algorithm || key.OrganizationID != f.orgA:
					t.Fatalf("stored %+v", key)
				}
			})
		}
		// That each registration and revocation is in the organization's
		// audit log is connection's TestAccessAudits: connection.Access
		// writes those entries through the domain's one audit writer.
	})
}
