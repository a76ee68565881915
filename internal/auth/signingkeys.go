package auth

//lint:file-ignore ST1005 ParsePublicKey's errors are sentences shown to API users as they are.

import (
	"context"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"regexp"
	"strings"

	"github.com/plugboard/plugboard/ent"
	"github.com/plugboard/plugboard/ent/predicate"
	"github.com/plugboard/plugboard/ent/signingkey"
)

// Signing algorithms of embedding tokens.
const (
	AlgRS256 = "RS256"
	AlgEdDSA = "EdDSA"
)

// minRSABits is the smallest RSA modulus accepted for RS256.
const minRSABits = 2048

var kidPattern = regexp.MustCompile(`^[A-Za-z0-9._-]{1,100}$`)

// Codes of InputError.
const (
	CodeInvalidValue = "INVALID_VALUE"
	CodeTaken        = "TAKEN"
)

// InputError is a problem with one input of a request; nothing was stored.
// The API layer shows it as a userError.
type InputError struct {
	// Field is the input at fault, such as "kid".
	Field   string
	Code    string
	Message string
}

func (e *InputError) Error() string { return e.Field + ": " + e.Message }

// RegisterKeyInput is a public key to register.
type RegisterKeyInput struct {
	Kid       string
	Algorithm string
	// PublicKeyPEM is the PKIX ("PUBLIC KEY") PEM block.
	PublicKeyPEM string
}

// RegisterKey stores, through db (the caller's transaction), a public key
// that verifies the embedding tokens of the viewer's organization. The
// caller decides who may register keys and records it in the audit log
// (connection.Access). Problems with the input come back as an
// *InputError.
func (e *Embedding) RegisterKey(ctx context.Context, db *ent.Client, in RegisterKeyInput) (*ent.SigningKey, error) {
	v, err := Require(ctx)
	if err != nil {
		return nil, err
	}
	if !kidPattern.MatchString(in.Kid) {
		return nil, &InputError{Field: "kid", Code: CodeInvalidValue,
			Message: "A kid is 1 to 100 characters of A-Z, a-z, 0-9, '.', '_' and '-'."}
	}
	pemText := strings.TrimSpace(in.PublicKeyPEM)
	if _, err := ParsePublicKey(in.Algorithm, pemText); err != nil {
		return nil, &InputError{Field: "publicKeyPEM", Code: CodeInvalidValue, Message: err.Error()}
	}
	taken, err := db.SigningKey.Query().
		Where(signingkey.Kid(in.Kid)).
		Exist(ctx)
	if err != nil {
		return nil, err
	}
	if taken {
		return nil, errKidTaken
	}
	key, err := db.SigningKey.Create().
		SetOrganizationID(v.OrganizationID).
		SetKid(in.Kid).
		SetAlgorithm(signingkey.Algorithm(in.Algorithm)).
		SetPublicKeyPem(pemText + "\n").
		Save(ctx)
	if ent.IsConstraintError(err) {
		// Registered at the same moment by another request.
		return nil, errKidTaken
	}
	if err != nil {
		return nil, fmt.Errorf("storing signing key: %w", err)
	}
	return key, nil
}

var errKidTaken = &InputError{Field: "kid", Code: CodeTaken,
	Message: "The organization already has a signing key with this kid."}

// RevokeKey revokes a signing key of the viewer's organization, and
// reports whether this call revoked it: tokens it signed are refused from
// then on, on every replica. The caller decides who may revoke keys and
// records it in the audit log (connection.Access). A key of another
// organization is ErrNotFound; one already revoked stays as it is (false).
func (e *Embedding) RevokeKey(ctx context.Context, id int) (bool, error) {
	v, err := Require(ctx)
	if err != nil {
		return false, err
	}
	// The tenant filter and write hook hold both to the viewer's
	// organization: another organization's key is not found.
	mine := []predicate.SigningKey{signingkey.ID(id)}
	n, err := e.DB.SigningKey.Update().
		Where(append(mine, signingkey.RevokedAtIsNil())...).
		SetRevokedAt(e.now()).
		Save(ctx)
	if err != nil {
		return false, err
	}
	if n == 0 {
		done, err := e.DB.SigningKey.Query().Where(append(mine, signingkey.RevokedAtNotNil())...).Exist(ctx)
		if err != nil {
			return false, err
		}
		if done {
			return false, nil
		}
		return false, fmt.Errorf("signing key %d: %w", id, ErrNotFound)
	}
	e.ForgetAll()
	tell(ctx, e.Revocations, RevokedSigningKey, v.OrganizationID, id)
	return true, nil
}

// ParsePublicKey parses a PKIX PEM public key for alg: an RSA key of at
// least 2048 bits for RS256, an Ed25519 key for EdDSA. Its errors say what
// is wrong and are safe to show.
func ParsePublicKey(alg, pemText string) (any, error) {
	block, rest := pem.Decode([]byte(strings.TrimSpace(pemText)))
	if block == nil {
		return nil, errors.New("The public key is not PEM-encoded.")
	}
	if block.Type != "PUBLIC KEY" {
		return nil, errors.New("The PEM block must be a PKIX \"PUBLIC KEY\".")
	}
	if len(strings.TrimSpace(string(rest))) != 0 {
		return nil, errors.New("Send exactly one PEM block.")
	}
	pub, err := x509.ParsePKIXPublicKey(block.Bytes)
	if err != nil {
		return nil, errors.New("The PEM block does not hold a PKIX public key.")
	}
	switch alg {
	case AlgRS256:
		k, ok := pub.(*rsa.PublicKey)
		if !ok {
			return nil, errors.New("RS256 needs an RSA public key.")
		}
		if k.N.BitLen() < minRSABits {
			return nil, fmt.Errorf("RS256 needs an RSA key of at least %d bits.", minRSABits)
		}
		return k, nil
	case AlgEdDSA:
		k, ok := pub.(ed25519.PublicKey)
		if !ok {
			return nil, errors.New("EdDSA needs an Ed25519 public key.")
		}
		return k, nil
	}
	return nil, errors.New("The algorithm must be RS256 or EdDSA.")
}
