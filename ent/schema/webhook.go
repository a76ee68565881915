package schema

import (
	"entgo.io/contrib/entgql"
	"entgo.io/ent"
	"entgo.io/ent/schema"
	"entgo.io/ent/schema/edge"
	"entgo.io/ent/schema/field"
	"entgo.io/ent/schema/index"
)

// WebhookEndpoint is a URL an organization registers to receive signed
// webhooks about its connections.
type WebhookEndpoint struct{ ent.Schema }

// Mixin of the WebhookEndpoint.
func (WebhookEndpoint) Mixin() []ent.Mixin { return []ent.Mixin{TimeMixin{}, TenantMixin{}} }

// Fields of the WebhookEndpoint.
func (WebhookEndpoint) Fields() []ent.Field {
	return []ent.Field{
		field.String("url").NotEmpty().MaxLen(2048),
		field.String("description").Default("").MaxLen(500),
		// events are the event types the endpoint subscribes to.
		field.Strings("events"),
		field.Enum("status").Values("ACTIVE", "DISABLED").Default("ACTIVE"),
		// disabled_reason says why plugboard disabled the endpoint.
		field.String("disabled_reason").Default(""),
		// failing_since is the first failed attempt since the last
		// success; nil while deliveries succeed.
		field.Time("failing_since").Optional().Nillable(),
		// secret is the signing secret, sealed (internal/secrets/sealed).
		field.Bytes("secret").Sensitive().
			Annotations(entgql.Skip(entgql.SkipAll)),
		// previous_secret still signs until previous_expires_at, after a
		// rotation.
		field.Bytes("previous_secret").Optional().Nillable().Sensitive().
			Annotations(entgql.Skip(entgql.SkipAll)),
		field.Time("previous_expires_at").Optional().Nillable(),
	}
}

// Edges of the WebhookEndpoint.
func (WebhookEndpoint) Edges() []ent.Edge {
	return []ent.Edge{
		edge.To("deliveries", WebhookDelivery.Type).
			Annotations(entgql.Skip(entgql.SkipAll)),
	}
}

// Annotations of the WebhookEndpoint.
func (WebhookEndpoint) Annotations() []schema.Annotation {
	return []schema.Annotation{entgql.Skip(entgql.SkipWhereInput, entgql.SkipMutationCreateInput, entgql.SkipMutationUpdateInput)}
}

// WebhookEvent is one event of the outbox, written in the transaction of
// the change it reports.
type WebhookEvent struct{ ent.Schema }

// Mixin of the WebhookEvent.
func (WebhookEvent) Mixin() []ent.Mixin { return []ent.Mixin{TenantMixin{}} }

// Fields of the WebhookEvent.
func (WebhookEvent) Fields() []ent.Field {
	return []ent.Field{
		// message_id is the webhook-id header ("msg_..."): the same on
		// every attempt and redelivery, so receivers drop duplicates.
		field.String("message_id").NotEmpty().Unique().Immutable(),
		field.String("type").NotEmpty().Immutable(),
		// payload is the JSON body exactly as signed; never a value.
		field.Text("payload").Immutable(),
		field.Time("created_at").Default(timeNow).Immutable(),
	}
}

// Edges of the WebhookEvent.
func (WebhookEvent) Edges() []ent.Edge {
	return []ent.Edge{
		edge.To("deliveries", WebhookDelivery.Type).
			Annotations(entgql.Skip(entgql.SkipAll)),
	}
}

// Annotations of the WebhookEvent.
func (WebhookEvent) Annotations() []schema.Annotation {
	return []schema.Annotation{entgql.Skip(entgql.SkipWhereInput, entgql.SkipMutationCreateInput, entgql.SkipMutationUpdateInput)}
}

// WebhookDelivery is the delivery of one event to one endpoint, with its
// attempts so far.
type WebhookDelivery struct{ ent.Schema }

// Mixin of the WebhookDelivery.
func (WebhookDelivery) Mixin() []ent.Mixin { return []ent.Mixin{TimeMixin{}, TenantMixin{}} }

// Fields of the WebhookDelivery.
func (WebhookDelivery) Fields() []ent.Field {
	return []ent.Field{
		field.Int("endpoint_id").Immutable(),
		field.Int("event_id").Immutable(),
		field.Int("attempts").Default(0),
		field.Enum("status").Values("PENDING", "SUCCEEDED", "FAILED").Default("PENDING"),
		// next_attempt_at is when a PENDING delivery is due.
		field.Time("next_attempt_at").Optional().Nillable(),
		// lease_until: a worker that claimed the delivery owns it until
		// then; a killed worker's claim runs out and another takes it.
		field.Time("lease_until").Optional().Nillable().
			Annotations(entgql.Skip(entgql.SkipAll)),
		field.Int("last_status_code").Optional().Nillable(),
		field.Int("last_duration_ms").Optional().Nillable(),
		field.String("last_error").Default(""),
		field.Time("delivered_at").Optional().Nillable(),
	}
}

// Edges of the WebhookDelivery.
func (WebhookDelivery) Edges() []ent.Edge {
	return []ent.Edge{
		edge.From("endpoint", WebhookEndpoint.Type).Ref("deliveries").
			Field("endpoint_id").Unique().Required().Immutable(),
		edge.From("event", WebhookEvent.Type).Ref("deliveries").
			Field("event_id").Unique().Required().Immutable(),
	}
}

// Indexes of the WebhookDelivery.
func (WebhookDelivery) Indexes() []ent.Index {
	return []ent.Index{
		index.Fields("status", "next_attempt_at"),
		index.Fields("endpoint_id", "created_at"),
	}
}

// Annotations of the WebhookDelivery.
func (WebhookDelivery) Annotations() []schema.Annotation {
	return []schema.Annotation{entgql.Skip(entgql.SkipWhereInput, entgql.SkipMutationCreateInput, entgql.SkipMutationUpdateInput)}
}
