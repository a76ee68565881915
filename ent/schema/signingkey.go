package schema

import (
	"entgo.io/contrib/entgql"
	"entgo.io/ent"
	"entgo.io/ent/schema"
	"entgo.io/ent/schema/field"
	"entgo.io/ent/schema/index"
)

// SigningKey is a public key an organization registers to sign the
// embedding tokens (JWTs) of its customers' users.
type SigningKey struct{ ent.Schema }

// Mixin of the SigningKey.
func (SigningKey) Mixin() []ent.Mixin { return []ent.Mixin{TimeMixin{}, TenantMixin{}} }

// Fields of the SigningKey.
func (SigningKey) Fields() []ent.Field {
	return []ent.Field{
		// kid is the JWT header's key id.
		field.String("kid").NotEmpty().MaxLen(100).Immutable(),
		field.Enum("algorithm").Values("RS256", "EdDSA").Immutable().
			Annotations(entgql.Type("SigningAlgorithm")),
		field.Text("public_key_pem").NotEmpty().Immutable(),
		field.Time("revoked_at").Optional().Nillable(),
	}
}

// Indexes of the SigningKey.
func (SigningKey) Indexes() []ent.Index {
	return []ent.Index{index.Fields("organization_id", "kid").Unique()}
}

// Annotations of the SigningKey.
func (SigningKey) Annotations() []schema.Annotation {
	return []schema.Annotation{entgql.RelayConnection(), entgql.QueryField()}
}
