// Package sealed is the one registry of plugboard's sealed columns, and the
// rotator that re-encrypts them.
//
// Every column whose values are sealed by [secrets.Keyring] is declared once
// in [Columns]: its table, its column, the associated data (AAD) that binds a
// value to its row, and how to page through its values and swap one. Writers
// seal and open through the same declaration (for example
// CredentialSecrets.AAD(id)), so a writer and the rotator cannot disagree on
// the binding:
//
//	credentials.secrets                  plugboard/credential/<id>/secrets
//	credentials.token                    plugboard/credential/<id>/token
//	credential_versions.secrets          plugboard/credential/<credential id>/version/<n>/secrets
//	connection_templates.secret_presets  plugboard/template/<id>/secrets
//	oauth_states.verifier                plugboard/oauthstate/<state hash>/verifier
//	webhook_endpoints.secret             plugboard/webhook/<id>/secret
//	webhook_endpoints.previous_secret    plugboard/webhook/<id>/previous_secret
//
// The [Rotator] rotates the data key online: it makes a new data key and
// re-encrypts every sealed value under it, in batches, while the server keeps
// serving; [Rewrap] re-wraps the data keys under a new master key.
//
// Re-encryption is a compare-and-swap per row: a value is written back only
// if the column still holds the bytes that were read, so a credential saved
// or a token refreshed meanwhile is never overwritten (the row is re-read and
// tried again). Nothing is lost when a rotation stops midway: every value is
// always under a data key that still decrypts (data keys are never deleted),
// and running Reencrypt again finishes what is left.
//
// Keys are plugboard-wide: one rotation re-encrypts the values of every
// organization.
//
// The package lives beside [secrets] rather than in it because it reads the
// ent schema; secrets itself imports no storage.
package sealed
