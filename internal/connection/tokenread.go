package connection

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/plugboard/plugboard/ent"
	"github.com/plugboard/plugboard/ent/credential"
	"github.com/plugboard/plugboard/internal/auth"
	"github.com/plugboard/plugboard/internal/oauth"
)

// Token returns an access token of the credential valid for at least
// minValidity, refreshing it first when needed. minValidity <= 0 means
// the type's refresh margin: the token is refreshed once it is within the
// margin of its expiry (its schedule).
//
// While refreshing fails transiently the credential is ERROR and retried
// with backoff; meanwhile Token serves the current token while it is valid
// for minValidity (with minValidity <= 0: until it expires), and fails with
// an error wrapping oauth.ErrProvider otherwise. A FAILED credential fails
// with oauth.ErrReconnectNeeded, one never authorized with
// oauth.ErrNotConnected.
//
// The viewer of ctx must be a RUNTIME or ORG_ADMIN viewer of the
// credential's organization (or plugboard itself).
func (s *Service) Token(ctx context.Context, credentialID int, minValidity time.Duration) (*oauth.Token, error) {
	return s.token(ctx, credentialID, minValidity, nil)
}

// token is Token; loaded, when not nil, is the credential's row as the
// caller just read it, judged first instead of reading it again (the
// runtime read), and read afresh after a refresh.
func (s *Service) token(ctx context.Context, credentialID int, minValidity time.Duration, loaded *ent.Credential) (*oauth.Token, error) {
	return s.tokenOf(ctx, credentialID, need{minValidity: max(minValidity, expirySkew)}, loaded)
}

// tokenFor is Token for a need of the caller's (the proxy's: a token other
// than the one the upstream rejected).
func (s *Service) tokenFor(ctx context.Context, credentialID int, n need) (*oauth.Token, error) {
	return s.tokenOf(ctx, credentialID, n, nil)
}

// tokenOf is token for need n.
func (s *Service) tokenOf(ctx context.Context, credentialID int, n need, loaded *ent.Credential) (*oauth.Token, error) {
	if err := mayReadToken(ctx); err != nil {
		return nil, err
	}
	if s.OAuth == nil {
		return nil, credErr(credentialID, fmt.Errorf("%w: OAuth 2.0 is not configured on this server", oauth.ErrMisconfigured))
	}
	var last flightResult
	for attempt := 0; attempt < 3; attempt++ {
		if tok, done, err := s.storedToken(ctx, credentialID, n, loaded); done {
			return tok, err
		}
		loaded = nil
		select {
		case r := <-s.fly(ctx, credentialID, n):
			last = r.Val.(flightResult)
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		if tok, done, err := servedAfter(last, n, s.now()); done {
			return tok, err
		}
	}
	if last.err != nil {
		return nil, last.err
	}
	return nil, credErr(credentialID, fmt.Errorf("%w: the token could not be refreshed", oauth.ErrProvider))
}

// mayReadToken lets RUNTIME and ORG_ADMIN viewers, and plugboard itself,
// read access tokens (the authorization table's ReadToken).
func mayReadToken(ctx context.Context) error {
	_, err := Authorize(ctx, ReadToken)
	return err
}

// storedToken reads the credential's token (from cred when not nil) and
// decides: done with the token (or an error) to answer, or not done when a
// refresh must run.
func (s *Service) storedToken(ctx context.Context, id int, n need, cred *ent.Credential) (*oauth.Token, bool, error) {
	if cred == nil {
		var err error
		cred, err = s.DB.Credential.Get(ctx, id)
		if ent.IsNotFound(err) {
			return nil, true, credentialNotFound(id)
		}
		if err != nil {
			return nil, true, err
		}
	}
	tok, err := s.OAuth.Open(ctx, cred)
	if err != nil {
		return nil, true, err
	}
	now := s.now()
	v, err := judge(cred, tok, n, now)
	switch {
	case err != nil:
		return nil, true, err
	case v == serve:
		return tok, true, nil
	case v == waitBackoff:
		if validFor(tok, now, n.minValidity) {
			return tok, true, nil
		}
		return nil, true, backoffError(cred)
	}
	return nil, false, nil
}

// servedAfter decides what a token read answers after the refresh it
// waited for: done with a token or an error, or not done to look again.
func servedAfter(last flightResult, n need, now time.Time) (*oauth.Token, bool, error) {
	switch {
	case last.err == nil && last.tok != nil && (last.refreshed || validFor(last.tok, now, n.minValidity) && !n.rejects(last.tok)):
		return last.tok, true, nil
	case last.err == nil || errors.Is(last.err, errBusy):
		// Joined a refresh that asked for less, or lost a race: look again.
		return nil, false, nil
	case last.to == credential.StatusFAILED || errors.Is(last.err, oauth.ErrReconnectNeeded) || errors.Is(last.err, oauth.ErrNotConnected):
		return nil, true, last.err
	case validFor(last.tok, now, n.minValidity):
		// Transient failure: the current token still does.
		return last.tok, true, nil
	default:
		return nil, true, last.err
	}
}

// fly runs one refresh of the credential in this process, shared by every
// caller that asks meanwhile. It outlives the caller's cancellation (the
// others may still wait for it) but not its own deadline.
func (s *Service) fly(ctx context.Context, id int, n need) <-chan singleflightResult {
	return s.refreshes().flights.DoChan(strconv.Itoa(id), func() (any, error) {
		fctx, cancel := context.WithTimeout(auth.SystemContext(context.WithoutCancel(ctx)), 2*s.OAuth.TokenTimeout()+30*time.Second)
		defer cancel()
		return s.refreshOnce(fctx, id, n), nil
	})
}
