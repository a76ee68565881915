package server_test

import (
	"context"
	"testing"

	"github.com/plugboard/plugboard/ent/auditevent"
	"github.com/plugboard/plugboard/ent/credential"
	"github.com/plugboard/plugboard/internal/auth"
	"github.com/plugboard/plugboard/internal/globalid"
	"github.com/plugboard/plugboard/internal/secrets"
	"github.com/plugboard/plugboard/internal/secrets/sealed"
	"github.com/plugboard/plugboard/internal/server"
	"github.com/plugboard/plugboard/internal/server/servertest"
)

const rotateMutation = `mutation { rotateEncryptionKey { keyID reencrypted remaining userErrors { code message } } }`

func TestRotateEncryptionKeyEndToEnd(t *testing.T) {
	servertest.EachDB(t, servertest.Config{Plugins: []string{"asana"}}, func(t *testing.T, env *servertest.Env) {
		ctx := context.Background()
		sys := auth.SystemContext(ctx)
		db := env.App.Store.Client
		asana, _ := fakeAsana(t)
		connID, custID := createAsanaConnection(t, env)
		r := env.Do(t, saveMutation, map[string]any{"in": map[string]any{
			"connectionID": connID, "customerID": custID,
			"values": []any{
				map[string]any{"key": "apiKey", "value": canary},
				map[string]any{"key": "baseUrl", "value": asana.URL},
			},
		}})
		mustOK(t, r)
		credGID := servertest.Str(r.Data, "saveCredential.credential.id")
		credID, err := globalid.Decode(credGID)
		if err != nil {
			t.Fatalf("credential id %q: %v", credGID, err)
		}
		before, err := db.Credential.Get(sys, credID)
		if err != nil {
			t.Fatal(err)
		}
		oldKey, _ := secrets.ParseCiphertext(before.Secrets)

		// Other roles are refused and rotate nothing.
		org, err := server.EnsureOrganization(ctx, db, server.DefaultOrgSlug)
		if err != nil {
			t.Fatal(err)
		}
		rt, _, err := env.App.Tokens.Create(ctx, org.ID, auth.RoleRuntime, "runtime")
		if err != nil {
			t.Fatal(err)
		}
		key := newEmbedKey(t, "keys-e2e")
		registerKey(t, env, env.AdminToken, key)
		customerTok := key.token(t, server.DefaultOrgSlug, "acme", "u-acme-1")
		for name, tok := range map[string]string{"runtime": rt, "customer user": customerTok, "no token": ""} {
			r := env.DoAs(t, tok, rotateMutation, nil)
			if len(r.Errors) == 0 || (r.Code() != "FORBIDDEN" && r.Code() != "UNAUTHENTICATED") {
				t.Errorf("%s: rotateEncryptionKey answered %s; want FORBIDDEN or UNAUTHENTICATED", name, r.Raw)
			}
		}
		n, err := db.EncryptionKey.Query().Count(sys)
		if err != nil || n != 1 {
			t.Fatalf("after refused rotations %d data keys (%v); want 1", n, err)
		}

		// The admin rotates.
		r = env.Do(t, rotateMutation, nil)
		mustOK(t, r)
		keyID := servertest.Str(r.Data, "rotateEncryptionKey.keyID")
		if keyID == "" || keyID == oldKey.KeyID {
			t.Fatalf("rotateEncryptionKey: %s", r.Raw)
		}
		if got := servertest.Get(r.Data, "rotateEncryptionKey.remaining"); got != float64(0) {
			t.Fatalf("remaining = %v: %s", got, r.Raw)
		}
		if got, _ := servertest.Get(r.Data, "rotateEncryptionKey.reencrypted").(float64); got < 1 {
			t.Fatalf("reencrypted = %v: %s", got, r.Raw)
		}
		after, err := db.Credential.Query().Where(credential.ID(credID)).Only(sys)
		if err != nil {
			t.Fatal(err)
		}
		if env, _ := secrets.ParseCiphertext(after.Secrets); env.KeyID != keyID {
			t.Fatalf("credential secrets under %s, want %s", env.KeyID, keyID)
		}
		if _, err := env.App.Keys.Decrypt(sys, after.Secrets, sealed.CredentialSecrets.AAD(credID)); err != nil {
			t.Fatalf("credential secrets after rotation: %v", err)
		}
		// The credential keeps working: the plugin's live test reads the
		// re-encrypted secret (the fake Asana accepts only the canary).
		r = env.Do(t, `mutation($id: ID!) { testCredential(id: $id) { result { ok message } userErrors { code } } }`, map[string]any{"id": credGID})
		mustOK(t, r)
		if ok, _ := servertest.Get(r.Data, "testCredential.result.ok").(bool); !ok {
			t.Errorf("testCredential after rotation: %s", r.Raw)
		}
		audits, err := db.AuditEvent.Query().Where(auditevent.Action("encryption_key.rotated")).All(sys)
		if err != nil || len(audits) != 1 || audits[0].OrganizationID != org.ID {
			t.Fatalf("audit events %+v, %v; want one encryption_key.rotated in the admin's organization", audits, err)
		}
	})
}
