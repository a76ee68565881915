// Package secrets encrypts credential secrets at rest with envelope
// encryption.
//
// A master key (32 bytes kept outside the database, in a file or an
// environment variable) wraps data keys with AES-256-GCM. Data keys, stored
// wrapped by the caller through a [KeyStore], encrypt the values with
// AES-256-GCM. One data key is active at a time: [Keyring.Encrypt] uses it,
// [Keyring.Rotate] replaces it, and ciphertexts under retired data keys keep
// decrypting until they are re-encrypted ([Keyring.NeedsReencrypt],
// [Keyring.Reencrypt]). Replacing the master key re-wraps the data keys
// ([RewrapDataKeys]) without touching any ciphertext.
//
// The package knows no storage: the caller implements [KeyStore] and stores
// the ciphertexts. The caller binds each ciphertext to where it lives by
// passing associated data (for example the credential id and field name), so
// a ciphertext copied to another row or field fails to decrypt.
//
// # Ciphertext format
//
// Version 1, every field in order:
//
//	version      1 byte, 0x01
//	key ID size  1 byte, n (1 to 64)
//	key ID       n bytes of [A-Za-z0-9._-], the data key that sealed it
//	nonce        12 random bytes
//	sealed       AES-256-GCM ciphertext followed by its 16-byte tag
//
// The header (version, key ID size and key ID) is authenticated together with
// the caller's associated data, so no byte of a ciphertext can change
// unnoticed.
//
// # Replacing the master key
//
// Generate a new key ([GenerateMasterKey]), re-wrap every stored data key
// with [RewrapDataKeys], store the results in one transaction, then switch
// the configuration to the new key ([WriteMasterKeyFile] or the environment).
// RewrapDataKeys passes through data keys already wrapped by the new key, so
// an interrupted replacement can be run again.
package secrets
