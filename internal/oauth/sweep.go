package oauth

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/plugboard/plugboard/ent"
	"github.com/plugboard/plugboard/ent/credential"
	"github.com/plugboard/plugboard/ent/oauthstate"
	"github.com/plugboard/plugboard/internal/auth"
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

// stateRetention is how long expired authorization states are kept (for a
// clear "expired" answer) before a sweep deletes them.
const stateRetention = 24 * time.Hour

// Sweep refreshes every credential whose refresh is due (ACTIVE or ERROR,
// with a token, next refresh time passed), in batches ordered by due time,
// RefreshConcurrency at a time. Each credential is visited at most once per
// sweep. FAILED credentials are never swept.
func (s *Service) Sweep(ctx context.Context) (SweepStats, error) {
	ctx = auth.SystemContext(ctx)
	var st SweepStats
	now := s.now()
	var mu sync.Mutex
	var (
		afterAt time.Time
		afterID int
		first   = true
	)
	for {
		q := s.db.Credential.Query().
			Where(
				credential.NextRefreshAtLTE(now),
				credential.StatusIn(credential.StatusACTIVE, credential.StatusERROR),
				credential.TokenNotNil(),
			)
		if !first {
			q.Where(credential.Or(
				credential.NextRefreshAtGT(afterAt),
				credential.And(credential.NextRefreshAtEQ(afterAt), credential.IDGT(afterID)),
			))
		}
		batch, err := q.Order(ent.Asc(credential.FieldNextRefreshAt), ent.Asc(credential.FieldID)).
			Limit(s.batch).
			Select(credential.FieldID, credential.FieldNextRefreshAt).
			All(ctx)
		if err != nil {
			return st, err
		}
		if len(batch) == 0 {
			break
		}
		first = false
		last := batch[len(batch)-1]
		afterAt, afterID = *last.NextRefreshAt, last.ID
		st.Due += len(batch)

		var wg sync.WaitGroup
		work := make(chan int)
		for range min(cap(s.slots), len(batch)) {
			wg.Go(func() {
				for id := range work {
					r := <-s.fly(ctx, id, need{sweep: true})
					res := r.Val.(flightResult)
					mu.Lock()
					switch {
					case res.refreshed:
						st.Refreshed++
					case res.to == credential.StatusFAILED && !res.skipped:
						st.Reconnect++
					case res.skipped || errors.Is(res.err, errBusy):
						st.Skipped++
					case errors.Is(res.err, ErrProvider):
						st.Failed++
					default:
						st.Errors++
						s.log.Error("sweeping a credential", "credential", id, "err", res.err)
					}
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
		if err := ctx.Err(); err != nil {
			return st, err
		}
		if len(batch) < s.batch {
			break
		}
	}
	n, err := s.db.OAuthState.Delete().Where(oauthstate.ExpiresAtLT(now.Add(-stateRetention))).Exec(ctx)
	if err != nil {
		return st, err
	}
	st.StatesDeleted = n
	return st, nil
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
			s.log.Error("token sweep failed", "err", err)
		case st.Due > 0:
			s.log.Info("token sweep", "due", st.Due, "refreshed", st.Refreshed, "failed", st.Failed,
				"reconnect", st.Reconnect, "skipped", st.Skipped, "errors", st.Errors, "took", time.Since(start).Round(time.Millisecond))
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
