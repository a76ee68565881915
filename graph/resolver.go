// Package graph is plugboard's GraphQL API: the gqlgen resolvers, thin
// calls into internal/connection and the ent client, and the mapping of
// errors to extensions.code.
package graph

import (
	"context"

	"github.com/99designs/gqlgen/graphql"

	"github.com/plugboard/plugboard/ent"
	"github.com/plugboard/plugboard/graph/generated"
	"github.com/plugboard/plugboard/internal/connection"
)

// PluginAdmin is what the API needs of the plugin host.
type PluginAdmin interface {
	// Reload re-reads the plugin directory and lock file.
	Reload(ctx context.Context) error
}

// Resolver is the root resolver; it holds the services resolvers call.
type Resolver struct {
	DB          *ent.Client
	Connections *connection.Service
	Plugins     PluginAdmin
}

// NewSchema returns the executable schema over r.
func NewSchema(r *Resolver) graphql.ExecutableSchema {
	return generated.NewExecutableSchema(generated.Config{Resolvers: r})
}
