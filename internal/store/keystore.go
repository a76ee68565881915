package store

import (
	"context"
	"fmt"

	"github.com/plugboard/plugboard/ent"
	"github.com/plugboard/plugboard/ent/encryptionkey"
	"github.com/plugboard/plugboard/internal/secrets"
)

// KeyStore keeps the wrapped data keys of internal/secrets in the
// encryption_keys table.
type KeyStore struct {
	DB *ent.Client
}

var _ secrets.KeyStore = (*KeyStore)(nil)

func toDataKey(k *ent.EncryptionKey) *secrets.DataKey {
	return &secrets.DataKey{
		ID:          k.KeyID,
		MasterKeyID: k.MasterKeyID,
		Wrapped:     k.Wrapped,
		Active:      k.Status == encryptionkey.StatusACTIVE,
		CreatedAt:   k.CreatedAt,
	}
}

// ActiveDataKey returns the key new secrets are sealed with.
func (s *KeyStore) ActiveDataKey(ctx context.Context) (*secrets.DataKey, error) {
	k, err := s.DB.EncryptionKey.Query().
		Where(encryptionkey.StatusEQ(encryptionkey.StatusACTIVE)).
		Order(ent.Desc(encryptionkey.FieldCreatedAt), ent.Desc(encryptionkey.FieldID)).
		First(ctx)
	if ent.IsNotFound(err) {
		return nil, secrets.ErrNoActiveKey
	}
	if err != nil {
		return nil, fmt.Errorf("reading the active data key: %w", err)
	}
	return toDataKey(k), nil
}

// DataKey returns the data key with the given id.
func (s *KeyStore) DataKey(ctx context.Context, id string) (*secrets.DataKey, error) {
	k, err := s.DB.EncryptionKey.Query().Where(encryptionkey.KeyID(id)).Only(ctx)
	if ent.IsNotFound(err) {
		return nil, fmt.Errorf("data key %s: %w", id, secrets.ErrUnknownKey)
	}
	if err != nil {
		return nil, fmt.Errorf("reading data key %s: %w", id, err)
	}
	return toDataKey(k), nil
}

// CreateDataKey stores k and makes it the only active key, atomically.
func (s *KeyStore) CreateDataKey(ctx context.Context, k *secrets.DataKey) error {
	tx, err := s.DB.Tx(ctx)
	if err != nil {
		return err
	}
	if err := tx.EncryptionKey.Update().
		Where(encryptionkey.StatusEQ(encryptionkey.StatusACTIVE)).
		SetStatus(encryptionkey.StatusRETIRED).
		Exec(ctx); err != nil {
		_ = tx.Rollback()
		return fmt.Errorf("retiring data keys: %w", err)
	}
	c := tx.EncryptionKey.Create().
		SetKeyID(k.ID).
		SetMasterKeyID(k.MasterKeyID).
		SetWrapped(k.Wrapped).
		SetStatus(encryptionkey.StatusACTIVE)
	if !k.CreatedAt.IsZero() {
		c.SetCreatedAt(k.CreatedAt)
	}
	if err := c.Exec(ctx); err != nil {
		_ = tx.Rollback()
		return fmt.Errorf("storing data key %s: %w", k.ID, err)
	}
	return tx.Commit()
}
