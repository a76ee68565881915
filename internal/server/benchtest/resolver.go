package benchtest

import (
	"context"
)

// Resolver answers Query.payload with Payload.
type Resolver struct {
	Payload string
}

// Payload is the resolver for the payload field.
func (r *queryResolver) Payload(ctx context.Context) (string, error) {
	return r.Resolver.Payload, nil
}

// Query returns QueryResolver implementation.
func (r *Resolver) Query() QueryResolver { return &queryResolver{r} }

type queryResolver struct{ *Resolver }
