package graph

import (
	"errors"

	"github.com/vektah/gqlparser/v2/gqlerror"

	"github.com/plugboard/plugboard/ent"
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
