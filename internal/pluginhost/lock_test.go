package pluginhost

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func writeFile(t *testing.T, path, content string, mode os.FileMode) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), mode); err != nil {
		t.Fatal(err)
	}
}

func sum(s string) string {
	h := sha256.Sum256([]byte(s))
	return hex.EncodeToString(h[:])
}

func TestPin(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "zeta"), "zeta-binary", 0o755)
	writeFile(t, filepath.Join(dir, "alpha"), "alpha-binary", 0o700)
	writeFile(t, filepath.Join(dir, "README"), "not executable", 0o644)
	writeFile(t, filepath.Join(dir, ".hidden"), "hidden executable", 0o755)
	writeFile(t, filepath.Join(dir, DefaultLockName), `{"version":1,"plugins":{}}`, 0o755)
	if err := os.Mkdir(filepath.Join(dir, "subdir"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join(dir, "zeta"), filepath.Join(dir, "link")); err != nil {
		t.Fatal(err)
	}

	l, err := Pin(dir, "")
	if err != nil {
		t.Fatalf("Pin: %v", err)
	}
	want := map[string]LockEntry{
		"alpha": {SHA256: sum("alpha-binary"), Size: int64(len("alpha-binary"))},
		"zeta":  {SHA256: sum("zeta-binary"), Size: int64(len("zeta-binary"))},
	}
	if !reflect.DeepEqual(l.Plugins, want) {
		t.Errorf("Pin pinned %+v, want %+v", l.Plugins, want)
	}

	lockPath := DefaultLockPath(dir)
	first, err := os.ReadFile(lockPath)
	if err != nil {
		t.Fatal(err)
	}
	wantText := `{
  "version": 1,
  "plugins": {
    "alpha": {
      "sha256": "` + sum("alpha-binary") + `",
      "size": 12
    },
    "zeta": {
      "sha256": "` + sum("zeta-binary") + `",
      "size": 11
    }
  }
}
`
	if string(first) != wantText {
		t.Errorf("lock file:\n%s\nwant:\n%s", first, wantText)
	}

	// Pinning again is byte-for-byte stable and leaves no temporary files.
	if _, err := Pin(dir, ""); err != nil {
		t.Fatal(err)
	}
	second, _ := os.ReadFile(lockPath)
	if string(first) != string(second) {
		t.Error("pinning twice changed the lock file")
	}
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		if strings.Contains(e.Name(), ".tmp-") {
			t.Errorf("temporary file left behind: %s", e.Name())
		}
	}

	got, err := ReadLock(lockPath)
	if err != nil {
		t.Fatalf("ReadLock: %v", err)
	}
	if !reflect.DeepEqual(got.Plugins, want) || got.Version != LockVersion {
		t.Errorf("ReadLock = %+v, want %+v", got, want)
	}
}

func TestPinExplicitLockPath(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "one"), "one", 0o755)
	lockPath := filepath.Join(t.TempDir(), "custom.lock")
	if _, err := Pin(dir, lockPath); err != nil {
		t.Fatal(err)
	}
	l, err := ReadLock(lockPath)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := l.Plugins["one"]; !ok || len(l.Plugins) != 1 {
		t.Errorf("pinned %+v", l.Plugins)
	}
	if _, err := os.Stat(DefaultLockPath(dir)); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("wrote the default lock too: %v", err)
	}
}

func TestReadLockErrors(t *testing.T) {
	good := sum("x")
	tests := []struct {
		name    string
		content string
		want    string
	}{
		{"not json", `nope`, "parse plugin lock"},
		{"wrong version", `{"version":2,"plugins":{}}`, "unsupported version 2"},
		{"bad hash", `{"version":1,"plugins":{"a":{"sha256":"abc","size":1}}}`, "not 64 hex digits"},
		{"bad name", `{"version":1,"plugins":{"../a":{"sha256":"` + good + `","size":1}}}`, "invalid plugin name"},
		{"unknown field", `{"version":1,"plugins":{},"extra":true}`, "unknown field"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "lock")
			writeFile(t, path, tt.content, 0o644)
			_, err := ReadLock(path)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("ReadLock error = %v, want it to mention %q", err, tt.want)
			}
		})
	}
	t.Run("missing", func(t *testing.T) {
		_, err := ReadLock(filepath.Join(t.TempDir(), "none"))
		if !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("ReadLock error = %v, want fs.ErrNotExist", err)
		}
	})
	t.Run("upper-case hash normalised", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "lock")
		writeFile(t, path, `{"version":1,"plugins":{"a":{"sha256":"`+strings.ToUpper(good)+`","size":1}}}`, 0o644)
		l, err := ReadLock(path)
		if err != nil {
			t.Fatal(err)
		}
		if l.Plugins["a"].SHA256 != good {
			t.Errorf("sha256 = %s, want %s", l.Plugins["a"].SHA256, good)
		}
	})
}
