package schema

import (
	"entgo.io/contrib/entgql"
	"entgo.io/ent"
	"entgo.io/ent/schema"
	"entgo.io/ent/schema/edge"
	"entgo.io/ent/schema/field"
	"entgo.io/ent/schema/index"
)

// ConnectionTemplate holds presets for a type's inputs, such as the vendor's
// own OAuth 2.0 client id and secret.
type ConnectionTemplate struct{ ent.Schema }

// Mixin of the ConnectionTemplate.
func (ConnectionTemplate) Mixin() []ent.Mixin {
	return []ent.Mixin{TimeMixin{}, TenantMixin{}}
}

// Fields of the ConnectionTemplate.
func (ConnectionTemplate) Fields() []ent.Field {
	return []ent.Field{
		field.Int("type_id"),
		field.String("name").NotEmpty().MaxLen(200).
			Annotations(entgql.OrderField("NAME")),
		field.JSON("presets", map[string]string{}).Optional().
			Annotations(entgql.Skip(entgql.SkipAll)),
		field.Bytes("secret_presets").Optional().Sensitive().
			Annotations(entgql.Skip(entgql.SkipAll)),
	}
}

// Edges of the ConnectionTemplate.
func (ConnectionTemplate) Edges() []ent.Edge {
	return []ent.Edge{
		edge.From("type", ConnectionType.Type).Ref("templates").
			Field("type_id").Unique().Required(),
		edge.To("connections", Connection.Type).Annotations(entgql.Skip(entgql.SkipAll)),
	}
}

// Indexes of the ConnectionTemplate.
func (ConnectionTemplate) Indexes() []ent.Index {
	return []ent.Index{index.Fields("organization_id", "name").Unique()}
}

// Annotations of the ConnectionTemplate.
func (ConnectionTemplate) Annotations() []schema.Annotation {
	return []schema.Annotation{entgql.RelayConnection()}
}
