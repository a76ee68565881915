package sealed

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"

	"github.com/plugboard/plugboard/ent"
	"github.com/plugboard/plugboard/ent/encryptionkey"
	"github.com/plugboard/plugboard/internal/auth"
	"github.com/plugboard/plugboard/internal/secrets"
)

// DefaultBatch is how many rows a batch reads when Rotator.Batch is zero.
const DefaultBatch = 200

// maxAttempts bounds the compare-and-swap retries of one row that keeps
// changing under the sweep; the row is then left for the next run.
const maxAttempts = 3

// Rotator rotates the data key and re-encrypts sealed values.
type Rotator struct {
	DB   *ent.Client
	Keys *secrets.Keyring
	// Batch is how many rows are read at a time (default DefaultBatch).
	Batch int
	// Log receives progress and per-row failures (never values); nil
	// discards.
	Log *slog.Logger
	// OnBatch, when set, is called after each batch is written.
	OnBatch func(Progress)

	// beforeSwap, in tests, runs between reading a row and writing it back.
	beforeSwap func(column string, id int)
}

// Progress describes one finished batch.
type Progress struct {
	// Column is the sealed column, e.g. "credentials.secrets".
	Column string
	// Rows is how many rows the batch read; LastID the highest id.
	Rows   int
	LastID int
	// Reencrypted counts values re-encrypted so far by this run, in every
	// column.
	Reencrypted int
}

// Result is the outcome of a rotation or a re-encryption sweep.
type Result struct {
	// KeyID is the active data key (the new one after Rotate).
	KeyID string
	// Reencrypted counts values written back under the active key.
	Reencrypted int
	// Remaining counts values still under another key when the sweep ended:
	// values that failed to decrypt (see Failed), and values written by a
	// process that had not yet learned of the new key. Run Reencrypt again
	// to move the latter.
	Remaining int
	// Failed counts values that could not be re-encrypted (malformed or
	// failing authentication); they are logged by column and row id.
	Failed int
	// Conflicts counts compare-and-swap writes lost to a concurrent save.
	Conflicts int
}

func (r *Rotator) log() *slog.Logger {
	if r.Log == nil {
		return slog.New(slog.DiscardHandler)
	}
	return r.Log
}

func (r *Rotator) batch() int {
	if r.Batch <= 0 {
		return DefaultBatch
	}
	return r.Batch
}

// Rotate makes a new active data key, then re-encrypts every sealed value
// under it (Reencrypt). When the sweep fails or ctx ends midway the new key
// stays active and nothing is lost: run Reencrypt (or Rotate) again.
func (r *Rotator) Rotate(ctx context.Context) (Result, error) {
	ctx = auth.SystemContext(ctx)
	// A key made under another master key than the stored ones would leave
	// values no single master key opens (say, rotating with the old key
	// after a rewrap): refuse.
	other, err := r.DB.EncryptionKey.Query().
		Where(encryptionkey.MasterKeyIDNEQ(r.Keys.MasterKeyID())).Count(ctx)
	if err != nil {
		return Result{}, fmt.Errorf("checking the data keys: %w", err)
	}
	if other > 0 {
		return Result{}, fmt.Errorf("%w: %d data key(s) are wrapped by another master key than the loaded one (%s); "+
			"finish the rewrap or load the current master key", secrets.ErrMasterKeyMismatch, other, r.Keys.MasterKeyID())
	}
	dk, err := r.Keys.Rotate(ctx)
	if err != nil {
		return Result{}, fmt.Errorf("rotating the data key: %w", err)
	}
	r.log().Info("new active data key", "key_id", dk.ID)
	res, err := r.Reencrypt(ctx)
	res.KeyID = dk.ID
	return res, err
}

// Reencrypt re-encrypts every sealed value not under the active data key,
// column by column in batches of rows by id, then counts what remains. It
// is resumable by construction: values already under the active key are
// skipped.
func (r *Rotator) Reencrypt(ctx context.Context) (Result, error) {
	ctx = auth.SystemContext(ctx)
	var res Result
	for _, col := range Columns() {
		if err := r.sweep(ctx, col, &res); err != nil {
			return res, err
		}
	}
	remaining, err := r.Pending(ctx)
	if err != nil {
		return res, err
	}
	res.Remaining = remaining
	if res.KeyID, err = r.activeID(ctx); err != nil {
		return res, err
	}
	r.log().Info("re-encryption finished", "reencrypted", res.Reencrypted, "remaining", res.Remaining,
		"failed", res.Failed, "conflicts", res.Conflicts)
	return res, nil
}

// activeID returns the active data key's id, as the Keyring sees it.
func (r *Rotator) activeID(ctx context.Context) (string, error) {
	// The Keyring does not export the active id; a throwaway ciphertext
	// names it in its header.
	ct, err := r.Keys.Encrypt(ctx, nil, []byte("plugboard/keys/probe"))
	if err != nil {
		return "", err
	}
	env, err := secrets.ParseCiphertext(ct)
	return env.KeyID, err
}

// eachBatch pages through col by id, calling fn with every batch read.
func (r *Rotator) eachBatch(ctx context.Context, col Column, fn func([]row) error) error {
	after, n := 0, r.batch()
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		rows, err := col.page(ctx, r.DB, after, n)
		if err != nil {
			return fmt.Errorf("reading %s: %w", col.Name(), err)
		}
		if len(rows) > 0 {
			if err := fn(rows); err != nil {
				return err
			}
			after = rows[len(rows)-1].id
		}
		if len(rows) < n {
			return nil
		}
	}
}

func (r *Rotator) sweep(ctx context.Context, col Column, res *Result) error {
	return r.eachBatch(ctx, col, func(rows []row) error {
		for _, row := range rows {
			if err := r.reencryptRow(ctx, col, row, res); err != nil {
				return err
			}
		}
		if r.OnBatch != nil {
			r.OnBatch(Progress{Column: col.Name(), Rows: len(rows), LastID: rows[len(rows)-1].id, Reencrypted: res.Reencrypted})
		}
		return nil
	})
}

// reencryptRow moves one value to the active key, re-reading the row when a
// concurrent write wins the compare-and-swap. Only database and context
// errors are returned; a value that does not decrypt is logged and counted.
func (r *Rotator) reencryptRow(ctx context.Context, col Column, row row, res *Result) error {
	for attempt := 1; ; attempt++ {
		lost, err := r.moveOnce(ctx, col, row, res)
		if err != nil || !lost {
			return err
		}
		res.Conflicts++
		if attempt >= maxAttempts {
			r.log().Warn("row keeps changing; left for the next run", "column", col.Name(), "id", row.id)
			return nil
		}
		// Lost to a concurrent save: read the row again.
		fresh, ok, err := r.reread(ctx, col, row.id)
		if err != nil || !ok {
			return err
		}
		row = fresh
	}
}

// moveOnce re-encrypts one value under the active key and swaps it in; it
// reports whether a concurrent write won the swap.
func (r *Rotator) moveOnce(ctx context.Context, col Column, row row, res *Result) (lost bool, err error) {
	nv, err := r.reencrypted(ctx, col, row, res)
	if err != nil || nv == nil {
		return false, err
	}
	if r.beforeSwap != nil {
		r.beforeSwap(col.Name(), row.id)
	}
	ok, err := col.swap(ctx, r.DB, row, nv)
	if err != nil {
		return false, fmt.Errorf("writing %s row %d: %w", col.Name(), row.id, err)
	}
	if ok {
		res.Reencrypted++
	}
	return !ok, nil
}

// reencrypted returns the value of row sealed under the active key, or nil
// when there is nothing to write: the value is under it already, or it is
// malformed or does not decrypt (logged and counted as failed).
func (r *Rotator) reencrypted(ctx context.Context, col Column, row row, res *Result) ([]byte, error) {
	need, err := r.Keys.NeedsReencrypt(ctx, row.ct)
	if errors.Is(err, secrets.ErrMalformed) {
		res.Failed++
		r.log().Error("sealed value is malformed; left as is", "column", col.Name(), "id", row.id, "err", err)
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("%s row %d: %w", col.Name(), row.id, err)
	}
	if !need {
		return nil, nil
	}
	nv, err := r.Keys.Reencrypt(ctx, row.ct, row.aad)
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		res.Failed++
		r.log().Error("sealed value does not decrypt; left under its key", "column", col.Name(), "id", row.id, "err", err)
		return nil, nil
	}
	if bytes.Equal(nv, row.ct) {
		return nil, nil
	}
	return nv, nil
}

// reread reads row id of col again; false when it was erased meanwhile.
func (r *Rotator) reread(ctx context.Context, col Column, id int) (row, bool, error) {
	fresh, err := col.page(ctx, r.DB, id-1, 1)
	if err != nil {
		return row{}, false, fmt.Errorf("re-reading %s row %d: %w", col.Name(), id, err)
	}
	if len(fresh) == 0 || fresh[0].id != id {
		return row{}, false, nil
	}
	return fresh[0], true, nil
}

// Pending counts sealed values not under the active data key (malformed
// ones included). It reads only ciphertext headers: nothing is decrypted.
func (r *Rotator) Pending(ctx context.Context) (int, error) {
	ctx = auth.SystemContext(ctx)
	total := 0
	for _, col := range Columns() {
		err := r.eachBatch(ctx, col, func(rows []row) error {
			for _, row := range rows {
				need, err := r.Keys.NeedsReencrypt(ctx, row.ct)
				if err != nil && !errors.Is(err, secrets.ErrMalformed) {
					return err
				}
				if need || err != nil {
					total++
				}
			}
			return nil
		})
		if err != nil {
			return total, err
		}
	}
	return total, nil
}
