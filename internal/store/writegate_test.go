package store

import (
	"context"
	"database/sql"
	"errors"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

// gatedDB opens the SQLite file of dir through the statement-caching
// connector, with a busy_timeout of 20 ms: SQLite alone would fail a
// transaction that waits longer than that for the write lock.
func gatedDB(t *testing.T, dir string) *sql.DB {
	t.Helper()
	tg, err := parseTarget("sqlite://"+filepath.Join(dir, "gate.db")+"?_pragma=busy_timeout(20)", "")
	if err != nil {
		t.Fatal(err)
	}
	c, err := newStmtCacheConnector(tg.dsn, 0)
	if err != nil {
		t.Fatal(err)
	}
	db := sql.OpenDB(c)
	t.Cleanup(func() { db.Close() })
	db.SetMaxOpenConns(16)
	if _, err := db.Exec("CREATE TABLE IF NOT EXISTS t (n INTEGER)"); err != nil {
		t.Fatal(err)
	}
	return db
}

// Eight writers whose transactions each hold the write lock for 10 ms all
// commit: they queue at the gate, not in SQLite's busy handler, whose 20 ms
// timeout would fail most of them.
func TestWriteGateQueuesTransactions(t *testing.T) {
	db := gatedDB(t, t.TempDir())
	const writers, each = 8, 10
	var wg sync.WaitGroup
	errs := make(chan error, writers*each)
	for range writers {
		wg.Go(func() {
			for range each {
				errs <- func() error {
					tx, err := db.BeginTx(t.Context(), nil)
					if err != nil {
						return err
					}
					defer tx.Rollback()
					if _, err := tx.Exec("INSERT INTO t (n) VALUES (1)"); err != nil {
						return err
					}
					time.Sleep(10 * time.Millisecond)
					return tx.Commit()
				}()
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatalf("a transaction failed: %v", err)
		}
	}
	var n int
	if err := db.QueryRow("SELECT count(*) FROM t").Scan(&n); err != nil || n != writers*each {
		t.Fatalf("%d rows (%v), want %d", n, err, writers*each)
	}
}

// A transaction waiting at the gate gives up when its context ends, and a
// rolled back or committed transaction lets the next one in.
func TestWriteGateHonoursContextAndHandsOn(t *testing.T) {
	db := gatedDB(t, t.TempDir())
	held, err := db.BeginTx(t.Context(), nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel()
	if _, err := db.BeginTx(ctx, nil); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("BeginTx behind a held transaction: %v, want the context's deadline", err)
	}
	if err := held.Rollback(); err != nil {
		t.Fatal(err)
	}
	next, err := db.BeginTx(t.Context(), nil)
	if err != nil {
		t.Fatalf("BeginTx after the rollback: %v", err)
	}
	if err := next.Commit(); err != nil {
		t.Fatal(err)
	}
	if _, err := db.BeginTx(t.Context(), nil); err != nil {
		t.Fatalf("BeginTx after the commit: %v", err)
	}
}
