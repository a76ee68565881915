package secrets_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"

	"github.com/plugboard/plugboard/internal/secrets"
)

func TestLoadOrCreateMasterKey(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state", "keys", "master.key")

	key, created, err := secrets.LoadOrCreateMasterKey(path)
	if err != nil || !created || key.IsZero() {
		t.Fatalf("first LoadOrCreateMasterKey = %v, created %v, %v; want a new key", key, created, err)
	}
	if runtime.GOOS != "windows" {
		assertPerm(t, path, 0o600)
		assertPerm(t, filepath.Dir(path), 0o700)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if lines := strings.Split(strings.TrimSuffix(string(data), "\n"), "\n"); len(lines) != 1 {
		t.Fatalf("key file holds %d lines; want 1", len(lines))
	}
	if raw, err := base64.StdEncoding.DecodeString(strings.TrimSpace(string(data))); err != nil || len(raw) != 32 {
		t.Fatalf("key file does not hold 32 bytes of base64: %d bytes, %v", len(raw), err)
	}
	if entries, _ := os.ReadDir(filepath.Dir(path)); len(entries) != 1 {
		t.Fatalf("key directory holds %d entries; want only the key (no temporary files)", len(entries))
	}

	again, created, err := secrets.LoadOrCreateMasterKey(path)
	if err != nil || created || again.ID() != key.ID() {
		t.Fatalf("second LoadOrCreateMasterKey = %v, created %v, %v; want the same key %s", again, created, err, key.ID())
	}
}

func assertPerm(t *testing.T, path string, want fs.FileMode) {
	t.Helper()
	info, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if got := info.Mode().Perm(); got != want {
		t.Fatalf("%s has permissions %04o; want %04o", path, got, want)
	}
}

func TestLoadMasterKeyRefused(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("no Unix permissions")
	}
	valid := base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{7}, 32)) + "\n"
	tests := []struct {
		name    string
		content string
		perm    fs.FileMode
		want    string // in the error
	}{
		{"readable by others", valid, 0o644, "chmod 600"},
		{"readable by group", valid, 0o640, "chmod 600"},
		{"writable by group", valid, 0o620, "chmod 600"},
		{"short key", base64.StdEncoding.EncodeToString(make([]byte, 16)), 0o600, "16 bytes; want 32"},
		{"long key", base64.StdEncoding.EncodeToString(make([]byte, 64)), 0o600, "64 bytes; want 32"},
		{"not base64", "not a key!\n", 0o600, "not valid base64"},
		{"empty", "", 0o600, "empty"},
		{"too large", strings.Repeat("A", 5000), 0o600, "larger than"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "master.key")
			if err := os.WriteFile(path, []byte(tt.content), tt.perm); err != nil {
				t.Fatal(err)
			}
			if err := os.Chmod(path, tt.perm); err != nil { // beat the umask
				t.Fatal(err)
			}
			key, created, err := secrets.LoadOrCreateMasterKey(path)
			if err == nil {
				t.Fatalf("LoadOrCreateMasterKey = %v, created %v; want an error", key, created)
			}
			if !strings.Contains(err.Error(), tt.want) || !strings.Contains(err.Error(), path) {
				t.Fatalf("error %q does not name the file and say %q", err, tt.want)
			}
			if got, _ := os.ReadFile(path); string(got) != tt.content {
				t.Fatal("a refused key file was modified")
			}
		})
	}
	t.Run("directory", func(t *testing.T) {
		if _, _, err := secrets.LoadOrCreateMasterKey(t.TempDir()); err == nil {
			t.Fatal("a directory was accepted as a key file")
		}
	})
	t.Run("empty path", func(t *testing.T) {
		if _, _, err := secrets.LoadOrCreateMasterKey(""); err == nil {
			t.Fatal("an empty path was accepted")
		}
	})
}

func TestLoadOrCreateMasterKeyConcurrent(t *testing.T) {
	path := filepath.Join(t.TempDir(), "master.key")
	const n = 16
	ids := make([]string, n)
	var createdCount int
	var mu sync.Mutex
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			key, created, err := secrets.LoadOrCreateMasterKey(path)
			if err != nil {
				t.Error(err)
				return
			}
			ids[i] = key.ID()
			if created {
				mu.Lock()
				createdCount++
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if createdCount != 1 {
		t.Fatalf("%d callers report creating the key; want 1", createdCount)
	}
	for _, id := range ids {
		if id != ids[0] {
			t.Fatalf("concurrent callers got different keys: %v", ids)
		}
	}
}

func TestWriteMasterKeyFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "new.key")
	m := mustMaster(t)
	if err := secrets.WriteMasterKeyFile(path, m); err != nil {
		t.Fatal(err)
	}
	if err := secrets.WriteMasterKeyFile(path, mustMaster(t)); !errors.Is(err, fs.ErrExist) {
		t.Fatalf("overwriting a key file = %v; want fs.ErrExist", err)
	}
	got, created, err := secrets.LoadOrCreateMasterKey(path)
	if err != nil || created || got.ID() != m.ID() {
		t.Fatalf("reading back = %v, %v, %v; want %v", got, created, err, m)
	}
	if err := secrets.WriteMasterKeyFile(filepath.Join(t.TempDir(), "k"), secrets.MasterKey{}); err == nil {
		t.Fatal("writing an unset key succeeded")
	}
}

func TestParseMasterKey(t *testing.T) {
	raw := make([]byte, 32)
	for i := range raw {
		raw[i] = byte(0xf0 + i%16) // exercises '+' and '/' or '-' and '_'
	}
	want, err := secrets.ParseMasterKey(base64.StdEncoding.EncodeToString(raw))
	if err != nil {
		t.Fatal(err)
	}
	valid := map[string]string{
		"standard":         base64.StdEncoding.EncodeToString(raw),
		"standard, raw":    base64.RawStdEncoding.EncodeToString(raw),
		"URL":              base64.URLEncoding.EncodeToString(raw),
		"URL, raw":         base64.RawURLEncoding.EncodeToString(raw),
		"with white space": "  " + base64.StdEncoding.EncodeToString(raw) + "\n",
	}
	for name, s := range valid {
		t.Run(name, func(t *testing.T) {
			got, err := secrets.ParseMasterKey(s)
			if err != nil || got.ID() != want.ID() {
				t.Fatalf("ParseMasterKey = %v, %v; want %v", got, err, want)
			}
			if got.ExportBase64() != base64.StdEncoding.EncodeToString(raw) {
				t.Fatal("ExportBase64 does not give the key back")
			}
		})
	}
	for name, s := range map[string]string{
		"empty":     "",
		"blank":     " \n",
		"31 bytes":  base64.StdEncoding.EncodeToString(raw[:31]),
		"33 bytes":  base64.StdEncoding.EncodeToString(append(raw, 0)),
		"not b64":   "this is not base64 at all!",
		"hex, 64 c": hex.EncodeToString(raw),
	} {
		t.Run(name, func(t *testing.T) {
			if got, err := secrets.ParseMasterKey(s); err == nil {
				t.Fatalf("ParseMasterKey(%q) = %v; want an error", s, got)
			}
		})
	}
}

func TestMasterKeyID(t *testing.T) {
	a, b := mustMaster(t), mustMaster(t)
	if len(a.ID()) != 8 || strings.Trim(a.ID(), "0123456789abcdef") != "" {
		t.Fatalf("ID %q is not 8 hex digits", a.ID())
	}
	if a.ID() == b.ID() {
		t.Fatal("two random master keys share an ID")
	}
	if (secrets.MasterKey{}).ID() != "" || !(secrets.MasterKey{}).IsZero() || a.IsZero() {
		t.Fatal("IsZero or ID of the zero key is wrong")
	}
}

const canary = "canary-secret-9c1d"

// The canary must never show: not in errors, not in any printed form of keys.
func TestCanaryNeverLeaks(t *testing.T) {
	ctx := context.Background()
	// A master key whose very bytes are the canary.
	rawMaster := []byte(canary + "0123456789abcd")
	master, err := secrets.ParseMasterKey(base64.StdEncoding.EncodeToString(rawMaster))
	if err != nil {
		t.Fatal(err)
	}
	forbidden := []string{
		canary,
		base64.StdEncoding.EncodeToString(rawMaster),
		base64.RawURLEncoding.EncodeToString(rawMaster),
		hex.EncodeToString(rawMaster),
		strings.Trim(fmt.Sprint(rawMaster[:6]), "[]"), // decimal bytes, as fmt prints an array
		hex.EncodeToString([]byte(canary)),
		// Signs that fmt's reflection reached key material.
		"uint8=", "GCM", "aead", "raw",
	}
	check := func(t *testing.T, what, s string) {
		t.Helper()
		for _, f := range forbidden {
			if strings.Contains(s, f) {
				t.Errorf("%s leaks %q: %s", what, f, s)
			}
		}
	}

	store := newMemStore()
	kr := secrets.NewKeyring(master, store)
	ct, err := kr.Encrypt(ctx, []byte(canary), []byte(canary))
	if err != nil {
		t.Fatal(err)
	}
	dk, _ := store.ActiveDataKey(ctx)

	t.Run("printed keys", func(t *testing.T) {
		type config struct {
			Master  secrets.MasterKey
			private secrets.MasterKey
			ptr     *secrets.MasterKey
			kr      *secrets.Keyring
			any     any
		}
		cfg := config{Master: master, private: master, ptr: &master, kr: kr, any: master}
		for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%q", "%x", "%X", "%d", "%T %v"} {
			for name, v := range map[string]any{
				"master": master, "&master": &master, "config": cfg, "&config": &cfg,
				"keyring": kr, "data key": dk, "[]master": []secrets.MasterKey{master},
			} {
				check(t, fmt.Sprintf("%s printed with %s", name, verb), fmt.Sprintf(verb, v))
			}
		}
		check(t, "String", master.String())
		check(t, "GoString", master.GoString())
		if !strings.Contains(master.String(), master.ID()) {
			t.Errorf("String %q does not name the key ID", master.String())
		}
	})

	t.Run("logged keys", func(t *testing.T) {
		var buf bytes.Buffer
		for _, h := range []slog.Handler{slog.NewJSONHandler(&buf, nil), slog.NewTextHandler(&buf, nil)} {
			slog.New(h).Info("loaded", "master", master, "keyring", kr, "dataKey", dk, slog.Any("cfg", struct{ M secrets.MasterKey }{master}))
		}
		check(t, "log output", buf.String())
		if !strings.Contains(buf.String(), master.ID()) {
			t.Errorf("log output does not name the key ID: %s", buf.String())
		}
	})

	t.Run("errors", func(t *testing.T) {
		other := mustMaster(t)
		tampered := bytes.Clone(ct)
		tampered[len(tampered)-1] ^= 1
		var errs []error
		collect := func(_ any, err error) { errs = append(errs, err) }
		collect(kr.Decrypt(ctx, ct, []byte("wrong aad")))
		collect(kr.Decrypt(ctx, ct, nil))
		collect(kr.Decrypt(ctx, tampered, []byte(canary)))
		collect(kr.Decrypt(ctx, ct[:len(ct)-20], []byte(canary)))
		collect(kr.Decrypt(ctx, []byte(canary), []byte(canary)))
		collect(kr.Reencrypt(ctx, ct, []byte("wrong")))
		collect(kr.NeedsReencrypt(ctx, []byte(canary)))
		collect(secrets.NewKeyring(other, store).Decrypt(ctx, ct, []byte(canary)))
		collect(secrets.RewrapDataKeys(other, mustMaster(t), []*secrets.DataKey{dk}))
		collect(secrets.ParseCiphertext([]byte(canary)))
		collect(secrets.ParseMasterKey(canary))
		collect(secrets.ParseMasterKey(base64.StdEncoding.EncodeToString([]byte(canary))))
		collect(secrets.ParseMasterKey(base64.StdEncoding.EncodeToString(append(rawMaster, rawMaster...))))
		collect(secrets.RandomToken(canary, 1))

		dir := t.TempDir()
		for i, content := range []string{canary, base64.StdEncoding.EncodeToString(rawMaster[:20]), canary + "\x00!"} {
			path := filepath.Join(dir, fmt.Sprint(i))
			if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
				t.Fatal(err)
			}
			_, _, err := secrets.LoadOrCreateMasterKey(path)
			errs = append(errs, err)
		}
		for i, err := range errs {
			if err == nil {
				t.Errorf("case %d: no error", i)
				continue
			}
			check(t, fmt.Sprintf("error %d", i), err.Error())
			check(t, fmt.Sprintf("error %d with %%+v", i), fmt.Sprintf("%+v", err))
		}
	})
}
