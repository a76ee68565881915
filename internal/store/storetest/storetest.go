// Package storetest gives tests fresh, migrated databases: SQLite always,
// PostgreSQL when PLUGBOARD_TEST_POSTGRES_URL names a server the tests may
// create databases on.
//
//	func TestSomething(t *testing.T) {
//		storetest.Each(t, func(t *testing.T, s *store.Store) {
//			// use s.Client
//		})
//	}
package storetest

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"fmt"
	"net/url"
	"os"
	"testing"
	"time"

	"github.com/plugboard/plugboard/internal/store"
)

// PostgresURLEnv names the environment variable holding an admin URL of a
// PostgreSQL server, e.g.
// postgres://postgres:postgres@127.0.0.1:5432/postgres?sslmode=disable.
const PostgresURLEnv = "PLUGBOARD_TEST_POSTGRES_URL"

const setupTimeout = 2 * time.Minute

// Each runs fn twice, as the subtests "sqlite" and "postgres", each with a
// fresh migrated database. The postgres subtest is skipped when
// PLUGBOARD_TEST_POSTGRES_URL is unset, and fails instead when CI=true.
func Each(t *testing.T, fn func(t *testing.T, s *store.Store)) {
	t.Helper()
	t.Run("sqlite", func(t *testing.T) { fn(t, SQLite(t)) })
	t.Run("postgres", func(t *testing.T) { fn(t, Postgres(t)) })
}

// SQLite returns a fresh migrated SQLite store in a file under t.TempDir(),
// closed at the end of the test.
func SQLite(t testing.TB, opts ...store.Option) *store.Store {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), setupTimeout)
	defer cancel()
	s, err := store.Open(ctx, "", t.TempDir(), nil, opts...)
	if err != nil {
		t.Fatalf("storetest: %v", err)
	}
	t.Cleanup(func() { _ = s.Close() })
	if err := s.Migrate(ctx); err != nil {
		t.Fatalf("storetest: %v", err)
	}
	return s
}

// Postgres returns a store on a fresh migrated database pbtest_<random>,
// created through PLUGBOARD_TEST_POSTGRES_URL and dropped at the end of the
// test. Without the variable it skips the test, or fails it when CI=true.
func Postgres(t testing.TB, opts ...store.Option) *store.Store {
	t.Helper()
	dbURL := PostgresURL(t)
	ctx, cancel := context.WithTimeout(context.Background(), setupTimeout)
	defer cancel()
	s, err := store.Open(ctx, dbURL, "", nil, append([]store.Option{store.WithMaxOpenConns(8)}, opts...)...)
	if err != nil {
		t.Fatalf("storetest: %v", err)
	}
	t.Cleanup(func() { _ = s.Close() }) // runs before the drop
	if err := s.Migrate(ctx); err != nil {
		t.Fatalf("storetest: %v", err)
	}
	return s
}

// PostgresURL creates a fresh, empty (not migrated) database pbtest_<random>
// through PLUGBOARD_TEST_POSTGRES_URL, drops it at the end of the test and
// returns its URL. Without the variable it skips the test, or fails it when
// CI=true.
func PostgresURL(t testing.TB) string {
	t.Helper()
	adminURL := os.Getenv(PostgresURLEnv)
	if adminURL == "" {
		if os.Getenv("CI") == "true" {
			t.Fatalf("PostgreSQL: %s must be set when CI=true", PostgresURLEnv)
		}
		t.Skipf("PostgreSQL: set %s (e.g. postgres://postgres:postgres@127.0.0.1:5432/postgres?sslmode=disable) to run", PostgresURLEnv)
	}
	name := "pbtest_" + randomHex(t, 8)
	dbURL, err := withDatabase(adminURL, name)
	if err != nil {
		t.Fatalf("storetest: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), setupTimeout)
	defer cancel()
	admin, err := sql.Open("pgx", adminURL)
	if err != nil {
		t.Fatalf("storetest: open %s: %v", store.RedactURL(adminURL), err)
	}
	admin.SetMaxOpenConns(2)
	if _, err := admin.ExecContext(ctx, "CREATE DATABASE "+name); err != nil {
		admin.Close()
		t.Fatalf("storetest: create database on %s: %v", store.RedactURL(adminURL), err)
	}
	t.Cleanup(func() { dropDatabase(t, admin, name) })
	return dbURL
}

// dropDatabase ends the connections to database name, drops it and closes
// the admin pool.
func dropDatabase(t testing.TB, admin *sql.DB, name string) {
	defer admin.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_, _ = admin.ExecContext(ctx,
		"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()", name)
	if _, err := admin.ExecContext(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)"); err != nil {
		t.Logf("storetest: drop database %s: %v", name, err)
	}
}

// withDatabase returns adminURL with its database replaced by name.
func withDatabase(adminURL, name string) (string, error) {
	u, err := url.Parse(adminURL)
	if err != nil {
		return "", fmt.Errorf("cannot parse %s as a URL", PostgresURLEnv)
	}
	u.Path = "/" + name
	u.RawPath = ""
	return u.String(), nil
}

func randomHex(t testing.TB, n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatalf("storetest: %v", err)
	}
	return hex.EncodeToString(b)
}
