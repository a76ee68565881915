package store_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"entgo.io/ent/dialect"

	"github.com/plugboard/plugboard/ent"
	"github.com/plugboard/plugboard/ent/organization"
	"github.com/plugboard/plugboard/internal/store"
	"github.com/plugboard/plugboard/internal/store/storetest"
)

func TestOpenSQLiteDefault(t *testing.T) {
	ctx := context.Background()
	dir := filepath.Join(t.TempDir(), "data")
	s, err := store.Open(ctx, "", dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if s.Dialect != dialect.SQLite {
		t.Errorf("Dialect = %q, want %q", s.Dialect, dialect.SQLite)
	}
	for _, c := range []struct {
		path string
		mode os.FileMode
	}{{dir, 0o700}, {filepath.Join(dir, "plugboard.db"), 0o600}} {
		fi, err := os.Stat(c.path)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != c.mode {
			t.Errorf("%s: mode %v, want %v", c.path, fi.Mode().Perm(), c.mode)
		}
	}
	for i := range 2 {
		if err := s.Migrate(ctx); err != nil {
			t.Fatalf("Migrate #%d: %v", i+1, err)
		}
	}
	if err := s.Ping(ctx); err != nil {
		t.Fatal(err)
	}
	var mode string
	if err := s.DB.QueryRowContext(ctx, "PRAGMA journal_mode").Scan(&mode); err != nil || !strings.EqualFold(mode, "wal") {
		t.Errorf("journal_mode = %q, %v; want wal", mode, err)
	}
	var fk int
	if err := s.DB.QueryRowContext(ctx, "PRAGMA foreign_keys").Scan(&fk); err != nil || fk != 1 {
		t.Errorf("foreign_keys = %d, %v; want 1", fk, err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	// Reopen: the data survives and migrating again changes nothing.
	s, err = store.Open(ctx, "sqlite://"+filepath.Join(dir, "plugboard.db"), "", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
}

func TestOpenSQLiteFileURLInMemory(t *testing.T) {
	ctx := context.Background()
	s, err := store.Open(ctx, "file:storetest-mem?mode=memory&cache=shared", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	if s.DB.Stats().MaxOpenConnections != 1 {
		t.Errorf("MaxOpenConnections = %d, want 1", s.DB.Stats().MaxOpenConnections)
	}
	createOrg(t, s.Client, "mem")
}

func TestOpenErrorsHidePassword(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, u := range []string{
		"postgres://postgres:s3cr3t-pw@127.0.0.1:1/pb?sslmode=disable&connect_timeout=2",
		"mysql://root:s3cr3t-pw@127.0.0.1/pb",
	} {
		_, err := store.Open(ctx, u, "", nil)
		if err == nil {
			t.Fatalf("Open(%s): no error", store.RedactURL(u))
		}
		if strings.Contains(err.Error(), "s3cr3t-pw") {
			t.Errorf("error leaks the password: %v", err)
		}
	}
}

// TestStore runs on SQLite and on PostgreSQL.
func TestStore(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		if err := s.Migrate(ctx); err != nil { // a second time
			t.Fatalf("second Migrate: %v", err)
		}
		if err := s.Ping(ctx); err != nil {
			t.Fatal(err)
		}
		org := createOrg(t, s.Client, "acme")
		// Global IDs: every table has its own range of ids.
		if org.ID < 55834574848 {
			t.Errorf("organization id %d is outside its global-id range", org.ID)
		}
		got, err := s.Client.Organization.Query().Where(organization.Slug("acme")).Only(ctx)
		if err != nil || got.ID != org.ID {
			t.Fatalf("query = %v, %v", got, err)
		}
		// Foreign keys are enforced.
		if _, err := s.Client.Customer.Create().SetOrganizationID(org.ID + 1000).
			SetExternalID("c1").SetName("C").Save(ctx); err == nil {
			t.Error("customer of a missing organization was stored")
		}
	})
}

// TestConcurrentWrites checks that writers, plain and in transactions that
// read before writing, wait for each other instead of failing with
// SQLITE_BUSY (or serialization errors on PostgreSQL).
func TestConcurrentWrites(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		const workers, each = 8, 25
		var wg sync.WaitGroup
		errs := make(chan error, workers*each)
		for w := range workers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := range each {
					slug := fmt.Sprintf("w%d-%d", w, i)
					if i%2 == 0 {
						_, err := s.Client.Organization.Create().SetName(slug).SetSlug(slug).Save(ctx)
						errs <- err
						continue
					}
					errs <- inTx(ctx, s.Client, func(tx *ent.Tx) error {
						if _, err := tx.Organization.Query().Count(ctx); err != nil {
							return err
						}
						_, err := tx.Organization.Create().SetName(slug).SetSlug(slug).Save(ctx)
						return err
					})
					// Readers run alongside the writers.
					if _, err := s.Client.Organization.Query().Limit(5).All(ctx); err != nil {
						errs <- err
					}
				}
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			if err != nil {
				t.Fatal(err)
			}
		}
		if n, err := s.Client.Organization.Query().Count(ctx); err != nil || n != workers*each {
			t.Fatalf("count = %d, %v; want %d", n, err, workers*each)
		}
	})
}

func TestStatementCounter(t *testing.T) {
	ctx := context.Background()
	var n atomic.Int64
	s := storetest.SQLite(t, store.WithStatementCounter(&n))
	if got := n.Load(); got != 0 {
		t.Errorf("after Migrate: %d statements counted, want 0", got)
	}
	org := createOrg(t, s.Client, "count")
	if got := n.Swap(0); got != 1 {
		t.Errorf("create: %d statements, want 1", got)
	}
	if _, err := s.Client.Organization.Get(ctx, org.ID); err != nil {
		t.Fatal(err)
	}
	if got := n.Swap(0); got != 1 {
		t.Errorf("get: %d statements, want 1", got)
	}
	err := inTx(ctx, s.Client, func(tx *ent.Tx) error {
		if _, err := tx.Organization.Query().Count(ctx); err != nil {
			return err
		}
		return tx.Organization.Update().Where(organization.ID(org.ID)).SetName("Renamed").Exec(ctx)
	})
	if err != nil {
		t.Fatal(err)
	}
	if got := n.Swap(0); got != 2 {
		t.Errorf("transaction: %d statements, want 2", got)
	}
	tx, err := s.Client.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.QueryContext(ctx, "SELECT 1"); err != nil {
		t.Fatal(err)
	}
	if err := tx.Rollback(); err != nil {
		t.Fatal(err)
	}
	if got := n.Swap(0); got != 1 {
		t.Errorf("BeginTx + QueryContext: %d statements, want 1", got)
	}
}

// TestPostgresMigrateConcurrently migrates one fresh PostgreSQL database
// from two stores at once, as two replicas starting together.
func TestPostgresMigrateConcurrently(t *testing.T) {
	dbURL := storetest.PostgresURL(t)
	ctx := context.Background()
	stores := make([]*store.Store, 3)
	for i := range stores {
		s, err := store.Open(ctx, dbURL, "", nil)
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		stores[i] = s
	}
	var wg sync.WaitGroup
	errs := make([]error, len(stores))
	for i, s := range stores {
		wg.Add(1)
		go func() { defer wg.Done(); errs[i] = s.Migrate(ctx) }()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	createOrg(t, stores[0].Client, "replica")
}

func createOrg(t *testing.T, c *ent.Client, slug string) *ent.Organization {
	t.Helper()
	org, err := c.Organization.Create().SetName(strings.ToUpper(slug)).SetSlug(slug).Save(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return org
}

func inTx(ctx context.Context, c *ent.Client, fn func(*ent.Tx) error) error {
	tx, err := c.Tx(ctx)
	if err != nil {
		return err
	}
	if err := fn(tx); err != nil {
		_ = tx.Rollback()
		return err
	}
	return tx.Commit()
}
