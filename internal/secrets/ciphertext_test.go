package secrets_test

import (
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/plugboard/plugboard/internal/secrets"
)

// A fixed master key and data key, so the committed seed corpus under
// testdata/fuzz holds ciphertexts that really decrypt.
const (
	fixedMasterB64   = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="
	fixedDataKeyID   = "dk_6016d31237cb1228"
	fixedWrappedHex  = "01a00ea848baaf99385cd00c3f2485c8eee4eedc52ee134301f9d4ce6eb377ea1f4514c9b8204390cb32d276e4cd52c3525962c53e8a72e69c1d382f01"
	fixedHunter2Hex  = "0113646b5f363031366433313233376362313232385b6a61b480fb48c52d5f7737b32bc3ab80a06efae6fe1c0112138eecfb1b7c23e9c365" // "hunter2", aad "cred_1/password"
	fixedEmptyHex    = "0113646b5f363031366433313233376362313232380793461db049cff09161785e6b840bef04ed7adb7dd2810893b9ed82"               // "", no aad
	fixedHunter2AAD  = "cred_1/password"
	fixedHunter2Text = "hunter2"
)

func mustHex(tb testing.TB, s string) []byte {
	tb.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

func fixedKeyring(tb testing.TB) *secrets.Keyring {
	tb.Helper()
	m, err := secrets.ParseMasterKey(fixedMasterB64)
	if err != nil {
		tb.Fatal(err)
	}
	store := newMemStore()
	store.put(&secrets.DataKey{
		ID:          fixedDataKeyID,
		MasterKeyID: m.ID(),
		Wrapped:     mustHex(tb, fixedWrappedHex),
		Active:      true,
		CreatedAt:   time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC),
	})
	return secrets.NewKeyring(m, store)
}

// The fixed ciphertexts keep decrypting: the format is stable.
func TestFormatStable(t *testing.T) {
	kr := fixedKeyring(t)
	got, err := kr.Decrypt(context.Background(), mustHex(t, fixedHunter2Hex), []byte(fixedHunter2AAD))
	if err != nil || string(got) != fixedHunter2Text {
		t.Fatalf("Decrypt of a stored version 1 ciphertext = %q, %v", got, err)
	}
}

func TestParseCiphertext(t *testing.T) {
	valid := mustHex(t, fixedHunter2Hex)
	id := []byte(fixedDataKeyID)
	build := func(version, idLen byte, id []byte, rest int) []byte {
		return append(append([]byte{version, idLen}, id...), make([]byte, rest)...)
	}
	tests := []struct {
		name    string
		in      []byte
		wantErr string // empty: valid
	}{
		{"valid", valid, ""},
		{"smallest", build(1, 1, []byte("k"), 28), ""},
		{"64-byte key ID", build(1, 64, bytes.Repeat([]byte("a"), 64), 28), ""},
		{"nil", nil, "too short"},
		{"one byte", []byte{1}, "too short"},
		{"version 0", build(0, 1, []byte("k"), 28), "unsupported version 0"},
		{"version 2", build(2, 1, []byte("k"), 28), "unsupported version 2"},
		{"empty key ID", build(1, 0, nil, 28), "key ID length 0"},
		{"key ID too long", build(1, 65, bytes.Repeat([]byte("a"), 65), 28), "key ID length 65"},
		{"key ID length past the end", []byte{1, 200, 'a'}, "key ID length 200"},
		{"key ID past the end", build(1, 20, id[:10], 0), "too short"},
		{"no tag", build(1, byte(len(id)), id, 12+15), "too short"},
		{"key ID with a space", build(1, 2, []byte("a "), 28), "key ID is not"},
		{"key ID with a newline", build(1, 2, []byte("a\n"), 28), "key ID is not"},
		{"key ID not ASCII", build(1, 2, []byte("é"), 28), "key ID is not"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env, err := secrets.ParseCiphertext(tt.in)
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("ParseCiphertext = %v", err)
				}
				if 2+len(env.KeyID)+len(env.Nonce)+len(env.Sealed) != len(tt.in) {
					t.Fatalf("envelope parts %+v do not add up to the %d input bytes", env, len(tt.in))
				}
				return
			}
			if !errors.Is(err, secrets.ErrMalformed) || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("ParseCiphertext = %+v, %v; want ErrMalformed saying %q", env, err, tt.wantErr)
			}
		})
	}
}

func FuzzParseCiphertext(f *testing.F) {
	f.Add(mustHex(f, fixedHunter2Hex))
	f.Add(mustHex(f, fixedEmptyHex))
	f.Fuzz(func(t *testing.T, b []byte) {
		in := bytes.Clone(b)
		env, err := secrets.ParseCiphertext(b)
		if !bytes.Equal(in, b) {
			t.Fatal("ParseCiphertext modified its input")
		}
		if err != nil {
			if !errors.Is(err, secrets.ErrMalformed) {
				t.Fatalf("error %v does not wrap ErrMalformed", err)
			}
			return
		}
		switch {
		case env.Version != secrets.Version:
			t.Fatalf("accepted version %d", env.Version)
		case len(env.KeyID) == 0 || len(env.KeyID) > 64 || int(b[1]) != len(env.KeyID) || string(b[2:2+len(env.KeyID)]) != env.KeyID:
			t.Fatalf("key ID %q does not match the header", env.KeyID)
		case strings.Trim(env.KeyID, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-") != "":
			t.Fatalf("accepted key ID %q", env.KeyID)
		case len(env.Nonce) != 12 || len(env.Sealed) < 16:
			t.Fatalf("nonce of %d bytes, sealed of %d", len(env.Nonce), len(env.Sealed))
		case 2+len(env.KeyID)+len(env.Nonce)+len(env.Sealed) != len(b):
			t.Fatal("parts do not add up to the input")
		}
	})
}

func FuzzDecrypt(f *testing.F) {
	f.Add(mustHex(f, fixedHunter2Hex), []byte(fixedHunter2AAD))
	f.Add(mustHex(f, fixedEmptyHex), []byte{})
	kr := fixedKeyring(f)
	ctx := context.Background()
	genuine := mustHex(f, fixedHunter2Hex)
	f.Fuzz(func(t *testing.T, ct, aad []byte) {
		pt, err := kr.Decrypt(ctx, ct, aad)
		if bytes.Equal(ct, genuine) && string(aad) == fixedHunter2AAD && (err != nil || string(pt) != fixedHunter2Text) {
			t.Fatalf("Decrypt of the genuine ciphertext = %q, %v; want %q", pt, err, fixedHunter2Text)
		}
		if err != nil {
			if pt != nil {
				t.Fatal("failed Decrypt returned plaintext")
			}
			if !errors.Is(err, secrets.ErrMalformed) && !errors.Is(err, secrets.ErrDecrypt) && !errors.Is(err, secrets.ErrUnknownKey) {
				t.Fatalf("Decrypt error %v wraps no sentinel", err)
			}
			return
		}
		// Only the genuine data key can authenticate anything.
		if env, _ := secrets.ParseCiphertext(ct); env.KeyID != fixedDataKeyID {
			t.Fatalf("Decrypt succeeded under key %q", env.KeyID)
		}
	})
}
