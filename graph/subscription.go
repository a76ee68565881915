package graph

import (
	"context"

	"github.com/plugboard/plugboard/ent/credential"
	"github.com/plugboard/plugboard/graph/model"
	"github.com/plugboard/plugboard/internal/connection"
	"github.com/plugboard/plugboard/internal/events"
)

// watchCredentials streams the status changes of the viewer's
// credentials, or of one of them when credentialID is set.
func (r *Resolver) watchCredentials(ctx context.Context, credentialID *int) (<-chan *model.CredentialStatusEvent, error) {
	v, err := connection.Authorize(ctx, connection.WatchCredentials)
	if err != nil {
		return nil, err
	}
	id := 0
	if credentialID != nil {
		// The credential must be the viewer's to watch it.
		if _, err := r.DB.Credential.Get(ctx, *credentialID); err != nil {
			return nil, notFoundNode(err)
		}
		id = *credentialID
	}
	out := make(chan *model.CredentialStatusEvent)
	go r.forwardStatusChanges(ctx, r.Events.Subscribe(ctx, v.OrganizationID, id), out)
	return out, nil
}

// forwardStatusChanges sends each change of in the viewer may see to out,
// until in closes or the subscription ends.
func (r *Resolver) forwardStatusChanges(ctx context.Context, in <-chan events.StatusChange, out chan<- *model.CredentialStatusEvent) {
	defer close(out)
	for ev := range in {
		c, err := r.DB.Credential.Get(ctx, ev.CredentialID)
		if err != nil {
			continue // deleted, or not visible to this viewer
		}
		e := &model.CredentialStatusEvent{
			Credential: c, From: ev.From, To: credential.Status(ev.To), At: ev.At,
		}
		if ev.Detail != "" {
			d := ev.Detail
			e.Detail = &d
		}
		select {
		case out <- e:
		case <-ctx.Done():
			return
		}
	}
}
