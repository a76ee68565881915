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

// CredentialVersion is one immutable saved version of a credential's
// values. The credential row holds the live version; these rows keep the
// recent ones for verification and rollback.
type CredentialVersion struct{ ent.Schema }

// Mixin of the CredentialVersion.
func (CredentialVersion) Mixin() []ent.Mixin { return []ent.Mixin{TenantMixin{}} }

// Fields of the CredentialVersion.
func (CredentialVersion) Fields() []ent.Field {
	return []ent.Field{
		field.Int("credential_id").Immutable(),
		field.Int("version").Immutable().Annotations(entgql.OrderField("VERSION")),
		field.JSON("inputs", map[string]string{}).Optional().Immutable().
			Annotations(entgql.Skip(entgql.SkipAll)),
		// secrets is sealed with this version's own AAD.
		field.Bytes("secrets").Optional().Sensitive().Immutable().
			Annotations(entgql.Skip(entgql.SkipAll)),
		field.JSON("secret_meta", map[string]schematype.SecretMeta{}).Optional().Immutable().
			Annotations(entgql.Skip(entgql.SkipAll)),
		// state: LIVE (the credential's current values), SUPERSEDED (an
		// earlier live version), PENDING (saved with verify, being tested),
		// REJECTED (its verification failed; never went live).
		field.Enum("state").Values("LIVE", "SUPERSEDED", "PENDING", "REJECTED").
			Annotations(entgql.Type("CredentialVersionState")),
		// last_status and last_status_detail are the credential's status
		// when this version stopped being live: what its values last
		// earned, which a rollback to them starts from. Unset while the
		// version is live, and for a version never live.
		field.Enum("last_status").Values("PENDING", "ACTIVE", "ERROR", "FAILED").Optional().Nillable().
			Annotations(entgql.Skip(entgql.SkipAll)),
		field.String("last_status_detail").Optional().
			Annotations(entgql.Skip(entgql.SkipAll)),
		field.String("actor").Immutable(),
		field.String("message").Optional(),
		field.Time("created_at").Default(timeNow).Immutable().
			Annotations(entgql.OrderField("CREATED_AT")),
	}
}

// Edges of the CredentialVersion.
func (CredentialVersion) Edges() []ent.Edge {
	return []ent.Edge{
		edge.From("credential", Credential.Type).Ref("versions").
			Field("credential_id").Unique().Required().Immutable(),
	}
}

// Indexes of the CredentialVersion.
func (CredentialVersion) Indexes() []ent.Index {
	return []ent.Index{index.Fields("credential_id", "version").Unique()}
}

// Annotations of the CredentialVersion.
func (CredentialVersion) Annotations() []schema.Annotation {
	return []schema.Annotation{entgql.RelayConnection()}
}
