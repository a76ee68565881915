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
	"github.com/plugboard/plugboard/internal/events"
)

// PluginAdmin is what the API needs of the plugin host.
type PluginAdmin interface {
	// Reload re-reads the plugin directory and lock file.
	Reload(ctx context.Context) error
}

// OAuthFlows is what the API needs of the OAuth 2.0 engine.
type OAuthFlows interface {
	// StartAuthorization returns the provider's authorize URL for a
	// credential of the viewer's organization.
	StartAuthorization(ctx context.Context, credentialID int, redirectURL, failureURL string, popup bool) (string, error)
	// Disconnect revokes and erases a credential's tokens.
	Disconnect(ctx context.Context, credentialID int) error
}

// Resolver is the root resolver; it holds the services resolvers call.
type Resolver struct {
	DB          *ent.Client
	Connections *connection.Service
	Plugins     PluginAdmin
	OAuth       OAuthFlows
	Events      *events.Bus
	// Access issues and revokes API tokens and signing keys.
	Access *connection.Access
	// Keys rotates the data key.
	Keys *connection.Keys
}

// NewSchema returns the executable schema over r.
func NewSchema(r *Resolver) graphql.ExecutableSchema {
	return generated.NewExecutableSchema(generated.Config{Resolvers: r})
}
