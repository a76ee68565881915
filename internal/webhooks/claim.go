package webhooks

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/plugboard/plugboard/ent"
	"github.com/plugboard/plugboard/ent/webhookdelivery"
	"github.com/plugboard/plugboard/internal/auth"
)

// claimSQL takes up to n due deliveries whose lease, if any, ran out, and
// leases them until $1. On PostgreSQL the inner SELECT locks the rows it
// picks and skips rows another replica's claim has locked (FOR UPDATE SKIP
// LOCKED), so concurrent claims take disjoint rows at once. Without SKIP
// LOCKED (FOR UPDATE alone) a second claim waits for the first to commit,
// then re-checks the locked rows, finds them leased and takes fewer: no row
// twice, but replicas queue behind one another. Without FOR UPDATE at all,
// both claims pick the same ids, the second UPDATE waits on the first's
// row locks and then re-checks only "id IN (...)", re-leasing the same
// rows: the event would be sent twice. SQLite has one writer: the single
// UPDATE ... RETURNING is the claim.
func (w *Worker) claimSQL() string {
	t, id := webhookdelivery.Table, webhookdelivery.FieldID
	pick := fmt.Sprintf(`SELECT %[2]s FROM %[1]s WHERE %[3]s = 'PENDING' AND %[4]s <= $2 AND (%[5]s IS NULL OR %[5]s < $2) ORDER BY %[4]s, %[2]s LIMIT $3`,
		t, id, webhookdelivery.FieldStatus, webhookdelivery.FieldNextAttemptAt, webhookdelivery.FieldLeaseUntil)
	if w.isPostgres() {
		pick += " FOR UPDATE SKIP LOCKED"
	}
	q := fmt.Sprintf(`UPDATE %[1]s SET %[3]s = $1 WHERE %[2]s IN (%[4]s) RETURNING %[2]s`,
		t, id, webhookdelivery.FieldLeaseUntil, pick)
	if !w.isPostgres() {
		// SQLite numbers ?NNN parameters the same way.
		for i := 1; i <= 3; i++ {
			q = strings.ReplaceAll(q, fmt.Sprintf("$%d", i), fmt.Sprintf("?%d", i))
		}
	}
	return q
}

// claim leases the due deliveries and returns their ids.
func (w *Worker) claim(ctx context.Context) ([]int, error) {
	ctx = auth.SystemContext(ctx)
	now := w.now()
	tx, err := w.cfg.DB.Tx(ctx)
	if err != nil {
		return nil, fmt.Errorf("claiming webhook deliveries: %w", err)
	}
	ids, err := claimIn(ctx, tx.Client(), w.claimSQL(), now.Add(w.cfg.Lease), now, w.cfg.Batch)
	if err != nil {
		_ = tx.Rollback()
		return nil, fmt.Errorf("claiming webhook deliveries: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return nil, fmt.Errorf("claiming webhook deliveries: %w", err)
	}
	return ids, nil
}

func claimIn(ctx context.Context, db *ent.Client, q string, until, now time.Time, n int) ([]int, error) {
	rows, err := db.QueryContext(ctx, q, until, now, n)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var ids []int
	for rows.Next() {
		var id int
		if err := rows.Scan(&id); err != nil {
			return nil, err
		}
		ids = append(ids, id)
	}
	return ids, rows.Err()
}
