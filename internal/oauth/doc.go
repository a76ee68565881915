// Package oauth runs plugboard's OAuth 2.0 flows for credentials: the
// authorization code flow with PKCE (Start, then the callback), client
// credentials, refreshing tokens before they expire (on a runtime read and
// in a background sweeper), and disconnecting.
//
// # Storage
//
// A credential's token (access token, refresh token, expiry, type, granted
// scopes and the extra fields of the token response) is stored only sealed
// (Keys.Encrypt, AAD sealed.CredentialToken); its expiry, granted
// scopes and refresh schedule are also kept in plain columns so the sweeper
// can find what is due. An authorization in progress is an OAuthState row
// holding the SHA-256 of the random state and the PKCE verifier sealed with
// AAD sealed.OAuthVerifier; it expires after
// Config.StateTTL and can be used once.
//
// # One refresh at a time
//
// A credential is refreshed by one goroutine of a process at a time
// (singleflight keyed by the credential id); concurrent readers share the
// outcome. Across replicas on PostgreSQL the refresh runs inside a
// transaction holding pg_advisory_xact_lock on a key derived from the
// credential id, and the credential is read again once the lock is held, so
// a replica that waited uses the token the other one stored instead of
// refreshing again. SQLite is embedded: one process owns the database, so
// singleflight alone serializes refreshes. On SQLite no transaction is held
// across the call to the provider (SQLite has one writer, and plugboard's
// transactions take the write lock when they begin).
//
// Every write of a refresh outcome is conditional on the sealed token being
// the one the refresh started from, so an authorization, a disconnect or
// another refresh that stored something meanwhile always wins over a stale
// refresh.
//
// Status changes only touch the token and status columns (never inputs or
// secrets), each one writes an AuditEvent and publishes an
// events.StatusChange after the transaction commits.
package oauth
