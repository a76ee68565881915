package auth

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/plugboard/plugboard/ent"
	"github.com/plugboard/plugboard/ent/customer"
	"github.com/plugboard/plugboard/ent/organization"
	"github.com/plugboard/plugboard/ent/signingkey"
	"github.com/plugboard/plugboard/ent/user"
	"github.com/plugboard/plugboard/internal/secrets"
	"github.com/plugboard/plugboard/internal/textrule"
)

// Rules of embedding tokens.
const (
	// EmbedAudience is the aud claim every embedding token must carry.
	EmbedAudience = "plugboard"
	// EmbedLeeway absorbs clock skew between the vendor and plugboard.
	EmbedLeeway = 30 * time.Second
	// MaxEmbedLifetime is the longest an embedding token may be valid: exp
	// minus iat (or minus now, without iat).
	MaxEmbedLifetime = 24 * time.Hour
	// maxEmbedTokenBytes bounds what is parsed at all.
	maxEmbedTokenBytes = 8 << 10
	// maxExternalIDLen is the longest customer or user external id.
	maxExternalIDLen = 200
	maxEmailLen      = 320
)

// embedClaims are the claims of an embedding token: iss is the
// organization's slug, sub the user's external id, customer the customer's
// external id.
type embedClaims struct {
	jwt.RegisteredClaims
	Customer string `json:"customer"`
	Email    string `json:"email,omitempty"`
}

// Embedding verifies embedding tokens: JWTs that a vendor's backend signs
// with its organization's signing key to let one of its customers' users
// call plugboard as a CUSTOMER_USER. It also registers and revokes the
// public keys that verify them.
//
// A token that checked out is remembered for CacheTTL (never past its exp),
// so a busy page costs no query per request. Revoking a key forgets every
// remembered token at once, on this replica and, through Revocations, on
// every other one; nothing remembered is served while Revocations cannot
// hear of revocations.
type Embedding struct {
	DB  *ent.Client
	Now func() time.Time
	// Log receives, at debug level, why a token was refused; never the
	// token. Nil means slog.Default().
	Log *slog.Logger
	// Revocations, when set, carries revocations to every replica.
	Revocations Revocations

	cache tokenCache
}

func (e *Embedding) now() time.Time {
	if e.Now != nil {
		return e.Now()
	}
	return time.Now().UTC()
}

func (e *Embedding) log() *slog.Logger {
	if e.Log != nil {
		return e.Log
	}
	return slog.Default()
}

// ForgetAll drops every remembered embedding token.
func (e *Embedding) ForgetAll() { e.cache.forget(0) }

// refusal is why a token was refused, for the debug log only.
type refusal struct{ reason string }

func (r *refusal) Error() string { return r.reason }

func refuse(format string, args ...any) error {
	return &refusal{reason: fmt.Sprintf(format, args...)}
}

// Authenticate returns the CUSTOMER_USER viewer of an embedding token, or
// ErrUnauthenticated. The caller is never told which check failed.
func (e *Embedding) Authenticate(ctx context.Context, bearer string) (*Viewer, error) {
	now := e.now()
	if len(bearer) > maxEmbedTokenBytes {
		return nil, e.refused(ctx, refuse("token longer than %d bytes", maxEmbedTokenBytes))
	}
	hash := secrets.HashToken(bearer)
	if trusted(e.Revocations) {
		if v, ok := e.cache.get(hash, now); ok {
			return v, nil
		}
	}
	gen := e.cache.generation()
	v, exp, err := e.verify(ctx, bearer, now)
	if err != nil {
		return nil, e.refused(ctx, err)
	}
	until := now.Add(CacheTTL)
	if exp.Before(until) {
		until = exp
	}
	e.cache.put(hash, v, until, gen)
	return v, nil
}

// refused logs why a token was refused and returns ErrUnauthenticated, or
// err itself when the store failed (the caller logs it).
func (e *Embedding) refused(ctx context.Context, err error) error {
	var r *refusal
	if !errors.As(err, &r) {
		return fmt.Errorf("verifying an embedding token: %w", err)
	}
	e.log().DebugContext(ctx, "embedding token refused", "reason", r.reason)
	return ErrUnauthenticated
}

// verify checks bearer and returns its viewer and expiry. Refusals are
// *refusal; anything else is a failure of the store.
func (e *Embedding) verify(ctx context.Context, bearer string, now time.Time) (*Viewer, time.Time, error) {
	sys := SystemContext(ctx)
	claims, org, err := e.parse(sys, bearer, now)
	if err != nil {
		return nil, time.Time{}, err
	}
	if err := checkClaims(claims, now); err != nil {
		return nil, time.Time{}, err
	}
	v, err := e.viewer(OrganizationContext(ctx, org.ID), org, claims)
	if err != nil {
		return nil, time.Time{}, err
	}
	return v, claims.ExpiresAt.Time, nil
}

// parse verifies bearer's signature, audience and times, and returns its
// claims and the organization whose key signed it.
func (e *Embedding) parse(sys context.Context, bearer string, now time.Time) (*embedClaims, *ent.Organization, error) {
	claims := &embedClaims{}
	var org *ent.Organization
	var storeErr error
	parser := jwt.NewParser(
		jwt.WithValidMethods([]string{AlgRS256, AlgEdDSA}),
		jwt.WithExpirationRequired(),
		jwt.WithIssuedAt(),
		jwt.WithAudience(EmbedAudience),
		jwt.WithLeeway(EmbedLeeway),
		jwt.WithTimeFunc(func() time.Time { return now }),
	)
	_, err := parser.ParseWithClaims(bearer, claims, func(tok *jwt.Token) (any, error) {
		pub, o, err := e.chooseKey(sys, tok, claims)
		var r *refusal
		if err != nil && !errors.As(err, &r) {
			storeErr = err
		}
		org = o
		return pub, err
	})
	if storeErr != nil {
		return nil, nil, storeErr
	}
	if err != nil {
		var r *refusal
		if errors.As(err, &r) {
			return nil, nil, r
		}
		// The parser's errors say which check failed, never the token.
		return nil, nil, refuse("%v", err)
	}
	if org == nil {
		return nil, nil, refuse("no key was chosen")
	}
	return claims, org, nil
}

// chooseKey returns the public key that must verify tok, and its
// organization. The claims are decoded, not yet verified: they only choose
// the key, which must then verify the signature.
func (e *Embedding) chooseKey(sys context.Context, tok *jwt.Token, claims *embedClaims) (any, *ent.Organization, error) {
	kid, _ := tok.Header["kid"].(string)
	alg := tok.Method.Alg()
	if kid == "" || claims.Issuer == "" {
		return nil, nil, refuse("no kid header or no iss claim")
	}
	o, err := e.DB.Organization.Query().Where(organization.Slug(claims.Issuer)).Only(sys)
	if ent.IsNotFound(err) {
		return nil, nil, refuse("unknown organization")
	}
	if err != nil {
		return nil, nil, err
	}
	// The key is looked up inside the token's organization alone.
	key, err := e.DB.SigningKey.Query().
		Where(signingkey.Kid(kid)).
		Only(OrganizationContext(sys, o.ID))
	if ent.IsNotFound(err) {
		return nil, nil, refuse("unknown kid in organization %d", o.ID)
	}
	if err != nil {
		return nil, nil, err
	}
	if key.RevokedAt != nil {
		return nil, nil, refuse("signing key %d is revoked", key.ID)
	}
	// The header's alg must be the key's: a key never verifies a signature
	// of another algorithm.
	if string(key.Algorithm) != alg {
		return nil, nil, refuse("alg %s on a %s key", alg, key.Algorithm)
	}
	pub, err := ParsePublicKey(string(key.Algorithm), key.PublicKeyPem)
	if err != nil {
		return nil, nil, refuse("signing key %d does not parse", key.ID)
	}
	return pub, o, nil
}

// checkClaims refuses a verified token whose lifetime is too long or whose
// identity claims are missing or malformed.
func checkClaims(claims *embedClaims, now time.Time) error {
	start := now
	if claims.IssuedAt != nil {
		start = claims.IssuedAt.Time
	}
	if claims.ExpiresAt.Time.Sub(start) > MaxEmbedLifetime {
		return refuse("lifetime longer than %s", MaxEmbedLifetime)
	}
	if !validExternalID(claims.Subject) || !validExternalID(claims.Customer) {
		return refuse("sub or customer claim missing or too long")
	}
	if len(claims.Email) > maxEmailLen {
		return refuse("email claim too long")
	}
	return nil
}

// viewer returns the CUSTOMER_USER viewer of claims, finding or creating
// its customer and user; inOrg acts as plugboard inside org.
func (e *Embedding) viewer(inOrg context.Context, org *ent.Organization, claims *embedClaims) (*Viewer, error) {
	cust, err := e.customer(inOrg, org, claims.Customer)
	if err != nil {
		return nil, err
	}
	u, err := e.user(inOrg, org.ID, cust.ID, claims.Subject, claims.Email)
	if err != nil {
		return nil, err
	}
	return &Viewer{
		Role:           RoleCustomerUser,
		OrganizationID: org.ID,
		CustomerID:     cust.ID,
		UserID:         u.ID,
		Actor:          "user:" + claims.Subject + "@" + claims.Customer,
	}, nil
}

func validExternalID(s string) bool {
	return s != "" && len(s) <= maxExternalIDLen && textrule.Identifier(s) == ""
}

// customer returns the organization's customer of externalID, creating it
// when the organization allows; inOrg acts as plugboard inside org.
func (e *Embedding) customer(inOrg context.Context, org *ent.Organization, externalID string) (*ent.Customer, error) {
	find := func() (*ent.Customer, error) {
		return e.DB.Customer.Query().
			Where(customer.ExternalID(externalID)).
			Only(inOrg)
	}
	c, err := find()
	if !ent.IsNotFound(err) {
		return c, err
	}
	if !org.AutoCreateCustomers {
		return nil, refuse("unknown customer in organization %d, which does not create customers", org.ID)
	}
	c, err = e.DB.Customer.Create().
		SetOrganizationID(org.ID).
		SetExternalID(externalID).
		SetName(externalID).
		Save(inOrg)
	if ent.IsConstraintError(err) {
		// Created at the same moment by another request.
		return find()
	}
	if err != nil {
		return nil, fmt.Errorf("creating a customer: %w", err)
	}
	e.log().InfoContext(inOrg, "customer created from an embedding token", "organization", org.ID, "customer", c.ID)
	return c, nil
}

// user returns the customer's user of externalID, creating it; inOrg acts
// as plugboard inside the customer's organization.
func (e *Embedding) user(inOrg context.Context, orgID, customerID int, externalID, email string) (*ent.User, error) {
	find := func() (*ent.User, error) {
		return e.DB.User.Query().
			Where(user.CustomerID(customerID), user.ExternalID(externalID)).
			Only(inOrg)
	}
	u, err := find()
	if !ent.IsNotFound(err) {
		return u, err
	}
	create := e.DB.User.Create().
		SetOrganizationID(orgID).
		SetCustomerID(customerID).
		SetExternalID(externalID)
	if email != "" {
		create.SetEmail(email)
	}
	u, err = create.Save(inOrg)
	if ent.IsConstraintError(err) {
		return find()
	}
	if err != nil {
		return nil, fmt.Errorf("creating a user: %w", err)
	}
	return u, nil
}
