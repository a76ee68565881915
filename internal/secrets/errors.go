package secrets

import "errors"

// Sentinel errors. Errors returned by this package wrap one of them (test with
// errors.Is) and add context such as a data key ID; they never carry
// plaintext, associated data or key bytes.
var (
	// ErrNoActiveKey reports that no data key is active. KeyStore.ActiveDataKey
	// returns an error wrapping it when the store holds no active key.
	ErrNoActiveKey = errors.New("secrets: no active data key")

	// ErrUnknownKey reports a data key ID the store does not know.
	// KeyStore.DataKey returns an error wrapping it when no key has that ID.
	ErrUnknownKey = errors.New("secrets: unknown data key")

	// ErrDecrypt reports that authentication failed: the ciphertext was
	// tampered with, the associated data differs from the one it was sealed
	// with, or the key is wrong. It deliberately says no more.
	ErrDecrypt = errors.New("secrets: decryption failed")

	// ErrMalformed reports a ciphertext or wrapped data key that is not in
	// this package's format.
	ErrMalformed = errors.New("secrets: malformed ciphertext")

	// ErrMasterKeyMismatch reports a data key wrapped by a master key other
	// than the one loaded.
	ErrMasterKeyMismatch = errors.New("secrets: data key is wrapped by another master key")
)
