package schema

import (
	"entgo.io/contrib/entgql"
	"entgo.io/ent"
	"entgo.io/ent/schema"
	"entgo.io/ent/schema/edge"
	"entgo.io/ent/schema/field"

	"github.com/plugboard/plugboard/ent/schema/schematype"
)

// ConnectionType is a connection type a plugin declares. Rows are written
// when a plugin loads, so read queries never call a plugin.
type ConnectionType struct{ ent.Schema }

// Mixin of the ConnectionType.
func (ConnectionType) Mixin() []ent.Mixin { return []ent.Mixin{TimeMixin{}} }

// Fields of the ConnectionType.
func (ConnectionType) Fields() []ent.Field {
	return []ent.Field{
		field.String("key").NotEmpty().Unique().
			Annotations(entgql.OrderField("KEY")),
		field.Int("plugin_id"),
		field.String("label").Annotations(entgql.OrderField("LABEL")),
		field.String("description").Optional(),
		field.String("icon_url").Optional(),
		field.Enum("auth_kind").
			Values("API_KEY", "BASIC", "OAUTH2_AUTHORIZATION_CODE",
				"OAUTH2_CLIENT_CREDENTIALS", "CUSTOM").
			Annotations(entgql.Type("AuthKind")),
		field.JSON("inputs", []schematype.Input{}).
			Annotations(entgql.Skip(entgql.SkipAll)),
		field.JSON("oauth2", &schematype.OAuth2Spec{}).Optional().
			Annotations(entgql.Skip(entgql.SkipAll)),
		// http is how the credential proxy calls the type's API (protocol
		// minor 1); empty for types of older plugins.
		field.JSON("http", &schematype.HTTPSpec{}).Optional().
			Annotations(entgql.Skip(entgql.SkipAll)),
		field.Int("schema_version").Default(1),
		// available is false once the plugin that declared the type is
		// gone from the plugin directory; existing connections keep it.
		field.Bool("available").Default(true),
	}
}

// Edges of the ConnectionType.
func (ConnectionType) Edges() []ent.Edge {
	return []ent.Edge{
		edge.From("plugin", Plugin.Type).Ref("connection_types").
			Field("plugin_id").Unique().Required(),
		edge.To("connections", Connection.Type).
			Annotations(entgql.Skip(entgql.SkipAll)),
		edge.To("templates", ConnectionTemplate.Type).
			Annotations(entgql.Skip(entgql.SkipAll)),
	}
}

// Annotations of the ConnectionType.
func (ConnectionType) Annotations() []schema.Annotation {
	return []schema.Annotation{entgql.RelayConnection(), entgql.QueryField()}
}
