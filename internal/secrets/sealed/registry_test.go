package sealed

import (
	"sort"
	"testing"

	"entgo.io/ent/schema/field"

	"github.com/plugboard/plugboard/ent/migrate"
)

// notKeyringSealed are the byte columns of the schema that hold no value
// sealed by the keyring, and why.
var notKeyringSealed = map[string]string{
	// Data keys are wrapped by the master key, not by a data key; Rewrap
	// moves them.
	"encryption_keys.wrapped": "wrapped by the master key",
}

// TestRegistryCoversTheSchema fails when a byte column is added to the ent
// schema without being declared here: every such column is either in the
// registry exactly once or named in notKeyringSealed, and every registry
// entry is a byte column of the schema.
func TestRegistryCoversTheSchema(t *testing.T) {
	inSchema := map[string]bool{}
	for _, tbl := range migrate.Tables {
		for _, c := range tbl.Columns {
			if c.Type == field.TypeBytes {
				inSchema[tbl.Name+"."+c.Name] = true
			}
		}
	}
	declared := map[string]int{}
	for _, c := range Columns() {
		declared[c.Name()]++
		if c.Name() != c.Table()+"."+c.Field() {
			t.Errorf("%s: Name is not Table.Field (%s.%s)", c.Name(), c.Table(), c.Field())
		}
	}
	var names []string
	for n := range inSchema {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		_, exempt := notKeyringSealed[n]
		switch {
		case exempt && declared[n] > 0:
			t.Errorf("%s is both in the registry and exempt from it", n)
		case !exempt && declared[n] != 1:
			t.Errorf("byte column %s has %d registry entries; want exactly 1 (or name it in notKeyringSealed)", n, declared[n])
		}
	}
	for n := range declared {
		if !inSchema[n] {
			t.Errorf("registry entry %s is no byte column of the ent schema", n)
		}
	}
	for n := range notKeyringSealed {
		if !inSchema[n] {
			t.Errorf("notKeyringSealed names %s, no byte column of the ent schema", n)
		}
	}
}

// The AAD bytes are part of every stored ciphertext: they may never change,
// or what is stored no longer decrypts.
func TestAADIsStable(t *testing.T) {
	for _, tc := range []struct {
		col  string
		got  []byte
		want string
	}{
		{"credentials.secrets", CredentialSecrets.AAD(7), "plugboard/credential/7/secrets"},
		{"credentials.token", CredentialToken.AAD(7), "plugboard/credential/7/token"},
		{"credential_versions.secrets", CredentialVersionSecrets.AAD(VersionKey{CredentialID: 7, Version: 3}),
			"plugboard/credential/7/version/3/secrets"},
		{"connection_templates.secret_presets", TemplateSecretPresets.AAD(7), "plugboard/template/7/secrets"},
		{"oauth_states.verifier", OAuthVerifier.AAD("abc"), "plugboard/oauthstate/abc/verifier"},
	} {
		if string(tc.got) != tc.want {
			t.Errorf("%s AAD = %q, want %q", tc.col, tc.got, tc.want)
		}
	}
}

// No two columns bind a value to the same bytes: a ciphertext moved from
// one column to another, same row id, fails to decrypt.
func TestAADDiffersAcrossColumns(t *testing.T) {
	seen := map[string]string{}
	for _, c := range []struct {
		name string
		aad  []byte
	}{
		{CredentialSecrets.Name(), CredentialSecrets.AAD(1)},
		{CredentialToken.Name(), CredentialToken.AAD(1)},
		{CredentialVersionSecrets.Name(), CredentialVersionSecrets.AAD(VersionKey{CredentialID: 1, Version: 1})},
		{TemplateSecretPresets.Name(), TemplateSecretPresets.AAD(1)},
		{OAuthVerifier.Name(), OAuthVerifier.AAD("1")},
	} {
		if other, ok := seen[string(c.aad)]; ok {
			t.Errorf("%s and %s share the AAD %q", c.name, other, c.aad)
		}
		seen[string(c.aad)] = c.name
	}
}
