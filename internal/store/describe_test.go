package store_test

import (
	"context"
	"net/url"
	"path/filepath"
	"strings"
	"testing"

	"github.com/plugboard/plugboard/internal/store"
	"github.com/plugboard/plugboard/internal/store/storetest"
)

// Describe names the database in the serving log line: the SQLite file, or
// the PostgreSQL URL without its password.
func TestDescribe(t *testing.T) {
	ctx := context.Background()
	open := func(t *testing.T, databaseURL, dataDir string) *store.Store {
		t.Helper()
		s, err := store.Open(ctx, databaseURL, dataDir, nil)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = s.Close() })
		return s
	}
	t.Run("sqlite", func(t *testing.T) {
		dir := t.TempDir()
		if got, want := open(t, "", dir).Describe(), "sqlite "+filepath.Join(dir, "plugboard.db"); got != want {
			t.Errorf("Describe() = %q; want %q", got, want)
		}
		other := filepath.Join(t.TempDir(), "other.db")
		if got, want := open(t, "sqlite://"+other, "").Describe(), "sqlite "+other; got != want {
			t.Errorf("Describe() = %q; want %q", got, want)
		}
		if got, want := open(t, "file::memory:", "").Describe(), "sqlite in-memory"; got != want {
			t.Errorf("Describe() = %q; want %q", got, want)
		}
	})
	t.Run("postgres", func(t *testing.T) {
		dbURL := storetest.PostgresURL(t)
		got := open(t, dbURL, "").Describe()
		u, err := url.Parse(dbURL)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(got, "postgres ") || !strings.Contains(got, u.Host+u.Path) {
			t.Errorf("Describe() = %q; want postgres and %s", got, u.Host+u.Path)
		}
		if pw, ok := u.User.Password(); ok && pw != "" && strings.Contains(got, ":"+pw+"@") {
			t.Errorf("Describe() = %q shows the password", got)
		}
	})
}
