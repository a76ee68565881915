package schema

import (
	"entgo.io/contrib/entgql"
	"entgo.io/ent"
	"entgo.io/ent/schema"
	"entgo.io/ent/schema/edge"
	"entgo.io/ent/schema/field"
	"entgo.io/ent/schema/index"

	"github.com/plugboard/plugboard/ent/schema/schematype"
)

// Connection is a configured connection of one type in an organization.
type Connection struct{ ent.Schema }

// Mixin of the Connection.
func (Connection) Mixin() []ent.Mixin { return []ent.Mixin{TimeMixin{}, TenantMixin{}} }

// Fields of the Connection.
func (Connection) Fields() []ent.Field {
	return []ent.Field{
		field.Int("type_id"),
		// stable_key identifies the connection across environments and
		// exports; unique in an organization.
		field.String("stable_key").NotEmpty().MaxLen(100).Match(keyPattern).
			Annotations(entgql.OrderField("STABLE_KEY")),
		field.String("name").NotEmpty().MaxLen(200).
			Annotations(entgql.OrderField("NAME")),
		field.String("description").Optional().MaxLen(2000),
		field.Enum("scope").
			Values("CUSTOMER", "ORGANIZATION_CUSTOMER", "ORGANIZATION_GLOBAL",
				"INTEGRATION", "USER").
			Annotations(entgql.Type("ConnectionScope"), entgql.OrderField("SCOPE")),
		// build_only connections bind only to TEST instances.
		field.Bool("build_only").Default(false),
		field.JSON("input_settings", map[string]schematype.InputSetting{}).Optional().
			Annotations(entgql.Skip(entgql.SkipAll)),
		field.Int("template_id").Optional().Nillable(),
	}
}

// Edges of the Connection.
func (Connection) Edges() []ent.Edge {
	return []ent.Edge{
		edge.From("type", ConnectionType.Type).Ref("connections").
			Field("type_id").Unique().Required(),
		edge.To("credentials", Credential.Type).
			Annotations(entgql.RelayConnection()),
		edge.From("template", ConnectionTemplate.Type).Ref("connections").
			Field("template_id").Unique(),
		edge.To("slots", ConnectionSlot.Type).Annotations(entgql.Skip(entgql.SkipAll)),
	}
}

// Indexes of the Connection.
func (Connection) Indexes() []ent.Index {
	return []ent.Index{index.Fields("organization_id", "stable_key").Unique()}
}

// Annotations of the Connection.
func (Connection) Annotations() []schema.Annotation {
	return []schema.Annotation{entgql.RelayConnection(), entgql.QueryField()}
}
