package sealed

import (
	"bytes"
	"context"
	"fmt"

	"github.com/plugboard/plugboard/ent"
	"github.com/plugboard/plugboard/ent/encryptionkey"
	"github.com/plugboard/plugboard/internal/auth"
	"github.com/plugboard/plugboard/internal/secrets"
)

// RewrapResult is the outcome of Rewrap.
type RewrapResult struct {
	// Keys counts the data keys now wrapped by the new master key.
	Keys int
	// Rewrapped counts those this call changed (the others already were).
	Rewrapped int
}

// Rewrap re-wraps every data key under newMaster and stores them in one
// transaction; ciphertexts are untouched. Keys already wrapped by newMaster
// are passed through, so an interrupted rewrap can be run again. After it,
// only newMaster unwraps the data keys: switch every server to it (a server
// still on oldMaster fails on data keys it has not cached yet).
func Rewrap(ctx context.Context, db *ent.Client, oldMaster, newMaster secrets.MasterKey) (RewrapResult, error) {
	ctx = auth.SystemContext(ctx)
	tx, err := db.Tx(ctx)
	if err != nil {
		return RewrapResult{}, err
	}
	res, err := rewrapIn(ctx, tx, oldMaster, newMaster)
	if err != nil {
		_ = tx.Rollback()
		return RewrapResult{}, err
	}
	if err := tx.Commit(); err != nil {
		return RewrapResult{}, fmt.Errorf("committing re-wrapped data keys: %w", err)
	}
	// A key created under the old master while the transaction ran (a
	// concurrent rotation) would be missed: check, so the caller knows.
	left, err := db.EncryptionKey.Query().Where(encryptionkey.MasterKeyIDNEQ(newMaster.ID())).Count(ctx)
	if err != nil {
		return res, err
	}
	if left > 0 {
		return res, fmt.Errorf("%d data key(s) were created under the old master key meanwhile; run rewrap again", left)
	}
	return res, nil
}

// rewrapIn re-wraps and stores every data key inside tx.
func rewrapIn(ctx context.Context, tx *ent.Tx, oldMaster, newMaster secrets.MasterKey) (RewrapResult, error) {
	rows, err := tx.EncryptionKey.Query().Order(ent.Asc(encryptionkey.FieldID)).All(ctx)
	if err != nil {
		return RewrapResult{}, fmt.Errorf("reading data keys: %w", err)
	}
	in := make([]*secrets.DataKey, len(rows))
	for i, k := range rows {
		in[i] = &secrets.DataKey{ID: k.KeyID, MasterKeyID: k.MasterKeyID, Wrapped: k.Wrapped,
			Active: k.Status == encryptionkey.StatusACTIVE, CreatedAt: k.CreatedAt}
	}
	out, err := secrets.RewrapDataKeys(oldMaster, newMaster, in)
	if err != nil {
		return RewrapResult{}, err
	}
	res := RewrapResult{Keys: len(out)}
	for i, k := range out {
		if rows[i].MasterKeyID == k.MasterKeyID && bytes.Equal(rows[i].Wrapped, k.Wrapped) {
			continue
		}
		if err := storeRewrapped(ctx, tx, rows[i], k); err != nil {
			return RewrapResult{}, err
		}
		res.Rewrapped++
	}
	return res, nil
}

// storeRewrapped writes k over the stored key old, if old is unchanged.
func storeRewrapped(ctx context.Context, tx *ent.Tx, old *ent.EncryptionKey, k *secrets.DataKey) error {
	n, err := tx.EncryptionKey.Update().
		Where(encryptionkey.ID(old.ID), encryptionkey.MasterKeyIDEQ(old.MasterKeyID)).
		SetMasterKeyID(k.MasterKeyID).SetWrapped(k.Wrapped).
		Save(ctx)
	if err == nil && n != 1 {
		err = fmt.Errorf("data key %s changed meanwhile; run again", k.ID)
	}
	if err != nil {
		return fmt.Errorf("storing data key %s: %w", k.ID, err)
	}
	return nil
}
