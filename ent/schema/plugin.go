package schema

import (
	"entgo.io/contrib/entgql"
	"entgo.io/ent"
	"entgo.io/ent/schema"
	"entgo.io/ent/schema/edge"
	"entgo.io/ent/schema/field"
)

// Plugin is one plugin binary in the plugin directory.
type Plugin struct{ ent.Schema }

// Mixin of the Plugin.
func (Plugin) Mixin() []ent.Mixin { return []ent.Mixin{TimeMixin{}} }

// Fields of the Plugin.
func (Plugin) Fields() []ent.Field {
	return []ent.Field{
		// name is the binary's file name, the unit of pinning.
		field.String("name").NotEmpty().Unique().
			Annotations(entgql.OrderField("NAME")),
		// key is the key the plugin declares in Describe.
		field.String("key").Optional(),
		field.String("version").Optional(),
		field.String("sha256").Optional(),
		field.Int("protocol_version").Default(0),
		field.Enum("status").Values("LOADED", "CRASHED", "DISABLED").
			Default("DISABLED").
			Annotations(entgql.Type("PluginStatus"), entgql.OrderField("STATUS")),
		field.String("last_error").Optional(),
		field.Int("restarts").Default(0),
		field.Time("loaded_at").Optional().Nillable(),
	}
}

// Edges of the Plugin.
func (Plugin) Edges() []ent.Edge {
	return []ent.Edge{
		edge.To("connection_types", ConnectionType.Type),
	}
}

// Annotations of the Plugin.
func (Plugin) Annotations() []schema.Annotation {
	return []schema.Annotation{entgql.RelayConnection(), entgql.QueryField()}
}
