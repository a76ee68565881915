package connection

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/plugboard/plugboard/ent"
	"github.com/plugboard/plugboard/ent/credential"
	"github.com/plugboard/plugboard/internal/auth"
	"github.com/plugboard/plugboard/internal/oauth"
)

// SweepStats counts what one sweep did.
type SweepStats struct {
	// Due is how many credentials were due when the sweep looked.
	Due int
	// Refreshed got a new token.
	Refreshed int
	// Failed failed transiently and are ERROR, retried with backoff.
	Failed int
	// Reconnect failed for good and are now FAILED.
	Reconnect int
	// Skipped needed nothing after all: refreshed meanwhile, or being
	// refreshed by another replica.
	Skipped int
	// Errors could not be processed (storage errors); retried next sweep.
	Errors int
	// StatesDeleted counts expired authorization states removed.
	StatesDeleted int
}

// sweepCursor pages through the due credentials in due order.
type sweepCursor struct {
	first   bool
	afterAt time.Time
	afterID int
}

// Sweep refreshes every credential whose refresh is due (ACTIVE or ERROR,
// with a token, next refresh time passed), in batches ordered by due time,
// RefreshOptions.Concurrency at a time. Each credential is visited at most
// once per sweep. FAILED credentials are never swept. It then deletes the
// authorizations that expired long ago.
func (s *Service) Sweep(ctx context.Context) (SweepStats, error) {
	ctx = auth.SystemContext(ctx)
	var st SweepStats
	now := s.now()
	cur := sweepCursor{first: true}
	size := s.refreshes().bat
	for {
		batch, err := s.dueBatch(ctx, now, &cur, size)
		if err != nil {
			return st, err
		}
		if len(batch) == 0 {
			break
		}
		st.Due += len(batch)
		s.refreshBatch(ctx, batch, &st)
		if err := ctx.Err(); err != nil {
			return st, err
		}
		if len(batch) < size {
			break
		}
	}
	n, err := s.OAuth.DeleteExpiredStates(ctx, now)
	if err != nil {
		return st, err
	}
	st.StatesDeleted = n
	return st, nil
}

// dueBatch reads the next batch of due credentials after cur, and moves
// cur past it.
func (s *Service) dueBatch(ctx context.Context, now time.Time, cur *sweepCursor, size int) ([]*ent.Credential, error) {
	q := s.DB.Credential.Query().
		Where(
			credential.NextRefreshAtLTE(now),
			credential.StatusIn(credential.StatusACTIVE, credential.StatusERROR),
			credential.TokenNotNil(),
		)
	if !cur.first {
		q.Where(credential.Or(
			credential.NextRefreshAtGT(cur.afterAt),
			credential.And(credential.NextRefreshAtEQ(cur.afterAt), credential.IDGT(cur.afterID)),
		))
	}
	batch, err := q.Order(ent.Asc(credential.FieldNextRefreshAt), ent.Asc(credential.FieldID)).
		Limit(size).
		Select(credential.FieldID, credential.FieldNextRefreshAt).
		All(ctx)
	if err != nil || len(batch) == 0 {
		return nil, err
	}
	last := batch[len(batch)-1]
	cur.first, cur.afterAt, cur.afterID = false, *last.NextRefreshAt, last.ID
	return batch, nil
}

// refreshBatch refreshes the credentials of batch, Concurrency at a time,
// and counts the outcomes in st.
func (s *Service) refreshBatch(ctx context.Context, batch []*ent.Credential, st *SweepStats) {
	var mu sync.Mutex
	var wg sync.WaitGroup
	work := make(chan int)
	for range min(cap(s.refreshes().slots), len(batch)) {
		wg.Go(func() {
			for id := range work {
				r := <-s.fly(ctx, id, need{sweep: true})
				mu.Lock()
				s.count(st, id, r.Val.(flightResult))
				mu.Unlock()
			}
		})
	}
	for _, c := range batch {
		if ctx.Err() != nil {
			break
		}
		work <- c.ID
	}
	close(work)
	wg.Wait()
}

// count adds one sweep outcome to st.
func (s *Service) count(st *SweepStats, id int, res flightResult) {
	switch {
	case res.refreshed:
		st.Refreshed++
	case res.to == credential.StatusFAILED && !res.skipped:
		st.Reconnect++
	case res.skipped || errors.Is(res.err, errBusy):
		st.Skipped++
	case errors.Is(res.err, oauth.ErrProvider):
		st.Failed++
	default:
		st.Errors++
		s.log().Error("sweeping a credential", "credential", id, "err", res.err)
	}
}

// RunSweeper sweeps every interval until ctx ends. Sweeps never overlap.
func (s *Service) RunSweeper(ctx context.Context, interval time.Duration) {
	if interval <= 0 {
		interval = time.Minute
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		start := time.Now()
		st, err := s.Sweep(ctx)
		switch {
		case err != nil && ctx.Err() == nil:
			s.log().Error("token sweep failed", "err", err)
		case st.Due > 0:
			s.log().Info("token sweep", "due", st.Due, "refreshed", st.Refreshed, "failed", st.Failed,
				"reconnect", st.Reconnect, "skipped", st.Skipped, "errors", st.Errors, "took", time.Since(start).Round(time.Millisecond))
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
