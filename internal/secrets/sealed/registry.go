package sealed

import (
	"context"
	"strconv"
	"time"

	"entgo.io/ent/dialect/sql"

	"github.com/plugboard/plugboard/ent"
	"github.com/plugboard/plugboard/ent/connectiontemplate"
	"github.com/plugboard/plugboard/ent/credential"
	"github.com/plugboard/plugboard/ent/credentialversion"
	"github.com/plugboard/plugboard/ent/oauthstate"
	"github.com/plugboard/plugboard/ent/webhookendpoint"
)

// Column is one sealed column as the rotator sees it: where it lives, and
// how to page through its values and swap one.
type Column interface {
	// Table and Field are the SQL table and column, e.g. "credentials"
	// and "secrets".
	Table() string
	Field() string
	// Name is "table.field".
	Name() string

	page(ctx context.Context, db *ent.Client, after, n int) ([]row, error)
	swap(ctx context.Context, db *ent.Client, r row, nv []byte) (bool, error)
}

// Sealed is one sealed column whose associated data (AAD) is derived from a
// key of type K (a row id, a state hash, ...). Writers seal and open its
// values with AAD; the rotator re-encrypts them with the same function.
type Sealed[K any] struct {
	table, field string
	aad          func(K) []byte
	// read returns up to n stored values with id > after and a non-NULL
	// value, by id.
	read func(ctx context.Context, db *ent.Client, after, n int) ([]stored[K], error)
	// write sets nv if the row still holds r.ct; it reports whether it did.
	// updated_at is kept: re-encryption changes no value.
	write func(ctx context.Context, db *ent.Client, r row, nv []byte) (int, error)
}

// stored is one sealed value as read, with the key of its AAD.
type stored[K any] struct {
	id        int
	key       K
	ct        []byte
	updatedAt time.Time
}

// row is one sealed value as read, with its AAD.
type row struct {
	id        int
	ct        []byte
	aad       []byte
	updatedAt time.Time
}

// AAD is the associated data binding a value of this column to its row.
// The bytes are part of every stored ciphertext: changing them makes the
// stored values undecryptable.
func (s Sealed[K]) AAD(key K) []byte { return s.aad(key) }

// Table is the SQL table of the column.
func (s Sealed[K]) Table() string { return s.table }

// Field is the SQL column.
func (s Sealed[K]) Field() string { return s.field }

// Name is "table.field".
func (s Sealed[K]) Name() string { return s.table + "." + s.field }

func (s Sealed[K]) page(ctx context.Context, db *ent.Client, after, n int) ([]row, error) {
	vs, err := s.read(ctx, db, after, n)
	out := make([]row, 0, len(vs))
	for _, v := range vs {
		out = append(out, row{id: v.id, ct: v.ct, aad: s.aad(v.key), updatedAt: v.updatedAt})
	}
	return out, err
}

func (s Sealed[K]) swap(ctx context.Context, db *ent.Client, r row, nv []byte) (bool, error) {
	n, err := s.write(ctx, db, r, nv)
	return n == 1, err
}

// VersionKey names one version of a credential.
type VersionKey struct {
	CredentialID int
	Version      int
}

// The sealed columns. Each AAD names the row and the field, so a ciphertext
// copied to another row or field fails to decrypt.
var (
	// CredentialSecrets is credentials.secrets, keyed by credential id:
	// plugboard/credential/<id>/secrets.
	CredentialSecrets = Sealed[int]{
		table: credential.Table, field: credential.FieldSecrets,
		aad:  func(id int) []byte { return []byte("plugboard/credential/" + strconv.Itoa(id) + "/secrets") },
		read: readCredentialSecrets, write: writeCredentialSecrets,
	}
	// CredentialToken is credentials.token, keyed by credential id:
	// plugboard/credential/<id>/token.
	CredentialToken = Sealed[int]{
		table: credential.Table, field: credential.FieldToken,
		aad:  func(id int) []byte { return []byte("plugboard/credential/" + strconv.Itoa(id) + "/token") },
		read: readCredentialToken, write: writeCredentialToken,
	}
	// CredentialVersionSecrets is credential_versions.secrets, keyed by
	// credential id and version number:
	// plugboard/credential/<credential id>/version/<n>/secrets. A version's
	// ciphertext cannot be swapped into the live row or another version.
	CredentialVersionSecrets = Sealed[VersionKey]{
		table: credentialversion.Table, field: credentialversion.FieldSecrets,
		aad: func(k VersionKey) []byte {
			return []byte("plugboard/credential/" + strconv.Itoa(k.CredentialID) +
				"/version/" + strconv.Itoa(k.Version) + "/secrets")
		},
		read: readVersionSecrets, write: writeVersionSecrets,
	}
	// TemplateSecretPresets is connection_templates.secret_presets, keyed
	// by template id: plugboard/template/<id>/secrets.
	TemplateSecretPresets = Sealed[int]{
		table: connectiontemplate.Table, field: connectiontemplate.FieldSecretPresets,
		aad:  func(id int) []byte { return []byte("plugboard/template/" + strconv.Itoa(id) + "/secrets") },
		read: readTemplatePresets, write: writeTemplatePresets,
	}
	// OAuthVerifier is oauth_states.verifier, keyed by the state hash:
	// plugboard/oauthstate/<state hash>/verifier.
	OAuthVerifier = Sealed[string]{
		table: oauthstate.Table, field: oauthstate.FieldVerifier,
		aad:  func(hash string) []byte { return []byte("plugboard/oauthstate/" + hash + "/verifier") },
		read: readOAuthVerifiers, write: writeOAuthVerifier,
	}
	// WebhookSecret is webhook_endpoints.secret, keyed by endpoint id:
	// plugboard/webhook/<id>/secret.
	WebhookSecret = Sealed[int]{
		table: webhookendpoint.Table, field: webhookendpoint.FieldSecret,
		aad:  func(id int) []byte { return []byte("plugboard/webhook/" + strconv.Itoa(id) + "/secret") },
		read: readWebhookSecrets(webhookendpoint.FieldSecret), write: writeWebhookSecret(webhookendpoint.FieldSecret),
	}
	// WebhookPreviousSecret is webhook_endpoints.previous_secret, the
	// secret a rotation replaced while it still signs, keyed by endpoint
	// id: plugboard/webhook/<id>/previous_secret.
	WebhookPreviousSecret = Sealed[int]{
		table: webhookendpoint.Table, field: webhookendpoint.FieldPreviousSecret,
		aad:  func(id int) []byte { return []byte("plugboard/webhook/" + strconv.Itoa(id) + "/previous_secret") },
		read: readWebhookSecrets(webhookendpoint.FieldPreviousSecret), write: writeWebhookSecret(webhookendpoint.FieldPreviousSecret),
	}
)

// Columns is every sealed column, in the order the rotator sweeps them.
func Columns() []Column {
	return []Column{
		CredentialSecrets, CredentialToken, CredentialVersionSecrets, TemplateSecretPresets, OAuthVerifier,
		WebhookSecret, WebhookPreviousSecret,
	}
}

func readCredentialSecrets(ctx context.Context, db *ent.Client, after, n int) ([]stored[int], error) {
	cs, err := db.Credential.Query().
		Where(credential.IDGT(after), credential.SecretsNotNil()).
		Order(ent.Asc(credential.FieldID)).Limit(n).
		Select(credential.FieldID, credential.FieldSecrets, credential.FieldUpdatedAt).
		All(ctx)
	out := make([]stored[int], 0, len(cs))
	for _, c := range cs {
		out = append(out, stored[int]{id: c.ID, key: c.ID, ct: c.Secrets, updatedAt: c.UpdatedAt})
	}
	return out, err
}

func writeCredentialSecrets(ctx context.Context, db *ent.Client, r row, nv []byte) (int, error) {
	return db.Credential.Update().
		Where(credential.ID(r.id), credential.SecretsEQ(r.ct)).
		SetSecrets(nv).SetUpdatedAt(r.updatedAt).
		Save(ctx)
}

func readCredentialToken(ctx context.Context, db *ent.Client, after, n int) ([]stored[int], error) {
	cs, err := db.Credential.Query().
		Where(credential.IDGT(after), credential.TokenNotNil()).
		Order(ent.Asc(credential.FieldID)).Limit(n).
		Select(credential.FieldID, credential.FieldToken, credential.FieldUpdatedAt).
		All(ctx)
	out := make([]stored[int], 0, len(cs))
	for _, c := range cs {
		out = append(out, stored[int]{id: c.ID, key: c.ID, ct: c.Token, updatedAt: c.UpdatedAt})
	}
	return out, err
}

func writeCredentialToken(ctx context.Context, db *ent.Client, r row, nv []byte) (int, error) {
	return db.Credential.Update().
		Where(credential.ID(r.id), credential.TokenEQ(r.ct)).
		SetToken(nv).SetUpdatedAt(r.updatedAt).
		Save(ctx)
}

func readVersionSecrets(ctx context.Context, db *ent.Client, after, n int) ([]stored[VersionKey], error) {
	vs, err := db.CredentialVersion.Query().
		Where(credentialversion.IDGT(after), credentialversion.SecretsNotNil()).
		Order(ent.Asc(credentialversion.FieldID)).Limit(n).
		Select(credentialversion.FieldID, credentialversion.FieldSecrets,
			credentialversion.FieldCredentialID, credentialversion.FieldVersion).
		All(ctx)
	out := make([]stored[VersionKey], 0, len(vs))
	for _, v := range vs {
		k := VersionKey{CredentialID: v.CredentialID, Version: v.Version}
		out = append(out, stored[VersionKey]{id: v.ID, key: k, ct: v.Secrets})
	}
	return out, err
}

func writeVersionSecrets(ctx context.Context, db *ent.Client, r row, nv []byte) (int, error) {
	// secrets is immutable in the schema (a version never changes its
	// values); re-encryption sets it at the SQL level. The table has no
	// updated_at.
	return db.CredentialVersion.Update().
		Where(credentialversion.ID(r.id), credentialversion.SecretsEQ(r.ct)).
		Modify(func(u *sql.UpdateBuilder) { u.Set(credentialversion.FieldSecrets, nv) }).
		Save(ctx)
}

func readTemplatePresets(ctx context.Context, db *ent.Client, after, n int) ([]stored[int], error) {
	ts, err := db.ConnectionTemplate.Query().
		Where(connectiontemplate.IDGT(after), connectiontemplate.SecretPresetsNotNil()).
		Order(ent.Asc(connectiontemplate.FieldID)).Limit(n).
		Select(connectiontemplate.FieldID, connectiontemplate.FieldSecretPresets, connectiontemplate.FieldUpdatedAt).
		All(ctx)
	out := make([]stored[int], 0, len(ts))
	for _, t := range ts {
		out = append(out, stored[int]{id: t.ID, key: t.ID, ct: t.SecretPresets, updatedAt: t.UpdatedAt})
	}
	return out, err
}

func writeTemplatePresets(ctx context.Context, db *ent.Client, r row, nv []byte) (int, error) {
	return db.ConnectionTemplate.Update().
		Where(connectiontemplate.ID(r.id), connectiontemplate.SecretPresetsEQ(r.ct)).
		SetSecretPresets(nv).SetUpdatedAt(r.updatedAt).
		Save(ctx)
}

func readOAuthVerifiers(ctx context.Context, db *ent.Client, after, n int) ([]stored[string], error) {
	ss, err := db.OAuthState.Query().
		Where(oauthstate.IDGT(after), oauthstate.VerifierNotNil()).
		Order(ent.Asc(oauthstate.FieldID)).Limit(n).
		Select(oauthstate.FieldID, oauthstate.FieldVerifier, oauthstate.FieldStateHash, oauthstate.FieldUpdatedAt).
		All(ctx)
	out := make([]stored[string], 0, len(ss))
	for _, s := range ss {
		out = append(out, stored[string]{id: s.ID, key: s.StateHash, ct: s.Verifier, updatedAt: s.UpdatedAt})
	}
	return out, err
}

func writeOAuthVerifier(ctx context.Context, db *ent.Client, r row, nv []byte) (int, error) {
	// verifier is immutable in the schema (the flow never changes it);
	// re-encryption sets it at the SQL level.
	return db.OAuthState.Update().
		Where(oauthstate.ID(r.id), oauthstate.VerifierEQ(r.ct)).
		SetUpdatedAt(r.updatedAt).
		Modify(func(u *sql.UpdateBuilder) { u.Set(oauthstate.FieldVerifier, nv) }).
		Save(ctx)
}

// readWebhookSecrets reads one of the two sealed columns of
// webhook_endpoints (field), skipping rows where it is empty.
func readWebhookSecrets(field string) func(ctx context.Context, db *ent.Client, after, n int) ([]stored[int], error) {
	return func(ctx context.Context, db *ent.Client, after, n int) ([]stored[int], error) {
		es, err := db.WebhookEndpoint.Query().
			Where(webhookendpoint.IDGT(after), func(s *sql.Selector) {
				s.Where(sql.And(sql.NotNull(s.C(field)), sql.ExprP("length("+s.C(field)+") > 0")))
			}).
			Order(ent.Asc(webhookendpoint.FieldID)).Limit(n).
			Select(webhookendpoint.FieldID, field, webhookendpoint.FieldUpdatedAt).
			All(ctx)
		out := make([]stored[int], 0, len(es))
		for _, e := range es {
			ct := e.Secret
			if field == webhookendpoint.FieldPreviousSecret {
				ct = *e.PreviousSecret
			}
			out = append(out, stored[int]{id: e.ID, key: e.ID, ct: ct, updatedAt: e.UpdatedAt})
		}
		return out, err
	}
}

// writeWebhookSecret swaps one of the two sealed columns of
// webhook_endpoints (field) if it still holds r.ct.
func writeWebhookSecret(field string) func(ctx context.Context, db *ent.Client, r row, nv []byte) (int, error) {
	return func(ctx context.Context, db *ent.Client, r row, nv []byte) (int, error) {
		return db.WebhookEndpoint.Update().
			Where(webhookendpoint.ID(r.id), func(s *sql.Selector) { s.Where(sql.EQ(s.C(field), r.ct)) }).
			Modify(func(u *sql.UpdateBuilder) { u.Set(field, nv) }).
			SetUpdatedAt(r.updatedAt).
			Save(ctx)
	}
}
