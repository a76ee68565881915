package schema

import (
	"entgo.io/contrib/entgql"
	"entgo.io/ent"
	"entgo.io/ent/schema"
	"entgo.io/ent/schema/edge"
	"entgo.io/ent/schema/field"
	"entgo.io/ent/schema/index"
)

// Instance is an integration deployed for a customer.
type Instance struct{ ent.Schema }

// Mixin of the Instance.
func (Instance) Mixin() []ent.Mixin { return []ent.Mixin{TimeMixin{}, TenantMixin{}} }

// Fields of the Instance.
func (Instance) Fields() []ent.Field {
	return []ent.Field{
		field.Int("integration_id").Immutable(),
		field.Int("customer_id").Immutable(),
		field.String("name").NotEmpty().MaxLen(200).
			Annotations(entgql.OrderField("NAME")),
		field.Enum("environment").Values("PRODUCTION", "TEST").Default("PRODUCTION").
			Immutable().Annotations(entgql.Type("Environment")),
		field.Enum("config_state").Values("NEEDS_CONFIGURATION", "CONFIGURED").
			Default("NEEDS_CONFIGURATION").Annotations(entgql.Type("ConfigState")),
		field.Bool("needs_deploy").Default(false),
		field.Time("deployed_at").Optional().Nillable(),
	}
}

// Edges of the Instance.
func (Instance) Edges() []ent.Edge {
	return []ent.Edge{
		edge.From("integration", Integration.Type).Ref("instances").
			Field("integration_id").Unique().Required().Immutable(),
		edge.From("customer", Customer.Type).Ref("instances").
			Field("customer_id").Unique().Required().Immutable(),
		edge.To("bindings", InstanceBinding.Type).Annotations(entgql.Skip(entgql.SkipAll)),
		edge.To("owned_credentials", Credential.Type).Annotations(entgql.Skip(entgql.SkipAll)),
	}
}

// Annotations of the Instance.
func (Instance) Annotations() []schema.Annotation {
	return []schema.Annotation{entgql.RelayConnection(), entgql.QueryField()}
}

// InstanceBinding binds one slot of an instance to a credential.
type InstanceBinding struct{ ent.Schema }

// Mixin of the InstanceBinding.
func (InstanceBinding) Mixin() []ent.Mixin { return []ent.Mixin{TimeMixin{}, TenantMixin{}} }

// Fields of the InstanceBinding.
func (InstanceBinding) Fields() []ent.Field {
	return []ent.Field{
		field.Int("instance_id").Immutable(),
		field.Int("slot_id").Immutable(),
		field.Int("credential_id"),
	}
}

// Edges of the InstanceBinding.
func (InstanceBinding) Edges() []ent.Edge {
	return []ent.Edge{
		edge.From("instance", Instance.Type).Ref("bindings").
			Field("instance_id").Unique().Required().Immutable(),
		edge.From("slot", ConnectionSlot.Type).Ref("bindings").
			Field("slot_id").Unique().Required().Immutable(),
		edge.From("credential", Credential.Type).Ref("bindings").
			Field("credential_id").Unique().Required(),
	}
}

// Indexes of the InstanceBinding.
func (InstanceBinding) Indexes() []ent.Index {
	return []ent.Index{index.Fields("instance_id", "slot_id").Unique()}
}

// Annotations of the InstanceBinding.
func (InstanceBinding) Annotations() []schema.Annotation {
	return []schema.Annotation{entgql.Skip(entgql.SkipAll)}
}
