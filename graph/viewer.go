package graph

import (
	"context"
	"errors"

	"github.com/vektah/gqlparser/v2/gqlerror"

	"github.com/plugboard/plugboard/ent"
	"github.com/plugboard/plugboard/internal/connection"

	"github.com/plugboard/plugboard/internal/auth"
)

func requireViewer(ctx context.Context) error {
	_, err := auth.Require(ctx)
	return err
}

// requireMember allows organization admins and customer users; the tenant
// filter narrows what a customer user sees. RUNTIME tokens read values
// through the runtime endpoint, not through GraphQL lists.
func requireMember(ctx context.Context) error {
	v, err := auth.Require(ctx)
	if err != nil {
		return err
	}
	if v.Role != auth.RoleOrgAdmin && v.Role != auth.RoleCustomerUser {
		return auth.ErrForbidden
	}
	return nil
}

func requireAdmin(ctx context.Context) error {
	_, err := auth.RequireAdmin(ctx)
	return err
}

// notFoundNode maps a failed node lookup to NOT_FOUND without echoing the
// id, and passes other errors on.
func notFoundNode(err error) error {
	var gqlErr *gqlerror.Error
	if ent.IsNotFound(err) || (errors.As(err, &gqlErr) && gqlErr.Extensions["code"] == "NOT_FOUND") {
		return connection.ErrNotFound
	}
	return err
}
