package connection

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

	"entgo.io/ent/dialect"
	"golang.org/x/sync/singleflight"

	"github.com/plugboard/plugboard/ent"
	"github.com/plugboard/plugboard/ent/credential"
	"github.com/plugboard/plugboard/internal/auth"
	"github.com/plugboard/plugboard/internal/oauth"
)

// Defaults of RefreshOptions.
const (
	DefaultMaxFailures        = 5
	DefaultRefreshConcurrency = 8
	DefaultSweepBatch         = 200
)

// RefreshOptions configure the refreshes of stored OAuth 2.0 tokens.
type RefreshOptions struct {
	// Dialect is dialect.SQLite or dialect.Postgres; on PostgreSQL a
	// refresh holds the credential's advisory lock, for other replicas.
	Dialect string
	// SQL is the pool under DB. Optional: on PostgreSQL it bounds
	// Concurrency below the pool size, since a refresh holds a connection
	// (its lock transaction) while it calls the provider.
	SQL *sql.DB
	// MaxFailures is how many refreshes in a row may fail before the
	// credential is FAILED (default 5).
	MaxFailures int
	// Concurrency bounds the refreshes a process runs at once, in the
	// sweeper and for token reads together (default 8).
	Concurrency int
	// SweepBatch is how many due credentials one sweeper query reads
	// (default 200).
	SweepBatch int
}

// refresher is the state of the refreshes of one Service.
type refresher struct {
	postgres         bool
	maxFailures, bat int
	// flights makes one refresh per credential at a time in this process.
	flights singleflight.Group
	// slots bounds concurrent refreshes (Concurrency).
	slots chan struct{}
}

func newRefresher(o RefreshOptions) *refresher {
	r := &refresher{postgres: o.Dialect == dialect.Postgres, maxFailures: o.MaxFailures, bat: o.SweepBatch}
	if r.maxFailures <= 0 {
		r.maxFailures = DefaultMaxFailures
	}
	if r.bat <= 0 {
		r.bat = DefaultSweepBatch
	}
	n := o.Concurrency
	if n <= 0 {
		n = DefaultRefreshConcurrency
	}
	if r.postgres && o.SQL != nil {
		// Leave a connection free for what a refresh reads outside its
		// lock transaction (e.g. the keyring's data keys).
		if pool := o.SQL.Stats().MaxOpenConnections; pool > 0 && n > pool-1 {
			n = max(1, pool-1)
		}
	}
	r.slots = make(chan struct{}, n)
	return r
}

// refreshes returns the refresh state, made on first use.
func (s *Service) refreshes() *refresher {
	s.refreshInit.Do(func() { s.refresh = newRefresher(s.Refresh) })
	return s.refresh
}

// acquire takes a refresh slot, or fails when ctx ends first.
func (r *refresher) acquire(ctx context.Context) (func(), error) {
	select {
	case r.slots <- struct{}{}:
		return func() { <-r.slots }, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// expirySkew is the least validity a token read asks for: a token that
// expires sooner is not handed out.
const expirySkew = 5 * time.Second

// Backoff of failed refreshes: 30 s, doubling per failure, at most 1 h,
// jittered by ±20 %.
const (
	backoffBase = 30 * time.Second
	backoffMax  = time.Hour
)

func backoff(failures int) time.Duration {
	d := backoffBase
	for i := 1; i < failures && d < backoffMax; i++ {
		d *= 2
	}
	d = time.Duration(float64(d) * (0.8 + 0.4*rand.Float64()))
	return min(d, backoffMax)
}

// lockNamespace is the high part of the advisory lock keys of refreshes:
// the key of credential id is lockNamespace | id ("oau" in the top bytes;
// ids stay far below 2^40).
const lockNamespace = int64(0x6f6175) << 40

func lockKey(id int) int64 { return lockNamespace | (int64(id) & (1<<40 - 1)) }

// need says when a refresh is due.
type need struct {
	// sweep: refresh when the schedule says so (next_refresh_at <= now).
	sweep bool
	// minValidity: a token read refreshes when the token is due or is not
	// valid for this long.
	minValidity time.Duration
	// rejected, when set, is an access token the API rejected (a 401 to
	// the credential proxy): a token read refreshes while it is the stored
	// one.
	rejected string
}

// rejects reports whether tok is the token n says the API rejected.
func (n need) rejects(tok *oauth.Token) bool {
	return n.rejected != "" && tok != nil && tok.AccessToken == n.rejected
}

type verdict int

const (
	serve       verdict = iota // the token is fine as it is
	refreshNow                 // call the provider
	waitBackoff                // refreshing failed; the next attempt is not due yet
)

// validFor reports whether tok's access token is still valid d after now.
func validFor(tok *oauth.Token, now time.Time, d time.Duration) bool {
	return tok != nil && tok.AccessToken != "" && (tok.Expiry.IsZero() || tok.Expiry.After(now.Add(d)))
}

// judge decides what a credential with token tok needs.
func judge(c *ent.Credential, tok *oauth.Token, n need, now time.Time) (verdict, error) {
	if c.Status == credential.StatusFAILED {
		return serve, credErr(c.ID, fmt.Errorf("%w: %s", oauth.ErrReconnectNeeded, c.StatusDetail))
	}
	if tok == nil {
		return serve, credErr(c.ID, oauth.ErrNotConnected)
	}
	due := c.NextRefreshAt != nil && !c.NextRefreshAt.After(now)
	if n.sweep {
		if due {
			return refreshNow, nil
		}
		return serve, nil
	}
	if !due && validFor(tok, now, n.minValidity) && !n.rejects(tok) {
		return serve, nil
	}
	if c.Status == credential.StatusERROR && c.NextRefreshAt != nil && c.NextRefreshAt.After(now) {
		return waitBackoff, nil
	}
	return refreshNow, nil
}

func credErr(id int, err error) error { return &oauth.CredentialError{ID: id, Err: err} }

// flightResult is what one refresh attempt tells everyone who waited for it.
type flightResult struct {
	// tok is the credential's token afterwards: the new one, or the current
	// one when the refresh was not needed or failed.
	tok       *oauth.Token
	refreshed bool
	// skipped: nothing was done (not due, another replica holds the lock,
	// or someone stored a token meanwhile).
	skipped bool
	// to is the credential's status afterwards.
	to  credential.Status
	err error
}

var errBusy = errors.New("another refresh of the credential is under way")

func backoffError(c *ent.Credential) error {
	return credErr(c.ID, fmt.Errorf("%w: the token is not valid long enough and refreshing it is failing: %s", oauth.ErrProvider, c.StatusDetail))
}

// singleflightResult is what a refresh flight delivers.
type singleflightResult = singleflight.Result

// refreshOnce refreshes credential id if it needs it, holding the
// credential's advisory lock on PostgreSQL.
func (s *Service) refreshOnce(ctx context.Context, id int, n need) flightResult {
	cred, err := s.DB.Credential.Get(ctx, id)
	if err != nil {
		return flightResult{err: err}
	}
	// The refresh and what it records run inside the credential's
	// organization.
	ctx = auth.OrganizationContext(ctx, cred.OrganizationID)
	// Resolve before taking a slot or a lock: it reads the type and
	// decrypts the secrets outside the lock transaction.
	ct, values, flowErr := s.Resolved(ctx, cred)
	var f *oauth.Flow
	if flowErr == nil {
		f, flowErr = s.OAuth.FlowOf(ct, values)
	}
	r := s.refreshes()
	release, err := r.acquire(ctx)
	if err != nil {
		return flightResult{err: err}
	}
	defer release()
	if !r.postgres {
		res := s.refreshLocked(ctx, s.DB, nil, id, f, flowErr, n)
		if res.err2 != nil {
			return flightResult{err: res.err2}
		}
		return res.flightResult
	}
	tx, err := s.lockTx(ctx, id, n.sweep)
	if err != nil || tx == nil {
		if err == nil {
			err = errBusy
		}
		return flightResult{err: err, skipped: true}
	}
	res := s.refreshLocked(ctx, tx.Client(), tx, id, f, flowErr, n)
	if cerr := finishTx(tx, res.err2); cerr != nil {
		return flightResult{err: cerr}
	}
	if res.err2 != nil {
		return flightResult{err: res.err2}
	}
	return res.flightResult
}

// lockTx begins a transaction holding the credential's advisory lock; with
// try it returns a nil tx instead of waiting when another replica holds it.
func (s *Service) lockTx(ctx context.Context, id int, try bool) (*ent.Tx, error) {
	tx, err := s.DB.Tx(ctx)
	if err != nil {
		return nil, fmt.Errorf("starting transaction: %w", err)
	}
	db := tx.Client()
	if !try {
		if _, err := db.ExecContext(ctx, "SELECT pg_advisory_xact_lock($1)", lockKey(id)); err != nil {
			_ = tx.Rollback()
			return nil, fmt.Errorf("locking credential %d: %w", id, err)
		}
		return tx, nil
	}
	ok, err := tryLock(ctx, db, id)
	if err != nil || !ok {
		_ = tx.Rollback()
		if err != nil {
			return nil, fmt.Errorf("locking credential %d: %w", id, err)
		}
		return nil, nil
	}
	return tx, nil
}

// tryLock takes the credential's advisory lock if no one holds it.
func tryLock(ctx context.Context, db *ent.Client, id int) (bool, error) {
	rows, err := db.QueryContext(ctx, "SELECT pg_try_advisory_xact_lock($1)", lockKey(id))
	if err != nil {
		return false, err
	}
	var ok bool
	for rows.Next() {
		err = rows.Scan(&ok)
	}
	if cerr := rows.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = rows.Err()
	}
	return ok, err
}

// lockedResult is a refresh outcome plus err2, a storage error that makes
// the lock transaction roll back.
type lockedResult struct {
	flightResult
	err2 error
}

// writer runs fn in the lock transaction, or in a transaction of its own
// when there is none (SQLite).
type writer func(fn func(tx *ent.Tx) error) error

func (s *Service) writerOf(ctx context.Context, lock *ent.Tx) writer {
	return func(fn func(tx *ent.Tx) error) error {
		if lock != nil {
			return fn(lock)
		}
		return s.withTx(ctx, fn)
	}
}

// refreshLocked reads the credential again (under the lock on PostgreSQL),
// decides, calls the provider if needed and records the outcome. flowErr
// is the error of resolving the credential's flow, recorded as a failure
// when a refresh is due.
func (s *Service) refreshLocked(ctx context.Context, db *ent.Client, lock *ent.Tx, id int, f *oauth.Flow, flowErr error, n need) lockedResult {
	cred, err := db.Credential.Get(ctx, id)
	if err != nil {
		return lockedResult{err2: err}
	}
	tok, err := s.OAuth.Open(ctx, cred)
	if err != nil {
		return lockedResult{err2: err}
	}
	now := s.now()
	v, err := judge(cred, tok, n, now)
	switch {
	case err != nil:
		return lockedResult{flightResult: flightResult{tok: tok, to: cred.Status, err: err, skipped: true}}
	case v == serve:
		return lockedResult{flightResult: flightResult{tok: tok, to: cred.Status, skipped: true}}
	case v == waitBackoff:
		return lockedResult{flightResult: flightResult{tok: tok, to: cred.Status, err: backoffError(cred)}}
	}
	var pe *oauth.ProviderError
	var fresh *oauth.Token
	if flowErr != nil {
		s.log().Warn("cannot refresh: the credential's OAuth 2.0 settings are unusable", "credential", id, "err", flowErr)
		pe = oauth.ConfigFailure(flowErr)
	} else {
		fresh, pe = s.OAuth.Refresh(ctx, f, tok)
	}
	write := s.writerOf(ctx, lock)
	if pe == nil {
		return s.recordRefreshed(ctx, write, cred, f, fresh, now)
	}
	return s.recordFailure(ctx, write, cred, tok, pe, now)
}

// recordRefreshed stores a refreshed token and says how it went.
func (s *Service) recordRefreshed(ctx context.Context, write writer, cred *ent.Credential, f *oauth.Flow, fresh *oauth.Token, now time.Time) lockedResult {
	ok, err := s.storeRefreshed(ctx, write, cred, f, fresh, now)
	switch {
	case err != nil:
		return lockedResult{err2: err}
	case !ok:
		return lockedResult{flightResult: flightResult{err: errBusy, skipped: true}}
	}
	s.log().Debug("token refreshed", "credential", cred.ID)
	return lockedResult{flightResult: flightResult{tok: fresh, refreshed: true, to: credential.StatusACTIVE}}
}

// recordFailure stores a failed refresh and says how it went: the current
// token tok stays.
func (s *Service) recordFailure(ctx context.Context, write writer, cred *ent.Credential, tok *oauth.Token, pe *oauth.ProviderError, now time.Time) lockedResult {
	c, ok, err := s.storeFailure(ctx, write, cred, pe, now)
	switch {
	case err != nil:
		return lockedResult{err2: err}
	case !ok:
		return lockedResult{flightResult: flightResult{err: errBusy, skipped: true}}
	}
	s.log().Warn("refreshing a token failed", "credential", cred.ID, "reason", pe.Code, "transient", pe.Transient(), "status", c.to, "detail", c.detail)
	var ferr error = pe
	if c.to == credential.StatusFAILED {
		ferr = credErr(cred.ID, fmt.Errorf("%w: %s", oauth.ErrReconnectNeeded, c.detail))
	}
	return lockedResult{flightResult: flightResult{tok: tok, to: c.to, err: ferr}}
}

// storeRefreshed stores a refreshed token, unless the credential's token
// changed since cred was read (ok false).
func (s *Service) storeRefreshed(ctx context.Context, write writer, cred *ent.Credential, f *oauth.Flow, tok *oauth.Token, now time.Time) (bool, error) {
	sealed, err := s.OAuth.Seal(ctx, cred.ID, tok)
	if err != nil {
		return false, err
	}
	change := statusChange{cred: cred, to: credential.StatusACTIVE, actor: actorRefresh}
	if change.changed() {
		change.detail = "token refreshed"
		if cred.FailureCount > 0 {
			change.detail += fmt.Sprintf(" after %d failed attempts", cred.FailureCount)
		}
	}
	ok := false
	err = write(func(tx *ent.Tx) error {
		db := tx.Client()
		n, err := setToken(db.Credential.Update().Where(credential.ID(cred.ID), sameToken(cred)), sealed, tok, f.Margin(), now).Save(ctx)
		if err != nil || n == 0 {
			return err
		}
		ok = true
		// Every refresh is in the connection log, not only status changes.
		msg := "access token refreshed"
		if !tok.Expiry.IsZero() {
			msg += "; valid until " + tok.Expiry.UTC().Format(time.RFC3339)
		}
		if err := s.writeAudit(ctx, db, credentialEntry(cred, actorRefresh, "credential.refreshed", msg)); err != nil {
			return err
		}
		return s.transition(ctx, tx, change)
	})
	return ok, err
}

// failureOf is the status a failed refresh leaves: ERROR with backoff (the
// next attempt's time), or FAILED when the failure is permanent or one too
// many.
func (s *Service) failureOf(cred *ent.Credential, pe *oauth.ProviderError, now time.Time) (statusChange, time.Time) {
	count := cred.FailureCount + 1
	maxFailures := s.refreshes().maxFailures
	c := statusChange{cred: cred, to: credential.StatusERROR, actor: actorRefresh}
	var next time.Time
	switch {
	case pe.Permanent:
		c.to, c.detail = credential.StatusFAILED, pe.Message
	case count >= maxFailures:
		c.to = credential.StatusFAILED
		c.detail = fmt.Sprintf("refreshing the token failed %d times in a row (last: %s): the customer must reconnect", count, pe.Message)
	default:
		next = now.Add(backoff(count))
		c.detail = fmt.Sprintf("%s (attempt %d of %d; next attempt at %s)", pe.Message, count, maxFailures, next.Format(time.RFC3339))
	}
	return c, next
}

// storeFailure records a failed refresh, unless the credential's token
// changed since cred was read (ok false).
func (s *Service) storeFailure(ctx context.Context, write writer, cred *ent.Credential, pe *oauth.ProviderError, now time.Time) (statusChange, bool, error) {
	c, next := s.failureOf(cred, pe, now)
	ok := false
	err := write(func(tx *ent.Tx) error {
		db := tx.Client()
		u := db.Credential.Update().Where(credential.ID(cred.ID), sameToken(cred)).SetFailureCount(cred.FailureCount + 1)
		if next.IsZero() {
			u.ClearNextRefreshAt()
		} else {
			u.SetNextRefreshAt(next)
		}
		n, err := u.Save(ctx)
		if err != nil || n == 0 {
			return err
		}
		ok = true
		e := credentialEntry(cred, actorRefresh, "credential.refresh_failed", c.detail)
		e.detail = c.detail
		if err := s.writeAudit(ctx, db, e); err != nil {
			return err
		}
		return s.transition(ctx, tx, c)
	})
	return c, ok, err
}
