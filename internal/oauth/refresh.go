package oauth

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"
	"time"

	"github.com/plugboard/plugboard/ent"
	"github.com/plugboard/plugboard/ent/credential"
	"github.com/plugboard/plugboard/internal/auth"
)

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
}

type verdict int

const (
	serve       verdict = iota // the token is fine as it is
	refreshNow                 // call the provider
	waitBackoff                // refreshing failed; the next attempt is not due yet
)

// judge decides what a credential with token tok needs.
func judge(c *ent.Credential, tok *Token, n need, now time.Time) (verdict, error) {
	if c.Status == credential.StatusFAILED {
		return serve, credentialErr(c.ID, fmt.Errorf("%w: %s", ErrReconnectNeeded, c.StatusDetail))
	}
	if tok == nil {
		return serve, credentialErr(c.ID, ErrNotConnected)
	}
	due := c.NextRefreshAt != nil && !c.NextRefreshAt.After(now)
	if n.sweep {
		if due {
			return refreshNow, nil
		}
		return serve, nil
	}
	if !due && tok.validFor(now, n.minValidity) {
		return serve, nil
	}
	if c.Status == credential.StatusERROR && c.NextRefreshAt != nil && c.NextRefreshAt.After(now) {
		return waitBackoff, nil
	}
	return refreshNow, nil
}

// flightResult is what one refresh attempt tells everyone who waited for it.
type flightResult struct {
	// tok is the credential's token afterwards: the new one, or the current
	// one when the refresh was not needed or failed.
	tok       *Token
	refreshed bool
	// skipped: nothing was done (not due, another replica holds the lock,
	// or someone stored a token meanwhile).
	skipped bool
	// to is the credential's status afterwards.
	to  credential.Status
	err error
}

var errBusy = errors.New("another refresh of the credential is under way")

// Token returns an access token of the credential valid for at least
// minValidity, refreshing it first when needed. minValidity <= 0 means
// the type's refresh margin: the token is refreshed once it is within the
// margin of its expiry (its schedule).
//
// While refreshing fails transiently the credential is ERROR and retried
// with backoff; meanwhile Token serves the current token while it is valid
// for minValidity (with minValidity <= 0: until it expires), and fails with
// an error wrapping ErrProvider otherwise. A FAILED credential fails with
// ErrReconnectNeeded, one never authorized with ErrNotConnected.
//
// The viewer of ctx must be a RUNTIME or ORG_ADMIN viewer of the
// credential's organization (or plugboard itself).
func (s *Service) Token(ctx context.Context, credentialID int, minValidity time.Duration) (*Token, error) {
	switch v := auth.FromContext(ctx); {
	case v == nil:
		return nil, auth.ErrUnauthenticated
	case v.Role != auth.RoleRuntime && v.Role != auth.RoleOrgAdmin && !v.IsSystem():
		return nil, fmt.Errorf("%w: reading a token needs a runtime or admin token", auth.ErrForbidden)
	}
	n := need{minValidity: max(minValidity, expirySkew)}
	var last flightResult
	for attempt := 0; attempt < 3; attempt++ {
		cred, err := s.db.Credential.Get(ctx, credentialID)
		if ent.IsNotFound(err) {
			return nil, notFound(credentialID)
		}
		if err != nil {
			return nil, err
		}
		tok, err := s.open(ctx, cred)
		if err != nil {
			return nil, err
		}
		now := s.now()
		v, err := judge(cred, tok, n, now)
		switch {
		case err != nil:
			return nil, err
		case v == serve:
			return tok, nil
		case v == waitBackoff:
			if tok.validFor(now, n.minValidity) {
				return tok, nil
			}
			return nil, backoffError(cred)
		}
		select {
		case r := <-s.fly(ctx, credentialID, n):
			last = r.Val.(flightResult)
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		now = s.now()
		switch {
		case last.err == nil && last.tok != nil && (last.refreshed || last.tok.validFor(now, n.minValidity)):
			return last.tok, nil
		case last.err == nil || errors.Is(last.err, errBusy):
			// Joined a refresh that asked for less, or lost a race: look again.
			continue
		case last.to == credential.StatusFAILED || errors.Is(last.err, ErrReconnectNeeded) || errors.Is(last.err, ErrNotConnected):
			return nil, last.err
		case last.tok.validFor(now, n.minValidity):
			// Transient failure: the current token still does.
			return last.tok, nil
		default:
			return nil, last.err
		}
	}
	if last.err != nil {
		return nil, last.err
	}
	return nil, credentialErr(credentialID, fmt.Errorf("%w: the token could not be refreshed", ErrProvider))
}

func backoffError(c *ent.Credential) error {
	return credentialErr(c.ID, fmt.Errorf("%w: the token is not valid long enough and refreshing it is failing: %s", ErrProvider, c.StatusDetail))
}

// fly runs one refresh of the credential in this process, shared by every
// caller that asks meanwhile. It outlives the caller's cancellation (the
// others may still wait for it) but not its own deadline.
func (s *Service) fly(ctx context.Context, id int, n need) <-chan singleflightResult {
	return s.flights.DoChan(strconv.Itoa(id), func() (any, error) {
		fctx, cancel := context.WithTimeout(auth.SystemContext(context.WithoutCancel(ctx)), 2*s.tokenTimeout+30*time.Second)
		defer cancel()
		return s.refreshOnce(fctx, id, n), nil
	})
}

// refreshOnce refreshes credential id if it needs it, holding the
// credential's advisory lock on PostgreSQL.
func (s *Service) refreshOnce(ctx context.Context, id int, n need) flightResult {
	cred, err := s.db.Credential.Get(ctx, id)
	if err != nil {
		return flightResult{err: err}
	}
	// Resolve before taking a slot or a lock: it reads the type and
	// decrypts the secrets outside the lock transaction.
	ct, values, flowErr := s.values.Resolved(ctx, cred)
	var f *flow
	if flowErr == nil {
		f, flowErr = s.flowOf(ct, values)
	}
	release, err := s.acquire(ctx)
	if err != nil {
		return flightResult{err: err}
	}
	defer release()

	var tx *ent.Tx
	db := s.db
	if s.postgres {
		if tx, err = s.lockTx(ctx, id, n.sweep); err != nil || tx == nil {
			if err == nil {
				err = errBusy
			}
			return flightResult{err: err, skipped: true}
		}
		db = tx.Client()
	}
	res, t := s.refreshLocked(ctx, db, tx, id, f, flowErr, n)
	if tx != nil {
		if cerr := finishTx(tx, res.err2); cerr != nil {
			return flightResult{err: cerr}
		}
	}
	if res.err2 != nil {
		return flightResult{err: res.err2}
	}
	s.publish(ctx, t)
	return res.flightResult
}

// lockTx begins a transaction holding the credential's advisory lock; with
// try it returns a nil tx instead of waiting when another replica holds it.
func (s *Service) lockTx(ctx context.Context, id int, try bool) (*ent.Tx, error) {
	tx, err := s.db.Tx(ctx)
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
	rows, err := db.QueryContext(ctx, "SELECT pg_try_advisory_xact_lock($1)", lockKey(id))
	if err != nil {
		_ = tx.Rollback()
		return nil, fmt.Errorf("locking credential %d: %w", id, err)
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
	if err != nil || !ok {
		_ = tx.Rollback()
		if err != nil {
			return nil, fmt.Errorf("locking credential %d: %w", id, err)
		}
		return nil, nil
	}
	return tx, nil
}

// lockedResult is a refresh outcome plus err2, a storage error that makes
// the lock transaction roll back.
type lockedResult struct {
	flightResult
	err2 error
}

// refreshLocked reads the credential again (under the lock on PostgreSQL),
// decides, calls the provider if needed and records the outcome. flowErr
// is the error of resolving the credential's flow, recorded as a failure
// when a refresh is due.
func (s *Service) refreshLocked(ctx context.Context, db *ent.Client, tx *ent.Tx, id int, f *flow, flowErr error, n need) (lockedResult, transition) {
	cred, err := db.Credential.Get(ctx, id)
	if err != nil {
		return lockedResult{err2: err}, transition{}
	}
	tok, err := s.open(ctx, cred)
	if err != nil {
		return lockedResult{err2: err}, transition{}
	}
	now := s.now()
	v, err := judge(cred, tok, n, now)
	switch {
	case err != nil:
		return lockedResult{flightResult: flightResult{tok: tok, to: cred.Status, err: err, skipped: true}}, transition{}
	case v == serve:
		return lockedResult{flightResult: flightResult{tok: tok, to: cred.Status, skipped: true}}, transition{}
	case v == waitBackoff:
		return lockedResult{flightResult: flightResult{tok: tok, to: cred.Status, err: backoffError(cred)}}, transition{}
	}

	var pe *ProviderError
	var fresh *Token
	switch {
	case flowErr != nil:
		s.log.Warn("cannot refresh: the credential's OAuth 2.0 settings are unusable", "credential", id, "err", flowErr)
		pe = &ProviderError{Code: "configuration_error", Message: "the token cannot be refreshed: " + configMessage(flowErr)}
	default:
		fresh, err = s.observedRenew(ctx, f, tok)
		if err != nil {
			pe = s.classify(err, "refreshing the token", append(f.secrets, tok.AccessToken, tok.RefreshToken))
		}
	}
	write := func(fn func(db *ent.Client) error) error {
		if tx != nil {
			return fn(db)
		}
		return s.withTx(ctx, func(tx *ent.Tx) error { return fn(tx.Client()) })
	}
	if pe == nil {
		t, ok, err := s.storeRefreshed(ctx, write, cred, f, fresh, now)
		switch {
		case err != nil:
			return lockedResult{err2: err}, transition{}
		case !ok:
			return lockedResult{flightResult: flightResult{err: errBusy, skipped: true}}, transition{}
		}
		s.log.Debug("token refreshed", "credential", id)
		return lockedResult{flightResult: flightResult{tok: fresh, refreshed: true, to: t.to}}, t
	}
	t, ok, err := s.storeFailure(ctx, write, cred, pe, now)
	switch {
	case err != nil:
		return lockedResult{err2: err}, transition{}
	case !ok:
		return lockedResult{flightResult: flightResult{err: errBusy, skipped: true}}, transition{}
	}
	s.log.Warn("refreshing a token failed", "credential", id, "reason", pe.Code, "transient", pe.transient(), "status", t.to, "detail", t.detail)
	var ferr error = pe
	if t.to == credential.StatusFAILED {
		ferr = credentialErr(id, fmt.Errorf("%w: %s", ErrReconnectNeeded, t.detail))
	}
	return lockedResult{flightResult: flightResult{tok: tok, to: t.to, err: ferr}}, t
}

// configMessage is the text of a configuration error, which never holds a
// value (see flowOf).
func configMessage(err error) string {
	if errors.Is(err, ErrMisconfigured) || errors.Is(err, ErrNotOAuth) {
		return err.Error()
	}
	return "the connection's values could not be read"
}

// storeRefreshed stores a refreshed token, unless the credential's token
// changed since cred was read (ok false).
func (s *Service) storeRefreshed(ctx context.Context, write func(func(*ent.Client) error) error, cred *ent.Credential, f *flow, tok *Token, now time.Time) (transition, bool, error) {
	sealed, err := s.seal(ctx, cred.ID, tok)
	if err != nil {
		return transition{}, false, err
	}
	t := transition{cred: cred, from: cred.Status, to: credential.StatusACTIVE}
	ok := false
	err = write(func(db *ent.Client) error {
		u := setToken(db.Credential.Update().Where(credential.ID(cred.ID), sameToken(cred)), sealed, tok, f.margin, now).
			SetStatus(t.to)
		if t.from != t.to {
			t.detail = "token refreshed"
			if cred.FailureCount > 0 {
				t.detail += fmt.Sprintf(" after %d failed attempts", cred.FailureCount)
			}
			u.SetStatusDetail(t.detail)
		}
		n, err := u.Save(ctx)
		if err != nil || n == 0 {
			return err
		}
		ok = true
		// Every refresh is in the connection log, not only status changes.
		msg := "access token refreshed"
		if !tok.Expiry.IsZero() {
			msg += "; valid until " + tok.Expiry.UTC().Format(time.RFC3339)
		}
		if err := s.audit(ctx, db, cred, actorRefresh, "credential.refreshed", msg); err != nil {
			return err
		}
		return s.auditTransition(ctx, db, t, actorRefresh)
	})
	if !ok {
		t.to = t.from
	}
	return t, ok, err
}

// storeFailure records a failed refresh: ERROR with backoff, or FAILED when
// the failure is permanent or one too many.
func (s *Service) storeFailure(ctx context.Context, write func(func(*ent.Client) error) error, cred *ent.Credential, pe *ProviderError, now time.Time) (transition, bool, error) {
	count := cred.FailureCount + 1
	t := transition{cred: cred, from: cred.Status, to: credential.StatusERROR}
	var next time.Time
	switch {
	case pe.Permanent:
		t.to, t.detail = credential.StatusFAILED, pe.Message
	case count >= s.maxFailures:
		t.to = credential.StatusFAILED
		t.detail = fmt.Sprintf("refreshing the token failed %d times in a row (last: %s): the customer must reconnect", count, pe.Message)
	default:
		next = now.Add(backoff(count))
		t.detail = fmt.Sprintf("%s (attempt %d of %d; next attempt at %s)", pe.Message, count, s.maxFailures, next.Format(time.RFC3339))
	}
	ok := false
	err := write(func(db *ent.Client) error {
		u := db.Credential.Update().Where(credential.ID(cred.ID), sameToken(cred)).
			SetFailureCount(count).SetStatus(t.to).SetStatusDetail(t.detail)
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
		if err := s.audit(ctx, db, cred, actorRefresh, "credential.refresh_failed", t.detail); err != nil {
			return err
		}
		return s.auditTransition(ctx, db, t, actorRefresh)
	})
	if !ok {
		t.to = t.from
	}
	return t, ok, err
}
