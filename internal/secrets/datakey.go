package secrets

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"time"
)

// DataKey is a data key as stored: 32 random bytes wrapped (AES-256-GCM) by a
// master key, with the data key's ID as associated data. Nothing in it is
// secret without the master key.
type DataKey struct {
	// ID names the key in every ciphertext it seals: 1 to 64 bytes of
	// [A-Za-z0-9._-].
	ID string
	// MasterKeyID is the ID of the master key that wrapped it.
	MasterKeyID string
	// Wrapped is the key, sealed by the master key.
	Wrapped []byte
	// Active reports whether this is the key new ciphertexts use; retired
	// keys only decrypt.
	Active bool
	// CreatedAt is when the key was made.
	CreatedAt time.Time
}

// KeyStore stores data keys. The caller implements it over its database; this
// package knows no storage.
type KeyStore interface {
	// ActiveDataKey returns the active data key, or an error wrapping
	// ErrNoActiveKey when there is none.
	ActiveDataKey(ctx context.Context) (*DataKey, error)
	// DataKey returns the data key with the given ID, active or retired, or an
	// error wrapping ErrUnknownKey when there is none.
	DataKey(ctx context.Context, id string) (*DataKey, error)
	// CreateDataKey stores k and, atomically, makes it the only active key:
	// every other key is retired in the same transaction.
	CreateDataKey(ctx context.Context, k *DataKey) error
}

const (
	maxKeyIDLen    = 64
	dataKeyPrefix  = "dk_"
	dataKeyIDBytes = 8 // 64 random bits: collisions need billions of rotations
)

// validKeyID reports whether id can name a data key in a ciphertext. The
// alphabet keeps IDs safe to put in errors and log lines.
func validKeyID(id string) bool {
	if len(id) == 0 || len(id) > maxKeyIDLen {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9',
			c == '.', c == '_', c == '-':
		default:
			return false
		}
	}
	return true
}

// newDataKey makes a data key wrapped by master. It returns the unwrapped key
// too; the caller clears it.
func newDataKey(master MasterKey, now time.Time) (*DataKey, []byte, error) {
	var idb [dataKeyIDBytes]byte
	if _, err := io.ReadFull(rand.Reader, idb[:]); err != nil {
		return nil, nil, fmt.Errorf("secrets: generating a data key ID: %w", err)
	}
	id := dataKeyPrefix + hex.EncodeToString(idb[:])
	raw := make([]byte, keySize)
	if _, err := io.ReadFull(rand.Reader, raw); err != nil {
		return nil, nil, fmt.Errorf("secrets: generating a data key: %w", err)
	}
	wrapped, err := master.wrap(id, raw)
	if err != nil {
		clear(raw)
		return nil, nil, err
	}
	dk := &DataKey{ID: id, MasterKeyID: master.ID(), Wrapped: wrapped, Active: true, CreatedAt: now.UTC()}
	return dk, raw, nil
}

// unwrapDataKey checks dk and opens it with master. The caller clears the
// result.
func unwrapDataKey(master MasterKey, dk *DataKey) ([]byte, error) {
	if !validKeyID(dk.ID) {
		return nil, fmt.Errorf("%w: data key ID %q is not 1 to %d bytes of [A-Za-z0-9._-]", ErrMalformed, dk.ID, maxKeyIDLen)
	}
	if dk.MasterKeyID != master.ID() {
		return nil, fmt.Errorf("%w: data key %s is wrapped by master key %q, but the loaded master key is %s",
			ErrMasterKeyMismatch, dk.ID, dk.MasterKeyID, master.ID())
	}
	return master.unwrap(dk.ID, dk.Wrapped)
}

// RewrapDataKeys re-wraps data keys under newMaster, for replacing the master
// key. Keys wrapped by oldMaster are unwrapped and wrapped again; keys already
// wrapped by newMaster are checked and passed through, so an interrupted
// replacement can be run again. Any other key is an error wrapping
// ErrMasterKeyMismatch, and nothing is returned.
//
// It returns new DataKey values, in order, with the same ID, Active and
// CreatedAt; the inputs are not modified. The caller stores them (all in one
// transaction) before switching to newMaster. Ciphertexts are untouched: the
// data keys themselves do not change.
func RewrapDataKeys(oldMaster, newMaster MasterKey, keys []*DataKey) ([]*DataKey, error) {
	if oldMaster.IsZero() || newMaster.IsZero() {
		return nil, errors.New("secrets: rewrapping data keys: a master key is unset")
	}
	if oldMaster.ID() == newMaster.ID() {
		return nil, fmt.Errorf("secrets: rewrapping data keys: old and new master keys are the same (%s)", newMaster.ID())
	}
	out := make([]*DataKey, 0, len(keys))
	for i, dk := range keys {
		if dk == nil {
			return nil, fmt.Errorf("secrets: rewrapping data keys: key %d is nil", i)
		}
		from := oldMaster
		if dk.MasterKeyID == newMaster.ID() {
			from = newMaster
		}
		raw, err := unwrapDataKey(from, dk)
		if err != nil {
			return nil, fmt.Errorf("secrets: rewrapping data key %s: %w", dk.ID, err)
		}
		wrapped := dk.Wrapped
		if from.ID() != newMaster.ID() {
			wrapped, err = newMaster.wrap(dk.ID, raw)
		}
		clear(raw)
		if err != nil {
			return nil, fmt.Errorf("secrets: rewrapping data key %s: %w", dk.ID, err)
		}
		out = append(out, &DataKey{
			ID:          dk.ID,
			MasterKeyID: newMaster.ID(),
			Wrapped:     append([]byte(nil), wrapped...),
			Active:      dk.Active,
			CreatedAt:   dk.CreatedAt,
		})
	}
	return out, nil
}
