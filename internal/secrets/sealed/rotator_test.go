package sealed

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/plugboard/plugboard/ent"
	entconn "github.com/plugboard/plugboard/ent/connection"
	"github.com/plugboard/plugboard/ent/connectiontype"
	"github.com/plugboard/plugboard/ent/credential"
	"github.com/plugboard/plugboard/ent/schema/schematype"
	"github.com/plugboard/plugboard/internal/auth"
	"github.com/plugboard/plugboard/internal/connection/scopes"
	"github.com/plugboard/plugboard/internal/secrets"
	"github.com/plugboard/plugboard/internal/store"
	"github.com/plugboard/plugboard/internal/store/storetest"
)

// fixture is a database seeded with sealed values in every column, and what
// each value should decrypt to.
type fixture struct {
	db     *ent.Client
	master secrets.MasterKey
	kr     *secrets.Keyring
	org    int
	conn   int
	ctype  int
	creds  []int
	tmpls  []int
	states []int
	// want maps "column/id" to the plaintext.
	mu   sync.Mutex
	want map[string]string
}

func (f *fixture) set(col string, id int, v string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.want[fmt.Sprintf("%s/%d", col, id)] = v
}

func newKeyring(f *fixture, master secrets.MasterKey) *secrets.Keyring {
	return secrets.NewKeyring(master, &store.KeyStore{DB: f.db})
}

func seed(t *testing.T, s *store.Store, nCreds, nTmpls, nStates int) *fixture {
	t.Helper()
	ctx := auth.SystemContext(context.Background())
	db := s.Client
	auth.InstallTenantFilter(db, scopes.CustomerVisible())
	master, err := secrets.GenerateMasterKey()
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{db: db, master: master, want: map[string]string{}}
	f.kr = newKeyring(f, master)
	org, err := db.Organization.Create().SetSlug("default").SetName("default").Save(ctx)
	if err != nil {
		t.Fatal(err)
	}
	f.org = org.ID
	p, err := db.Plugin.Create().SetName("test").SetKey("test").Save(ctx)
	if err != nil {
		t.Fatal(err)
	}
	ct, err := db.ConnectionType.Create().SetKey("test.apiKey").SetPluginID(p.ID).SetLabel("Test").
		SetAuthKind(connectiontype.AuthKindAPI_KEY).SetInputs([]schematype.Input{}).Save(ctx)
	if err != nil {
		t.Fatal(err)
	}
	f.ctype = ct.ID
	c, err := db.Connection.Create().SetOrganizationID(org.ID).SetTypeID(ct.ID).SetStableKey("test").
		SetName("Test").SetScope(entconn.ScopeCUSTOMER).Save(ctx)
	if err != nil {
		t.Fatal(err)
	}
	f.conn = c.ID
	for i := range nCreds {
		cust, err := db.Customer.Create().SetOrganizationID(org.ID).SetExternalID(fmt.Sprintf("c%d", i)).SetName("C").Save(ctx)
		if err != nil {
			t.Fatal(err)
		}
		cr, err := db.Credential.Create().SetOrganizationID(org.ID).SetConnectionID(c.ID).
			SetHolder(credential.HolderCUSTOMER).SetCustomerID(cust.ID).SetHolderKey(fmt.Sprintf("customer:%d", cust.ID)).
			Save(ctx)
		if err != nil {
			t.Fatal(err)
		}
		f.creds = append(f.creds, cr.ID)
		f.saveSecrets(t, ctx, cr.ID, fmt.Sprintf(`{"apiKey":"secret-%d"}`, i))
		tok := fmt.Sprintf(`{"access_token":"at-%d"}`, i)
		sealed, err := f.kr.Encrypt(ctx, []byte(tok), CredentialToken.AAD(cr.ID))
		if err != nil {
			t.Fatal(err)
		}
		if err := db.Credential.UpdateOneID(cr.ID).SetToken(sealed).Exec(ctx); err != nil {
			t.Fatal(err)
		}
		f.set("credentials.token", cr.ID, tok)
	}
	for i := range nTmpls {
		tm, err := db.ConnectionTemplate.Create().SetOrganizationID(org.ID).SetTypeID(ct.ID).
			SetName(fmt.Sprintf("tmpl-%d", i)).Save(ctx)
		if err != nil {
			t.Fatal(err)
		}
		v := fmt.Sprintf(`{"clientSecret":"preset-%d"}`, i)
		sealed, err := f.kr.Encrypt(ctx, []byte(v), TemplateSecretPresets.AAD(tm.ID))
		if err != nil {
			t.Fatal(err)
		}
		if err := db.ConnectionTemplate.UpdateOneID(tm.ID).SetSecretPresets(sealed).Exec(ctx); err != nil {
			t.Fatal(err)
		}
		f.tmpls = append(f.tmpls, tm.ID)
		f.set("connection_templates.secret_presets", tm.ID, v)
	}
	for i := range nStates {
		hash := fmt.Sprintf("statehash%d", i)
		v := fmt.Sprintf("verifier-%d", i)
		sealed, err := f.kr.Encrypt(ctx, []byte(v), OAuthVerifier.AAD(hash))
		if err != nil {
			t.Fatal(err)
		}
		st, err := db.OAuthState.Create().SetOrganizationID(org.ID).SetStateHash(hash).SetCredentialID(f.creds[0]).
			SetVerifier(sealed).SetExpiresAt(time.Now().Add(time.Hour)).Save(ctx)
		if err != nil {
			t.Fatal(err)
		}
		f.states = append(f.states, st.ID)
		f.set("oauth_states.verifier", st.ID, v)
	}
	return f
}

// saveSecrets does what connection.Service.SaveCredential does to the
// sealed column: seal under the active key, write, remember the value.
func (f *fixture) saveSecrets(t testing.TB, ctx context.Context, id int, v string) {
	sealed, err := f.kr.Encrypt(ctx, []byte(v), CredentialSecrets.AAD(id))
	if err != nil {
		t.Error(err)
		return
	}
	// Hold the lock across the write so want always matches the last write.
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.db.Credential.UpdateOneID(id).SetSecrets(sealed).Exec(ctx); err != nil {
		t.Error(err)
		return
	}
	f.want[fmt.Sprintf("credentials.secrets/%d", id)] = v
}

// check decrypts every sealed value with kr and compares it with want; with
// keyID set, every value must be under that key. It returns the number of
// values.
func (f *fixture) check(t *testing.T, kr *secrets.Keyring, keyID string) int {
	t.Helper()
	ctx := auth.SystemContext(context.Background())
	seen := 0
	for _, col := range Columns() {
		rows, err := col.page(ctx, f.db, 0, 1<<20)
		if err != nil {
			t.Fatal(err)
		}
		for _, row := range rows {
			seen++
			key := fmt.Sprintf("%s/%d", col.Name(), row.id)
			got, err := kr.Decrypt(ctx, row.ct, row.aad)
			if err != nil {
				t.Errorf("%s: %v", key, err)
				continue
			}
			if want := f.want[key]; string(got) != want {
				t.Errorf("%s = %q, want %q", key, got, want)
			}
			if keyID != "" {
				if env, _ := secrets.ParseCiphertext(row.ct); env.KeyID != keyID {
					t.Errorf("%s is under %s, want %s", key, env.KeyID, keyID)
				}
			}
		}
	}
	if seen != len(f.want) {
		t.Errorf("found %d sealed values, want %d", seen, len(f.want))
	}
	return seen
}

func keyOf(t *testing.T, ct []byte) string {
	t.Helper()
	env, err := secrets.ParseCiphertext(ct)
	if err != nil {
		t.Fatal(err)
	}
	return env.KeyID
}

func TestRotate(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		f := seed(t, s, 5, 3, 2)
		ctx := context.Background()
		sys := auth.SystemContext(ctx)
		before, err := f.db.Credential.Get(sys, f.creds[0])
		if err != nil {
			t.Fatal(err)
		}
		oldKey := keyOf(t, before.Secrets)
		var batches []Progress
		r := &Rotator{DB: f.db, Keys: f.kr, Batch: 2, OnBatch: func(p Progress) { batches = append(batches, p) }}
		res, err := r.Rotate(ctx)
		if err != nil {
			t.Fatal(err)
		}
		total := 5 + 5 + 3 + 2
		if res.KeyID == "" || res.KeyID == oldKey || res.Reencrypted != total || res.Remaining != 0 || res.Failed != 0 {
			t.Fatalf("Rotate = %+v; want a new key, %d re-encrypted, 0 remaining", res, total)
		}
		if len(batches) < total/2 {
			t.Errorf("%d batches of 2 for %d values", len(batches), total)
		}
		f.check(t, f.kr, res.KeyID)
		// A fresh keyring (nothing cached) reads everything too.
		f.check(t, newKeyring(f, f.master), res.KeyID)
		// Re-encryption changes no value: updated_at is kept.
		after, err := f.db.Credential.Get(sys, f.creds[0])
		if err != nil {
			t.Fatal(err)
		}
		if !after.UpdatedAt.Equal(before.UpdatedAt) {
			t.Errorf("updated_at moved from %v to %v", before.UpdatedAt, after.UpdatedAt)
		}
		// Nothing left to do: a second sweep writes nothing.
		again, err := r.Reencrypt(ctx)
		if err != nil || again.Reencrypted != 0 || again.Remaining != 0 || again.KeyID != res.KeyID {
			t.Fatalf("Reencrypt after Rotate = %+v, %v", again, err)
		}
		// Retired key still present: the old ciphertext, kept aside,
		// still decrypts.
		if _, err := f.kr.Decrypt(sys, before.Secrets, CredentialSecrets.AAD(f.creds[0])); err != nil {
			t.Errorf("a ciphertext under the retired key: %v", err)
		}
	})
}

func TestRotateInterruptedResumes(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		f := seed(t, s, 6, 2, 2)
		total := 6 + 6 + 2 + 2
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		r := &Rotator{DB: f.db, Keys: f.kr, Batch: 1, OnBatch: func(Progress) { cancel() }}
		res, err := r.Rotate(ctx)
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("Rotate with a cancelled context = %+v, %v; want context.Canceled", res, err)
		}
		if res.KeyID == "" || res.Reencrypted != 1 {
			t.Fatalf("interrupted Rotate = %+v; want a key and 1 value re-encrypted", res)
		}
		// Midway every value still decrypts, under either key.
		f.check(t, newKeyring(f, f.master), "")
		pending, err := (&Rotator{DB: f.db, Keys: f.kr}).Pending(context.Background())
		if err != nil || pending != total-1 {
			t.Fatalf("Pending = %d, %v; want %d", pending, err, total-1)
		}
		// Resume: the rest moves to the same new key.
		r = &Rotator{DB: f.db, Keys: f.kr, Batch: 1}
		res2, err := r.Reencrypt(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if res2.KeyID != res.KeyID || res2.Reencrypted != total-1 || res2.Remaining != 0 {
			t.Fatalf("resumed = %+v; want key %s, %d re-encrypted, 0 remaining", res2, res.KeyID, total-1)
		}
		f.check(t, newKeyring(f, f.master), res.KeyID)
	})
}

// A save that lands between the sweep's read and its write wins: the
// compare-and-swap fails, the row is re-read, and the saved value survives.
func TestRotateLosesNoConcurrentSave(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		f := seed(t, s, 4, 0, 0)
		ctx := auth.SystemContext(context.Background())
		target := f.creds[2]
		raced := false
		r := &Rotator{DB: f.db, Keys: f.kr, Batch: 2}
		r.beforeSwap = func(col string, id int) {
			if col == "credentials.secrets" && id == target && !raced {
				raced = true
				f.saveSecrets(t, ctx, target, `{"apiKey":"saved-during-rotation"}`)
			}
		}
		res, err := r.Rotate(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if !raced || res.Conflicts != 1 || res.Remaining != 0 {
			t.Fatalf("Rotate = %+v (raced %v); want 1 conflict, 0 remaining", res, raced)
		}
		f.check(t, newKeyring(f, f.master), res.KeyID)
	})
}

// Goroutines keep saving while a rotation runs: every final value is the
// last one saved, and every value decrypts.
func TestRotateUnderConcurrentSaves(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		f := seed(t, s, 8, 1, 1)
		ctx := auth.SystemContext(context.Background())
		firstRound := make(chan struct{})
		stop := make(chan struct{})
		var wg sync.WaitGroup
		for g := range 2 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for round := 0; ; round++ {
					for i, id := range f.creds {
						if i%2 != g {
							continue
						}
						f.saveSecrets(t, ctx, id, fmt.Sprintf(`{"apiKey":"g%d-r%d"}`, g, round))
					}
					if round == 0 && g == 0 {
						close(firstRound)
					}
					select {
					case <-stop:
						return
					default:
					}
				}
			}()
		}
		started := false
		r := &Rotator{DB: f.db, Keys: f.kr, Batch: 1, OnBatch: func(Progress) {
			if !started {
				// The savers are running before the sweep goes on.
				started = true
				<-firstRound
			}
		}}
		res, err := r.Rotate(ctx)
		close(stop)
		wg.Wait()
		if err != nil {
			t.Fatal(err)
		}
		// Saves that sealed under the old key before the switch but wrote
		// after the sweep passed are moved by a second sweep.
		res2, err := r.Reencrypt(ctx)
		if err != nil || res2.Remaining != 0 || res2.KeyID != res.KeyID {
			t.Fatalf("Reencrypt = %+v, %v", res2, err)
		}
		f.check(t, newKeyring(f, f.master), res.KeyID)
	})
}

// The AAD binds a ciphertext to its row: copied to another credential it
// fails to decrypt, and a rotation leaves it alone and reports it.
func TestCopiedCiphertextFailsToDecrypt(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		f := seed(t, s, 2, 0, 0)
		ctx := auth.SystemContext(context.Background())
		a, b := f.creds[0], f.creds[1]
		ca, err := f.db.Credential.Get(ctx, a)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.kr.Decrypt(ctx, ca.Secrets, CredentialSecrets.AAD(a)); err != nil {
			t.Fatalf("credential %d's own secrets: %v", a, err)
		}
		if err := f.db.Credential.UpdateOneID(b).SetSecrets(ca.Secrets).Exec(ctx); err != nil {
			t.Fatal(err)
		}
		if pt, err := f.kr.Decrypt(ctx, ca.Secrets, CredentialSecrets.AAD(b)); !errors.Is(err, secrets.ErrDecrypt) || pt != nil {
			t.Fatalf("credential %d's secrets copied to %d decrypt: %q, %v; want ErrDecrypt", a, b, pt, err)
		}
		// Nor does the secrets value open as the token of the same row.
		if _, err := f.kr.Decrypt(ctx, ca.Secrets, CredentialToken.AAD(a)); !errors.Is(err, secrets.ErrDecrypt) {
			t.Fatalf("secrets opened as a token: %v", err)
		}
		res, err := (&Rotator{DB: f.db, Keys: f.kr}).Rotate(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if res.Failed != 1 || res.Remaining != 1 || res.Reencrypted != 3 {
			t.Fatalf("Rotate = %+v; want 1 failed and remaining, 3 re-encrypted", res)
		}
		cb, err := f.db.Credential.Get(ctx, b)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(cb.Secrets, ca.Secrets) {
			t.Fatal("the rotation rewrote a value it could not decrypt")
		}
	})
}

func TestRewrap(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		f := seed(t, s, 3, 1, 1)
		ctx := auth.SystemContext(context.Background())
		// Two data keys: values under both.
		if _, err := f.kr.Rotate(ctx); err != nil {
			t.Fatal(err)
		}
		f.saveSecrets(t, ctx, f.creds[0], `{"apiKey":"under-the-second-key"}`)
		newMaster, err := secrets.GenerateMasterKey()
		if err != nil {
			t.Fatal(err)
		}
		res, err := Rewrap(ctx, f.db, f.master, newMaster)
		if err != nil {
			t.Fatal(err)
		}
		if res.Keys != 2 || res.Rewrapped != 2 {
			t.Fatalf("Rewrap = %+v; want 2 keys re-wrapped", res)
		}
		f.check(t, newKeyring(f, newMaster), "")
		// The old master key no longer opens anything.
		oldKR := newKeyring(f, f.master)
		c, err := f.db.Credential.Get(ctx, f.creds[1])
		if err != nil {
			t.Fatal(err)
		}
		if _, err := oldKR.Decrypt(ctx, c.Secrets, CredentialSecrets.AAD(c.ID)); !errors.Is(err, secrets.ErrMasterKeyMismatch) {
			t.Fatalf("old master after the rewrap: %v; want ErrMasterKeyMismatch", err)
		}
		// Running it again is harmless.
		res, err = Rewrap(ctx, f.db, f.master, newMaster)
		if err != nil || res.Keys != 2 || res.Rewrapped != 0 {
			t.Fatalf("second Rewrap = %+v, %v", res, err)
		}
		// A wrong "old" key is refused and changes nothing.
		other, _ := secrets.GenerateMasterKey()
		third, _ := secrets.GenerateMasterKey()
		if _, err := Rewrap(ctx, f.db, other, third); !errors.Is(err, secrets.ErrMasterKeyMismatch) {
			t.Fatalf("Rewrap from a wrong master = %v", err)
		}
		// Rotation under the new master works.
		rr, err := (&Rotator{DB: f.db, Keys: newKeyring(f, newMaster)}).Rotate(ctx)
		if err != nil || rr.Remaining != 0 {
			t.Fatalf("Rotate after Rewrap = %+v, %v", rr, err)
		}
		f.check(t, newKeyring(f, newMaster), rr.KeyID)
	})
}

// After a rewrap, rotating with the old master key is refused: it would
// make a data key the new master cannot open.
func TestRotateRefusesStaleMaster(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		f := seed(t, s, 1, 0, 0)
		ctx := auth.SystemContext(context.Background())
		newMaster, _ := secrets.GenerateMasterKey()
		if _, err := Rewrap(ctx, f.db, f.master, newMaster); err != nil {
			t.Fatal(err)
		}
		before, _ := f.db.EncryptionKey.Query().Count(ctx)
		if _, err := (&Rotator{DB: f.db, Keys: newKeyring(f, f.master)}).Rotate(ctx); !errors.Is(err, secrets.ErrMasterKeyMismatch) {
			t.Fatalf("Rotate with the old master after a rewrap = %v; want ErrMasterKeyMismatch", err)
		}
		if after, _ := f.db.EncryptionKey.Query().Count(ctx); after != before {
			t.Fatalf("a refused rotation made a key: %d keys, had %d", after, before)
		}
		f.check(t, newKeyring(f, newMaster), "")
	})
}
