package server

import (
	"context"

	"github.com/plugboard/plugboard/internal/auth"
	"github.com/plugboard/plugboard/internal/events"
	"github.com/plugboard/plugboard/internal/onprem"
)

// revocations carries the revocations of API tokens and signing keys over
// the event bus: told to every replica through PostgreSQL LISTEN/NOTIFY,
// each dropping what its token caches remember.
type revocations struct{ bus *events.Bus }

// Revoked implements auth.Revocations.
func (r revocations) Revoked(ctx context.Context, kind string, orgID, id int) error {
	return r.bus.PublishRevocation(ctx, events.Revocation{Kind: kind, OrganizationID: orgID, ID: id})
}

// Trusted implements auth.Revocations.
func (r revocations) Trusted() bool { return r.bus.Trusted() }

// forgetRevoked makes tokens and embedding forget what a revocation told
// of, and hub cut the session of a deleted or rotated on-prem resource.
func forgetRevoked(bus *events.Bus, tokens *auth.Tokens, embedding *auth.Embedding, hub *onprem.Hub) {
	bus.OnRevocation(func(r events.Revocation) {
		switch r.Kind {
		case events.RevokedOnPremResource:
			hub.Cut(r.ID)
		case events.RevokedAPIToken:
			tokens.Forget(r.ID)
		case events.RevokedSigningKey:
			embedding.ForgetAll()
		case events.ChangedRows:
			// Rows, not authentication: Generations.Share.
		default:
			tokens.Forget(0)
			embedding.ForgetAll()
		}
	})
}
