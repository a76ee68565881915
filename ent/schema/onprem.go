package schema

import (
	"entgo.io/contrib/entgql"
	"entgo.io/ent"
	"entgo.io/ent/schema"
	"entgo.io/ent/schema/edge"
	"entgo.io/ent/schema/field"
	"entgo.io/ent/schema/index"
)

// OnPremResource is a service inside a customer's private network (a
// database, an internal API) that plugboard reaches through an agent the
// customer runs next to it. The agent dials out to plugboard and
// authenticates with the resource's token; only the token's SHA-256 is
// stored.
type OnPremResource struct{ ent.Schema }

// Mixin of the OnPremResource.
func (OnPremResource) Mixin() []ent.Mixin { return []ent.Mixin{TimeMixin{}, TenantMixin{}} }

// Fields of the OnPremResource.
func (OnPremResource) Fields() []ent.Field {
	return []ent.Field{
		field.Int("customer_id").Immutable(),
		field.String("name").NotEmpty().MaxLen(200),
		// target is host:port as seen from inside the customer's network;
		// the agent connects there and nowhere else.
		field.String("target").NotEmpty().MaxLen(300),
		// token_hash is the SHA-256 of the agent token (pbagent_...).
		field.String("token_hash").Unique().Sensitive().
			Annotations(entgql.Skip(entgql.SkipAll)),
		// token_prefix is the token's first characters, not secret, so an
		// admin can tell which token an agent runs with.
		field.String("token_prefix"),
		field.Enum("status").Values("CONNECTED", "DISCONNECTED").Default("DISCONNECTED").
			Annotations(entgql.Type("OnPremResourceStatus")),
		// last_seen_at is the agent's last connect or heartbeat.
		field.Time("last_seen_at").Optional().Nillable(),
		field.String("agent_version").Default(""),
		// holder is the replica URL (--replica-url) of the replica that
		// holds the agent's session, so the others route streams to it;
		// empty when no replica does, or the one that does has no URL.
		field.String("holder").Default("").MaxLen(500).
			Annotations(entgql.Skip(entgql.SkipAll)),
	}
}

// Edges of the OnPremResource.
func (OnPremResource) Edges() []ent.Edge {
	return []ent.Edge{
		edge.From("customer", Customer.Type).Ref("on_prem_resources").
			Field("customer_id").Unique().Required().Immutable(),
		edge.To("credentials", Credential.Type).
			Annotations(entgql.Skip(entgql.SkipAll)),
	}
}

// Indexes of the OnPremResource.
func (OnPremResource) Indexes() []ent.Index {
	return []ent.Index{index.Fields("customer_id")}
}

// Annotations of the OnPremResource.
func (OnPremResource) Annotations() []schema.Annotation {
	return []schema.Annotation{entgql.Skip(entgql.SkipWhereInput, entgql.SkipMutationCreateInput, entgql.SkipMutationUpdateInput)}
}
