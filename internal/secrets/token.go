package secrets

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"io"
)

// Bounds on RandomToken's entropy.
const (
	// MinTokenBytes is the least randomness RandomToken accepts: 128 bits.
	MinTokenBytes = 16
	// MaxTokenBytes is the most randomness RandomToken accepts.
	MaxTokenBytes = 512
)

// HashToken returns the SHA-256 of token in lower-case hex, the form in which
// API tokens and OAuth states are stored. Tokens are random and long (see
// RandomToken), so a plain hash suffices; no salt or slow hash is needed.
func HashToken(token string) string {
	sum := sha256.Sum256([]byte(token))
	return hex.EncodeToString(sum[:])
}

// EqualHash compares two hashes (such as HashToken results) in constant
// time, so a comparison's duration reveals nothing of where they differ.
func EqualHash(a, b string) bool {
	return subtle.ConstantTimeCompare([]byte(a), []byte(b)) == 1
}

// RandomToken returns prefix followed by nbytes random bytes in unpadded
// URL-safe base64, for example RandomToken("pb_admin_", 32). The prefix tells
// people and secret scanners what a token is. nbytes must be between
// MinTokenBytes and MaxTokenBytes.
func RandomToken(prefix string, nbytes int) (string, error) {
	if nbytes < MinTokenBytes || nbytes > MaxTokenBytes {
		return "", fmt.Errorf("secrets: token size %d bytes is not between %d and %d", nbytes, MinTokenBytes, MaxTokenBytes)
	}
	buf := make([]byte, nbytes)
	if _, err := io.ReadFull(rand.Reader, buf); err != nil {
		return "", fmt.Errorf("secrets: generating a token: %w", err)
	}
	return prefix + base64.RawURLEncoding.EncodeToString(buf), nil
}
