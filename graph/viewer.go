package graph

import (
	"context"
	"errors"

	"github.com/vektah/gqlparser/v2/gqlerror"

	"github.com/plugboard/plugboard/ent"
	"github.com/plugboard/plugboard/graph/model"
	"github.com/plugboard/plugboard/internal/connection"
)

// notFoundNode maps a failed node lookup to NOT_FOUND without echoing the
// id, and passes other errors on.
func notFoundNode(err error) error {
	var gqlErr *gqlerror.Error
	if ent.IsNotFound(err) || (errors.As(err, &gqlErr) && gqlErr.Extensions["code"] == "NOT_FOUND") {
		return connection.ErrNotFound
	}
	return err
}

// viewer is who the request is for: role, organization and, for a
// customer's user, the customer.
func (r *Resolver) viewer(ctx context.Context) (*model.Viewer, error) {
	v, err := connection.Authorize(ctx, connection.ReadViewer)
	if err != nil {
		return nil, err
	}
	org, err := r.DB.Organization.Get(ctx, v.OrganizationID)
	if err != nil {
		return nil, err
	}
	out := &model.Viewer{Role: model.Role(v.Role), Organization: org}
	if v.CustomerID != 0 {
		if out.Customer, err = r.DB.Customer.Get(ctx, v.CustomerID); err != nil {
			return nil, err
		}
	}
	return out, nil
}
