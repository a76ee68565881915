package schema

import (
	"entgo.io/contrib/entgql"
	"entgo.io/ent"
	"entgo.io/ent/schema"
	"entgo.io/ent/schema/edge"
	"entgo.io/ent/schema/field"
	"entgo.io/ent/schema/index"
)

// Customer is a customer of the vendor.
type Customer struct{ ent.Schema }

// Mixin of the Customer.
func (Customer) Mixin() []ent.Mixin { return []ent.Mixin{TimeMixin{}, TenantMixin{}} }

// Fields of the Customer.
func (Customer) Fields() []ent.Field {
	return []ent.Field{
		field.String("external_id").NotEmpty().MaxLen(200).
			Annotations(entgql.OrderField("EXTERNAL_ID")),
		field.String("name").NotEmpty().MaxLen(200).
			Annotations(entgql.OrderField("NAME")),
	}
}

// Edges of the Customer.
func (Customer) Edges() []ent.Edge {
	return []ent.Edge{
		edge.To("users", User.Type).Annotations(entgql.RelayConnection()),
		edge.To("credentials", Credential.Type).Annotations(entgql.RelayConnection()),
		edge.To("instances", Instance.Type).Annotations(entgql.RelayConnection()),
		edge.To("on_prem_resources", OnPremResource.Type).Annotations(entgql.Skip(entgql.SkipAll)),
	}
}

// Indexes of the Customer.
func (Customer) Indexes() []ent.Index {
	return []ent.Index{index.Fields("organization_id", "external_id").Unique()}
}

// Annotations of the Customer.
func (Customer) Annotations() []schema.Annotation {
	return []schema.Annotation{entgql.RelayConnection(), entgql.QueryField()}
}
