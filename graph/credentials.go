package graph

import (
	"context"

	"github.com/plugboard/plugboard/ent"
)

// withTypes loads, in one query, the connection types behind the values
// of a page of credentials, not one query each.
func (r *Resolver) withTypes(ctx context.Context, conn *ent.CredentialConnection, err error) (*ent.CredentialConnection, error) {
	if err != nil {
		return nil, err
	}
	page := make([]*ent.Credential, 0, len(conn.Edges))
	for _, e := range conn.Edges {
		page = append(page, e.Node)
	}
	if err := r.Connections.PreloadTypes(ctx, page); err != nil {
		return nil, err
	}
	return conn, nil
}
