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

// Credential holds the values of one connection for one holder: the
// organization, a customer, an instance or a user. Plain inputs are stored as
// JSON; secret inputs and tokens only as ciphertext.
type Credential struct{ ent.Schema }

// Mixin of the Credential.
func (Credential) Mixin() []ent.Mixin { return []ent.Mixin{TimeMixin{}, TenantMixin{}} }

// Fields of the Credential.
func (Credential) Fields() []ent.Field {
	return []ent.Field{
		field.Int("connection_id").Immutable(),
		field.Enum("holder").
			Values("ORGANIZATION", "CUSTOMER", "INSTANCE", "USER").
			Immutable().
			Annotations(entgql.Type("CredentialHolder")),
		field.Int("customer_id").Optional().Nillable().Immutable(),
		field.Int("user_id").Optional().Nillable().Immutable(),
		field.Int("instance_id").Optional().Nillable().Immutable(),
		field.Bool("is_test").Default(false).Immutable(),
		// holder_key makes (connection, holder, test) unique even where the
		// holder ids are NULL; see internal/connection.
		field.String("holder_key").Immutable().
			Annotations(entgql.Skip(entgql.SkipAll)),
		field.JSON("inputs", map[string]string{}).Optional().
			Annotations(entgql.Skip(entgql.SkipAll)),
		// secrets is the sealed JSON object of the secret inputs.
		field.Bytes("secrets").Optional().Sensitive().
			Annotations(entgql.Skip(entgql.SkipAll)),
		field.JSON("secret_meta", map[string]schematype.SecretMeta{}).Optional().
			Annotations(entgql.Skip(entgql.SkipAll)),
		// token is the sealed OAuth 2.0 token.
		field.Bytes("token").Optional().Sensitive().
			Annotations(entgql.Skip(entgql.SkipAll)),
		field.Time("token_expires_at").Optional().Nillable(),
		field.String("granted_scopes").Optional(),
		field.Enum("status").Values("PENDING", "ACTIVE", "ERROR", "FAILED").
			Default("PENDING").
			Annotations(entgql.Type("CredentialStatus"), entgql.OrderField("STATUS")),
		field.String("status_detail").Optional(),
		field.Int("version").Default(1),
		field.Time("last_tested_at").Optional().Nillable(),
		field.Int("failure_count").Default(0).
			Annotations(entgql.Skip(entgql.SkipAll)),
		field.Time("next_refresh_at").Optional().Nillable().
			Annotations(entgql.Skip(entgql.SkipAll)),
		// last_errors are the field errors of the last rejected save, for a
		// config wizard to show; the rejected values themselves are never
		// stored.
		field.JSON("last_errors", []schematype.FieldError{}).Optional().
			Annotations(entgql.Skip(entgql.SkipAll)),
		// on_prem_resource_id binds the credential to a customer's on-prem
		// resource: its onPremControlled inputs (host, port) are the
		// address plugboard forwards through the resource's agent.
		field.Int("on_prem_resource_id").Optional().Nillable().
			Annotations(entgql.Skip(entgql.SkipAll)),
	}
}

// Edges of the Credential.
func (Credential) Edges() []ent.Edge {
	return []ent.Edge{
		edge.From("connection", Connection.Type).Ref("credentials").
			Field("connection_id").Unique().Required().Immutable(),
		edge.From("customer", Customer.Type).Ref("credentials").
			Field("customer_id").Unique().Immutable(),
		edge.From("user", User.Type).Ref("credentials").
			Field("user_id").Unique().Immutable(),
		edge.From("instance", Instance.Type).Ref("owned_credentials").
			Field("instance_id").Unique().Immutable(),
		edge.To("bindings", InstanceBinding.Type).
			Annotations(entgql.Skip(entgql.SkipAll)),
		edge.To("audit_events", AuditEvent.Type).
			Annotations(entgql.RelayConnection()),
		edge.To("versions", CredentialVersion.Type).
			Annotations(entgql.RelayConnection()),
		edge.From("on_prem_resource", OnPremResource.Type).Ref("credentials").
			Field("on_prem_resource_id").Unique(),
	}
}

// Indexes of the Credential.
func (Credential) Indexes() []ent.Index {
	return []ent.Index{
		index.Fields("connection_id", "holder_key", "is_test").Unique(),
		index.Fields("status"),
		index.Fields("next_refresh_at"),
	}
}

// Annotations of the Credential.
func (Credential) Annotations() []schema.Annotation {
	return []schema.Annotation{entgql.RelayConnection(), entgql.QueryField()}
}
