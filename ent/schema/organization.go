package schema

import (
	"entgo.io/contrib/entgql"
	"entgo.io/ent"
	"entgo.io/ent/schema"
	"entgo.io/ent/schema/field"
)

// Organization is the vendor: the tenant root.
type Organization struct{ ent.Schema }

// Mixin of the Organization.
func (Organization) Mixin() []ent.Mixin { return []ent.Mixin{TimeMixin{}} }

// Fields of the Organization.
func (Organization) Fields() []ent.Field {
	return []ent.Field{
		field.String("name").NotEmpty().MaxLen(200).
			Annotations(entgql.OrderField("NAME")),
		field.String("slug").NotEmpty().MaxLen(64).Unique().
			Match(slugPattern),
		// redirect_allowlist holds the URL prefixes OAuth 2.0 success and
		// failure redirects may go to.
		field.Strings("redirect_allowlist").Optional(),
		// auto_create_customers lets an embedding token name a customer seen
		// for the first time.
		field.Bool("auto_create_customers").Default(false),
		// allow_private_networks lets the credential proxy call upstreams
		// on private addresses (10/8, 172.16/12, 192.168/16, 100.64/10,
		// fc00::/7), for on-premise services; link-local and cloud metadata
		// addresses stay refused.
		field.Bool("allow_private_networks").Default(false),
	}
}

// Annotations of the Organization.
func (Organization) Annotations() []schema.Annotation {
	return []schema.Annotation{entgql.RelayConnection()}
}
