package secrets_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/plugboard/plugboard/internal/secrets"
)

func mustMaster(t testing.TB) secrets.MasterKey {
	t.Helper()
	m, err := secrets.GenerateMasterKey()
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func newTestKeyring(t testing.TB) (*secrets.Keyring, *memStore, secrets.MasterKey) {
	t.Helper()
	store, m := newMemStore(), mustMaster(t)
	return secrets.NewKeyring(m, store), store, m
}

func mustEncrypt(t testing.TB, kr *secrets.Keyring, plaintext, aad string) []byte {
	t.Helper()
	ct, err := kr.Encrypt(context.Background(), []byte(plaintext), []byte(aad))
	if err != nil {
		t.Fatalf("Encrypt: %v", err)
	}
	return ct
}

func TestRoundTrip(t *testing.T) {
	ctx := context.Background()
	kr, store, master := newTestKeyring(t)
	tests := []struct {
		name      string
		plaintext []byte
		aad       []byte
	}{
		{"empty plaintext", nil, []byte("cred_1/password")},
		{"no aad", []byte("hunter2"), nil},
		{"api key", []byte("sk_live_51H8"), []byte("cred_1/apiKey")},
		{"binary", []byte{0, 1, 2, 0xff, 0xfe, 0}, []byte{0}},
		{"1 MiB", bytes.Repeat([]byte("x"), 1<<20), []byte("cred_2/token")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ct, err := kr.Encrypt(ctx, tt.plaintext, tt.aad)
			if err != nil {
				t.Fatalf("Encrypt: %v", err)
			}
			if len(tt.plaintext) > 4 && bytes.Contains(ct, tt.plaintext) {
				t.Fatal("ciphertext contains the plaintext")
			}
			got, err := kr.Decrypt(ctx, ct, tt.aad)
			if err != nil {
				t.Fatalf("Decrypt: %v", err)
			}
			if !bytes.Equal(got, tt.plaintext) {
				t.Fatalf("Decrypt = %q, want %q", got, tt.plaintext)
			}
			// A fresh keyring (another replica, or after a restart) unwraps
			// the data key from the store.
			other := secrets.NewKeyring(master, store)
			if got, err := other.Decrypt(ctx, ct, tt.aad); err != nil || !bytes.Equal(got, tt.plaintext) {
				t.Fatalf("fresh keyring Decrypt = %q, %v", got, err)
			}
		})
	}
	if n := len(store.all()); n != 1 {
		t.Fatalf("store holds %d data keys; want the 1 made on demand", n)
	}
}

func TestEncryptIsRandomized(t *testing.T) {
	kr, _, _ := newTestKeyring(t)
	a := mustEncrypt(t, kr, "same", "aad")
	b := mustEncrypt(t, kr, "same", "aad")
	if bytes.Equal(a, b) {
		t.Fatal("two encryptions of the same value are identical; nonces must be fresh")
	}
}

func TestCiphertextFormat(t *testing.T) {
	kr, store, _ := newTestKeyring(t)
	ct := mustEncrypt(t, kr, "hunter2", "cred_1/password")
	env, err := secrets.ParseCiphertext(ct)
	if err != nil {
		t.Fatal(err)
	}
	active, _ := store.ActiveDataKey(context.Background())
	if env.Version != secrets.Version || env.KeyID != active.ID || len(env.Nonce) != 12 || len(env.Sealed) != len("hunter2")+16 {
		t.Fatalf("envelope = %+v; want version %d, key %s, 12-byte nonce, 23-byte sealed", env, secrets.Version, active.ID)
	}
}

func TestDecryptWrongAAD(t *testing.T) {
	ctx := context.Background()
	kr, _, _ := newTestKeyring(t)
	ct := mustEncrypt(t, kr, "hunter2", "cred_1/password")
	for _, aad := range []string{"", "cred_2/password", "cred_1/apiKey", "cred_1/passwor", "cred_1/password\x00", "CRED_1/password"} {
		t.Run(fmt.Sprintf("%q", aad), func(t *testing.T) {
			got, err := kr.Decrypt(ctx, ct, []byte(aad))
			if !errors.Is(err, secrets.ErrDecrypt) {
				t.Fatalf("Decrypt with aad %q = %q, %v; want ErrDecrypt", aad, got, err)
			}
			if got != nil {
				t.Fatal("failed Decrypt returned plaintext")
			}
		})
	}
}

func TestDecryptTampered(t *testing.T) {
	ctx := context.Background()
	kr, _, _ := newTestKeyring(t)
	aad := []byte("cred_1/password")
	ct := mustEncrypt(t, kr, "hunter2", string(aad))

	type tamper struct {
		name string
		ct   []byte
	}
	var tests []tamper
	for i := range ct {
		c := bytes.Clone(ct)
		c[i] ^= 0x01
		tests = append(tests, tamper{fmt.Sprintf("flip byte %d", i), c})
	}
	for n := 0; n < len(ct); n++ {
		tests = append(tests, tamper{fmt.Sprintf("truncate to %d", n), bytes.Clone(ct[:n])})
	}
	tests = append(tests, tamper{"append a byte", append(bytes.Clone(ct), 0)})

	for _, tt := range tests {
		got, err := kr.Decrypt(ctx, tt.ct, aad)
		if err == nil {
			t.Errorf("%s: Decrypt succeeded with %q", tt.name, got)
			continue
		}
		if !errors.Is(err, secrets.ErrDecrypt) && !errors.Is(err, secrets.ErrMalformed) && !errors.Is(err, secrets.ErrUnknownKey) {
			t.Errorf("%s: Decrypt error %v; want ErrDecrypt, ErrMalformed or ErrUnknownKey", tt.name, err)
		}
	}
}

func TestDecryptErrors(t *testing.T) {
	ctx := context.Background()
	kr, _, _ := newTestKeyring(t)
	ct := mustEncrypt(t, kr, "hunter2", "a")
	unknown := bytes.Clone(ct)
	copy(unknown[2:], "dk_ffffffffffffffff")

	tests := []struct {
		name string
		ct   []byte
		want error
	}{
		{"nil", nil, secrets.ErrMalformed},
		{"version 2", append([]byte{2}, ct[1:]...), secrets.ErrMalformed},
		{"unknown key", unknown, secrets.ErrUnknownKey},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := kr.Decrypt(ctx, tt.ct, []byte("a")); !errors.Is(err, tt.want) {
				t.Fatalf("Decrypt = %v; want %v", err, tt.want)
			}
		})
	}
	t.Run("unknown key names it", func(t *testing.T) {
		_, err := kr.Decrypt(ctx, unknown, []byte("a"))
		if !strings.Contains(err.Error(), "dk_ffffffffffffffff") {
			t.Fatalf("error %q does not name the key", err)
		}
	})
}

func TestRotate(t *testing.T) {
	ctx := context.Background()
	kr, store, master := newTestKeyring(t)
	old := mustEncrypt(t, kr, "before rotation", "cred_1/password")

	dk, err := kr.Rotate(ctx)
	if err != nil {
		t.Fatalf("Rotate: %v", err)
	}
	if !dk.Active || dk.MasterKeyID != kr.MasterKeyID() {
		t.Fatalf("Rotate returned %+v; want an active key wrapped by %s", dk, kr.MasterKeyID())
	}
	keys := store.all()
	if len(keys) != 2 || keys[0].Active || !keys[1].Active || keys[1].ID != dk.ID {
		t.Fatalf("store after Rotate = %+v; want the first key retired and %s active", keys, dk.ID)
	}

	fresh := mustEncrypt(t, kr, "after rotation", "cred_1/password")
	if env, _ := secrets.ParseCiphertext(fresh); env.KeyID != dk.ID {
		t.Fatalf("Encrypt after Rotate used key %s; want %s", env.KeyID, dk.ID)
	}

	// Both the rotating keyring and a fresh one decrypt under the retired key.
	for name, k := range map[string]*secrets.Keyring{"same keyring": kr, "fresh keyring": secrets.NewKeyring(master, store)} {
		for _, c := range []struct {
			ct   []byte
			want string
		}{{old, "before rotation"}, {fresh, "after rotation"}} {
			got, err := k.Decrypt(ctx, c.ct, []byte("cred_1/password"))
			if err != nil || string(got) != c.want {
				t.Errorf("%s: Decrypt = %q, %v; want %q", name, got, err, c.want)
			}
		}
	}
}

func TestNeedsReencryptAndReencrypt(t *testing.T) {
	ctx := context.Background()
	kr, _, _ := newTestKeyring(t)
	aad := []byte("cred_1/password")
	old := mustEncrypt(t, kr, "hunter2", string(aad))

	if need, err := kr.NeedsReencrypt(ctx, old); err != nil || need {
		t.Fatalf("NeedsReencrypt before Rotate = %v, %v; want false", need, err)
	}
	if _, err := kr.Rotate(ctx); err != nil {
		t.Fatal(err)
	}
	if need, err := kr.NeedsReencrypt(ctx, old); err != nil || !need {
		t.Fatalf("NeedsReencrypt after Rotate = %v, %v; want true", need, err)
	}

	moved, err := kr.Reencrypt(ctx, old, aad)
	if err != nil {
		t.Fatalf("Reencrypt: %v", err)
	}
	if need, err := kr.NeedsReencrypt(ctx, moved); err != nil || need {
		t.Fatalf("NeedsReencrypt after Reencrypt = %v, %v; want false", need, err)
	}
	if got, err := kr.Decrypt(ctx, moved, aad); err != nil || string(got) != "hunter2" {
		t.Fatalf("Decrypt after Reencrypt = %q, %v", got, err)
	}
	again, err := kr.Reencrypt(ctx, moved, aad)
	if err != nil || !bytes.Equal(again, moved) {
		t.Fatalf("Reencrypt of a current ciphertext = %v; want it unchanged", err)
	}
	if _, err := kr.Reencrypt(ctx, old, []byte("cred_2/password")); !errors.Is(err, secrets.ErrDecrypt) {
		t.Fatalf("Reencrypt with the wrong aad = %v; want ErrDecrypt", err)
	}
	if _, err := kr.NeedsReencrypt(ctx, []byte{1}); !errors.Is(err, secrets.ErrMalformed) {
		t.Fatalf("NeedsReencrypt of garbage = %v; want ErrMalformed", err)
	}
}

func TestRewrapDataKeys(t *testing.T) {
	ctx := context.Background()
	store := newMemStore()
	m1, m2 := mustMaster(t), mustMaster(t)
	kr := secrets.NewKeyring(m1, store)
	aad := []byte("cred_1/password")
	cts := [][]byte{mustEncrypt(t, kr, "one", string(aad))}
	if _, err := kr.Rotate(ctx); err != nil {
		t.Fatal(err)
	}
	cts = append(cts, mustEncrypt(t, kr, "two", string(aad)))

	before := store.all()
	rewrapped, err := secrets.RewrapDataKeys(m1, m2, before)
	if err != nil {
		t.Fatalf("RewrapDataKeys: %v", err)
	}
	for i, k := range rewrapped {
		b := before[i]
		if k.ID != b.ID || k.Active != b.Active || !k.CreatedAt.Equal(b.CreatedAt) || k.MasterKeyID != m2.ID() || bytes.Equal(k.Wrapped, b.Wrapped) {
			t.Fatalf("rewrapped %+v from %+v; want same ID, Active, CreatedAt, new master and wrapping", k, b)
		}
		if b.MasterKeyID != m1.ID() {
			t.Fatal("RewrapDataKeys modified its input")
		}
	}
	store.replace(rewrapped)

	kr2 := secrets.NewKeyring(m2, store)
	for i, want := range []string{"one", "two"} {
		if got, err := kr2.Decrypt(ctx, cts[i], aad); err != nil || string(got) != want {
			t.Fatalf("Decrypt under new master = %q, %v; want %q", got, err, want)
		}
	}
	// New values go on under the same active data key.
	if got, err := kr2.Decrypt(ctx, mustEncrypt(t, kr2, "three", string(aad)), aad); err != nil || string(got) != "three" {
		t.Fatalf("round trip under new master = %q, %v", got, err)
	}

	t.Run("old master refused", func(t *testing.T) {
		stale := secrets.NewKeyring(m1, store)
		if _, err := stale.Decrypt(ctx, cts[0], aad); !errors.Is(err, secrets.ErrMasterKeyMismatch) {
			t.Fatalf("Decrypt with the old master = %v; want ErrMasterKeyMismatch", err)
		}
		if _, err := stale.Encrypt(ctx, []byte("x"), aad); !errors.Is(err, secrets.ErrMasterKeyMismatch) {
			t.Fatalf("Encrypt with the old master = %v; want ErrMasterKeyMismatch", err)
		}
		if n := len(store.all()); n != 2 {
			t.Fatalf("a keyring with the wrong master made a data key: %d keys", n)
		}
	})
	t.Run("rerun is idempotent", func(t *testing.T) {
		again, err := secrets.RewrapDataKeys(m1, m2, store.all())
		if err != nil {
			t.Fatalf("second RewrapDataKeys: %v", err)
		}
		for i, k := range again {
			if !bytes.Equal(k.Wrapped, rewrapped[i].Wrapped) {
				t.Fatal("second RewrapDataKeys changed a key already under the new master")
			}
		}
	})
	t.Run("foreign master refused", func(t *testing.T) {
		m3 := mustMaster(t)
		if _, err := secrets.RewrapDataKeys(m3, mustMaster(t), store.all()); !errors.Is(err, secrets.ErrMasterKeyMismatch) {
			t.Fatalf("RewrapDataKeys with an unrelated master = %v; want ErrMasterKeyMismatch", err)
		}
	})
	t.Run("same master refused", func(t *testing.T) {
		if _, err := secrets.RewrapDataKeys(m2, m2, store.all()); err == nil {
			t.Fatal("RewrapDataKeys with old == new succeeded")
		}
	})
	t.Run("tampered wrapped key refused", func(t *testing.T) {
		keys := store.all()
		keys[0].Wrapped[20] ^= 1
		if _, err := secrets.RewrapDataKeys(m1, m2, keys); !errors.Is(err, secrets.ErrDecrypt) {
			t.Fatalf("RewrapDataKeys of a tampered key = %v; want ErrDecrypt", err)
		}
	})
}

func TestTamperedStoredKey(t *testing.T) {
	ctx := context.Background()
	store := newMemStore()
	m := mustMaster(t)
	ct := mustEncrypt(t, secrets.NewKeyring(m, store), "hunter2", "a")
	dk := store.all()[0]
	dk.Wrapped[len(dk.Wrapped)-1] ^= 1
	store.put(dk)
	if _, err := secrets.NewKeyring(m, store).Decrypt(ctx, ct, []byte("a")); !errors.Is(err, secrets.ErrDecrypt) {
		t.Fatalf("Decrypt under a tampered stored key = %v; want ErrDecrypt", err)
	}
	dk.Wrapped = dk.Wrapped[:10]
	store.put(dk)
	if _, err := secrets.NewKeyring(m, store).Decrypt(ctx, ct, []byte("a")); !errors.Is(err, secrets.ErrMalformed) {
		t.Fatalf("Decrypt under a truncated stored key = %v; want ErrMalformed", err)
	}
}

// A stored data key is bound to its ID: moving it under another ID fails.
func TestStoredKeyBoundToID(t *testing.T) {
	ctx := context.Background()
	store := newMemStore()
	m := mustMaster(t)
	kr := secrets.NewKeyring(m, store)
	ct := mustEncrypt(t, kr, "hunter2", "a")
	if _, err := kr.Rotate(ctx); err != nil {
		t.Fatal(err)
	}
	keys := store.all()
	keys[0].Wrapped, keys[1].Wrapped = keys[1].Wrapped, keys[0].Wrapped
	store.replace(keys)
	if _, err := secrets.NewKeyring(m, store).Decrypt(ctx, ct, []byte("a")); !errors.Is(err, secrets.ErrDecrypt) {
		t.Fatalf("Decrypt with swapped wrapped keys = %v; want ErrDecrypt", err)
	}
}

func TestReplicas(t *testing.T) {
	ctx := context.Background()
	store := newMemStore()
	m := mustMaster(t)
	a := secrets.NewKeyring(m, store)
	eager := secrets.NewKeyring(m, store, secrets.WithActiveKeyTTL(0))
	cached := secrets.NewKeyring(m, store)

	// Every replica agrees on the first key.
	first := mustEncrypt(t, a, "x", "aad")
	for _, kr := range []*secrets.Keyring{eager, cached} {
		mustEncrypt(t, kr, "x", "aad")
	}
	if n := len(store.all()); n != 1 {
		t.Fatalf("three replicas made %d first keys; want 1", n)
	}

	rotated, err := a.Rotate(ctx)
	if err != nil {
		t.Fatal(err)
	}
	fromEager := mustEncrypt(t, eager, "y", "aad")
	if env, _ := secrets.ParseCiphertext(fromEager); env.KeyID != rotated.ID {
		t.Fatalf("replica with TTL 0 encrypted under %s after another replica rotated to %s", env.KeyID, rotated.ID)
	}
	if need, _ := eager.NeedsReencrypt(ctx, first); !need {
		t.Fatal("replica with TTL 0 does not see the rotation in NeedsReencrypt")
	}
	// A replica still within its TTL may use the previous key; whatever it
	// writes stays readable everywhere.
	fromCached := mustEncrypt(t, cached, "z", "aad")
	for _, kr := range []*secrets.Keyring{a, eager, cached} {
		for _, ct := range [][]byte{first, fromEager, fromCached} {
			if _, err := kr.Decrypt(ctx, ct, []byte("aad")); err != nil {
				t.Fatalf("replica cannot decrypt another replica's value: %v", err)
			}
		}
	}
}

func TestConcurrentFirstEncrypt(t *testing.T) {
	ctx := context.Background()
	kr, store, _ := newTestKeyring(t)
	var wg sync.WaitGroup
	errs := make(chan error, 32)
	for range 32 {
		wg.Go(func() {
			if _, err := kr.Encrypt(ctx, []byte("v"), nil); err != nil {
				errs <- err
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if n := len(store.all()); n != 1 {
		t.Fatalf("concurrent first encryptions made %d data keys; want 1", n)
	}
}

func TestConcurrentUse(t *testing.T) {
	ctx := context.Background()
	store := newMemStore()
	m := mustMaster(t)
	// Two keyrings over one store, as two replicas; the second never caches
	// the active key, so it reads the store on every Encrypt.
	krs := []*secrets.Keyring{secrets.NewKeyring(m, store), secrets.NewKeyring(m, store, secrets.WithActiveKeyTTL(0))}
	const workers, rounds, rotations = 8, 200, 10

	var wg sync.WaitGroup
	errs := make(chan error, workers+1)
	wg.Go(func() {
		for range rotations {
			if _, err := krs[0].Rotate(ctx); err != nil {
				errs <- err
				return
			}
		}
	})
	for w := range workers {
		wg.Go(func() {
			kr, other := krs[w%2], krs[(w+1)%2]
			for i := range rounds {
				aad := fmt.Appendf(nil, "cred_%d/field_%d", w, i)
				want := fmt.Appendf(nil, "value %d %d", w, i)
				ct, err := kr.Encrypt(ctx, want, aad)
				if err != nil {
					errs <- err
					return
				}
				for _, dec := range []*secrets.Keyring{kr, other} {
					got, err := dec.Decrypt(ctx, ct, aad)
					if err != nil || !bytes.Equal(got, want) {
						errs <- fmt.Errorf("worker %d round %d: Decrypt = %q, %v", w, i, got, err)
						return
					}
				}
				if _, err := kr.NeedsReencrypt(ctx, ct); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	keys := store.all()
	active := 0
	for _, k := range keys {
		if k.Active {
			active++
		}
	}
	// Each Rotate makes a key. A first key comes before them only when an
	// Encrypt finds the store empty (each keyring can make one, racing): when
	// Rotate runs first, its key is the first one.
	if active != 1 || len(keys) < rotations || len(keys) > rotations+len(krs) {
		t.Fatalf("store holds %d keys, %d active; want %d to %d, 1 active", len(keys), active, rotations, rotations+len(krs))
	}
}

// failingStore fails every call, as a database that is down.
type failingStore struct{ err error }

func (s failingStore) ActiveDataKey(context.Context) (*secrets.DataKey, error)   { return nil, s.err }
func (s failingStore) DataKey(context.Context, string) (*secrets.DataKey, error) { return nil, s.err }
func (s failingStore) CreateDataKey(context.Context, *secrets.DataKey) error     { return s.err }

func TestStoreErrors(t *testing.T) {
	ctx := context.Background()
	down := errors.New("database is down")
	kr := secrets.NewKeyring(mustMaster(t), failingStore{down})
	if _, err := kr.Encrypt(ctx, []byte("x"), nil); !errors.Is(err, down) {
		t.Fatalf("Encrypt = %v; want the store's error", err)
	}
	if _, err := kr.Rotate(ctx); !errors.Is(err, down) {
		t.Fatalf("Rotate = %v; want the store's error", err)
	}

	good, _, _ := newTestKeyring(t)
	ct := mustEncrypt(t, good, "x", "")
	if _, err := kr.Decrypt(ctx, ct, nil); !errors.Is(err, down) {
		t.Fatalf("Decrypt = %v; want the store's error", err)
	}
	if _, err := kr.NeedsReencrypt(ctx, ct); !errors.Is(err, down) {
		t.Fatalf("NeedsReencrypt = %v; want the store's error", err)
	}

	// With no key at all, every ciphertext needs re-encryption, and asking
	// does not create a key.
	empty := newMemStore()
	if need, err := secrets.NewKeyring(mustMaster(t), empty).NeedsReencrypt(ctx, ct); err != nil || !need {
		t.Fatalf("NeedsReencrypt with no active key = %v, %v; want true", need, err)
	}
	if len(empty.all()) != 0 {
		t.Fatal("NeedsReencrypt created a data key")
	}
}

func TestNewKeyringPanicsOnMisuse(t *testing.T) {
	for name, f := range map[string]func(){
		"zero master": func() { secrets.NewKeyring(secrets.MasterKey{}, newMemStore()) },
		"nil store":   func() { secrets.NewKeyring(mustMaster(t), nil) },
	} {
		t.Run(name, func(t *testing.T) {
			defer func() {
				if recover() == nil {
					t.Fatal("NewKeyring did not panic")
				}
			}()
			f()
		})
	}
}

func BenchmarkEncrypt(b *testing.B) {
	ctx := context.Background()
	kr, _, _ := newTestKeyring(b)
	value := bytes.Repeat([]byte{'s'}, 256)
	aad := []byte("cred_123/password")
	mustEncrypt(b, kr, "warm up", "")
	b.SetBytes(int64(len(value)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := kr.Encrypt(ctx, value, aad); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDecrypt(b *testing.B) {
	ctx := context.Background()
	kr, _, _ := newTestKeyring(b)
	value := bytes.Repeat([]byte{'s'}, 256)
	aad := []byte("cred_123/password")
	ct := mustEncrypt(b, kr, string(value), string(aad))
	b.SetBytes(int64(len(value)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := kr.Decrypt(ctx, ct, aad); err != nil {
			b.Fatal(err)
		}
	}
}
