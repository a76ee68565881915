package schema

import (
	"entgo.io/contrib/entgql"
	"entgo.io/ent"
	"entgo.io/ent/schema"
	"entgo.io/ent/schema/edge"
	"entgo.io/ent/schema/field"
	"entgo.io/ent/schema/index"
)

// OAuthState is one pending OAuth 2.0 authorization. Only the state's hash is
// stored; the PKCE verifier is sealed.
type OAuthState struct{ ent.Schema }

// Mixin of the OAuthState.
func (OAuthState) Mixin() []ent.Mixin { return []ent.Mixin{TimeMixin{}, TenantMixin{}} }

// Fields of the OAuthState.
func (OAuthState) Fields() []ent.Field {
	return []ent.Field{
		field.String("state_hash").NotEmpty().Unique().Immutable(),
		field.Int("credential_id").Immutable(),
		field.Bytes("verifier").Optional().Sensitive().Immutable(),
		field.String("redirect_url").Optional().Immutable(),
		field.String("failure_url").Optional().Immutable(),
		field.Bool("popup").Default(false).Immutable(),
		field.Time("expires_at").Immutable(),
		field.Time("used_at").Optional().Nillable(),
	}
}

// Annotations of the OAuthState.
func (OAuthState) Annotations() []schema.Annotation {
	return []schema.Annotation{entgql.Skip(entgql.SkipAll)}
}

// AuditEvent is one entry of the connection log.
type AuditEvent struct{ ent.Schema }

// Mixin of the AuditEvent.
func (AuditEvent) Mixin() []ent.Mixin { return []ent.Mixin{TenantMixin{}} }

// Fields of the AuditEvent.
func (AuditEvent) Fields() []ent.Field {
	return []ent.Field{
		field.Int("credential_id").Optional().Nillable().Immutable(),
		field.Int("connection_id").Optional().Nillable().Immutable(),
		field.String("actor").Immutable(),
		field.String("action").Immutable().Annotations(entgql.OrderField("ACTION")),
		field.String("message").Optional().Immutable(),
		field.Time("at").Default(timeNow).Immutable().Annotations(entgql.OrderField("AT")),
	}
}

// Edges of the AuditEvent.
func (AuditEvent) Edges() []ent.Edge {
	return []ent.Edge{
		edge.From("credential", Credential.Type).Ref("audit_events").
			Field("credential_id").Unique().Immutable(),
	}
}

// Indexes of the AuditEvent.
func (AuditEvent) Indexes() []ent.Index {
	return []ent.Index{index.Fields("credential_id", "at")}
}

// Annotations of the AuditEvent.
func (AuditEvent) Annotations() []schema.Annotation {
	return []schema.Annotation{entgql.RelayConnection(), entgql.QueryField()}
}

// EncryptionKey is a data key wrapped by the master key.
type EncryptionKey struct{ ent.Schema }

// Mixin of the EncryptionKey.
func (EncryptionKey) Mixin() []ent.Mixin { return []ent.Mixin{TimeMixin{}} }

// Fields of the EncryptionKey.
func (EncryptionKey) Fields() []ent.Field {
	return []ent.Field{
		field.String("key_id").NotEmpty().Unique().Immutable(),
		field.String("master_key_id").NotEmpty(),
		field.Bytes("wrapped").Sensitive(),
		field.Enum("status").Values("ACTIVE", "RETIRED").Default("ACTIVE"),
	}
}

// Annotations of the EncryptionKey.
func (EncryptionKey) Annotations() []schema.Annotation {
	return []schema.Annotation{entgql.Skip(entgql.SkipAll)}
}

// APIToken is an API token of an organization, stored as a hash.
type APIToken struct{ ent.Schema }

// Mixin of the APIToken.
func (APIToken) Mixin() []ent.Mixin { return []ent.Mixin{TimeMixin{}, TenantMixin{}} }

// Fields of the APIToken.
func (APIToken) Fields() []ent.Field {
	return []ent.Field{
		field.String("name").Optional().MaxLen(200),
		field.Enum("role").Values("ORG_ADMIN", "RUNTIME").Immutable().
			Annotations(entgql.Type("TokenRole")),
		field.String("token_hash").NotEmpty().Unique().Immutable().Sensitive().
			Annotations(entgql.Skip(entgql.SkipAll)),
		field.Time("last_used_at").Optional().Nillable(),
		field.Time("expires_at").Optional().Nillable(),
		field.Time("revoked_at").Optional().Nillable(),
	}
}

// Annotations of the APIToken.
func (APIToken) Annotations() []schema.Annotation {
	return []schema.Annotation{entgql.RelayConnection(), entgql.QueryField()}
}
