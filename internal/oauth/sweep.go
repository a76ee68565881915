package oauth

import (
	"context"
	"time"

	"github.com/plugboard/plugboard/ent/oauthstate"
)

// stateRetention is how long expired authorization states are kept (for a
// clear "expired" answer) before they are deleted.
const stateRetention = 24 * time.Hour

// DeleteExpiredStates removes the authorizations that expired more than a
// day before now, and says how many.
func (s *Service) DeleteExpiredStates(ctx context.Context, now time.Time) (int, error) {
	return s.db.OAuthState.Delete().Where(oauthstate.ExpiresAtLT(now.Add(-stateRetention))).Exec(ctx)
}
