package schema

import (
	"entgo.io/contrib/entgql"
	"entgo.io/ent"
	"entgo.io/ent/schema"
	"entgo.io/ent/schema/edge"
	"entgo.io/ent/schema/field"
	"entgo.io/ent/schema/index"
)

// Integration is an integration that needs connections.
type Integration struct{ ent.Schema }

// Mixin of the Integration.
func (Integration) Mixin() []ent.Mixin { return []ent.Mixin{TimeMixin{}, TenantMixin{}} }

// Fields of the Integration.
func (Integration) Fields() []ent.Field {
	return []ent.Field{
		field.String("key").NotEmpty().MaxLen(100).Match(keyPattern).
			Annotations(entgql.OrderField("KEY")),
		field.String("name").NotEmpty().MaxLen(200).
			Annotations(entgql.OrderField("NAME")),
		field.String("description").Optional().MaxLen(2000),
	}
}

// Edges of the Integration.
func (Integration) Edges() []ent.Edge {
	return []ent.Edge{
		edge.To("slots", ConnectionSlot.Type),
		edge.To("instances", Instance.Type).Annotations(entgql.RelayConnection()),
	}
}

// Indexes of the Integration.
func (Integration) Indexes() []ent.Index {
	return []ent.Index{index.Fields("organization_id", "key").Unique()}
}

// Annotations of the Integration.
func (Integration) Annotations() []schema.Annotation {
	return []schema.Annotation{entgql.RelayConnection(), entgql.QueryField()}
}

// ConnectionSlot is one connection an integration needs: a reusable
// connection, or one of INTEGRATION scope made for the slot.
type ConnectionSlot struct{ ent.Schema }

// Mixin of the ConnectionSlot.
func (ConnectionSlot) Mixin() []ent.Mixin { return []ent.Mixin{TimeMixin{}, TenantMixin{}} }

// Fields of the ConnectionSlot.
func (ConnectionSlot) Fields() []ent.Field {
	return []ent.Field{
		field.Int("integration_id").Immutable(),
		field.String("key").NotEmpty().MaxLen(100).Match(keyPattern),
		field.String("label").NotEmpty().MaxLen(200),
		field.Int("position").Default(0),
		field.Int("connection_id"),
	}
}

// Edges of the ConnectionSlot.
func (ConnectionSlot) Edges() []ent.Edge {
	return []ent.Edge{
		edge.From("integration", Integration.Type).Ref("slots").
			Field("integration_id").Unique().Required().Immutable(),
		edge.From("connection", Connection.Type).Ref("slots").
			Field("connection_id").Unique().Required(),
		edge.To("bindings", InstanceBinding.Type).Annotations(entgql.Skip(entgql.SkipAll)),
	}
}

// Indexes of the ConnectionSlot.
func (ConnectionSlot) Indexes() []ent.Index {
	return []ent.Index{index.Fields("integration_id", "key").Unique()}
}
