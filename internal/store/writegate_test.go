package store

import (
	"context"
	"database/sql"
	"errors"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"entgo.io/ent/dialect"
	entsql "entgo.io/ent/dialect/sql"
)

// gatedWorld is an SQLite file opened as the store opens it (IMMEDIATE
// transactions), with a busy_timeout of 20 ms: SQLite alone fails a
// transaction that waits longer than that for the write lock. It returns
// the gated driver and the pool under it, of maxOpen connections.
func gatedWorld(t *testing.T, maxOpen int) (*gatedDriver, *sql.DB) {
	t.Helper()
	tg, err := parseTarget("sqlite://"+filepath.Join(t.TempDir(), "gate.db")+"?_pragma=busy_timeout(20)", "")
	if err != nil {
		t.Fatal(err)
	}
	db, err := openDB(tg, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	db.SetMaxOpenConns(maxOpen)
	if _, err := db.Exec("CREATE TABLE IF NOT EXISTS t (n INTEGER)"); err != nil {
		t.Fatal(err)
	}
	return newGatedDriver(entsql.OpenDB(dialect.SQLite, db)), db
}

// insertHolding inserts a row in a transaction that holds the write lock
// for hold; during it, read runs (when set) outside the transaction.
func insertHolding(ctx context.Context, d *gatedDriver, hold time.Duration, read func() error) error {
	tx, err := d.Tx(ctx)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	if err := tx.Exec(ctx, "INSERT INTO t (n) VALUES (1)", []any{}, nil); err != nil {
		return err
	}
	time.Sleep(hold)
	if read != nil {
		if err := read(); err != nil {
			return err
		}
	}
	return tx.Commit()
}

func rows(t *testing.T, db *sql.DB) int {
	t.Helper()
	var n int
	if err := db.QueryRow("SELECT count(*) FROM t").Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// Eight writers whose transactions each hold the write lock for 10 ms all
// commit: they queue at the gate, not in SQLite's busy handler, whose 20 ms
// timeout would fail most of them.
func TestWriteGateQueuesTransactions(t *testing.T) {
	d, db := gatedWorld(t, 16)
	const writers, each = 8, 10
	var wg sync.WaitGroup
	errs := make(chan error, writers*each)
	for range writers {
		wg.Go(func() {
			for range each {
				errs <- insertHolding(t.Context(), d, 10*time.Millisecond, nil)
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
	if n := rows(t, db); n != writers*each {
		t.Fatalf("%d rows, want %d", n, writers*each)
	}
}

// Transactions wait at the gate before they take a connection: with a pool
// of 2 and 6 writers waiting, the holder still gets a connection for a
// query outside its transaction.
func TestWriteGateWaitersHoldNoConnection(t *testing.T) {
	d, db := gatedWorld(t, 2)
	var wg sync.WaitGroup
	errs := make(chan error, 6)
	read := func() error {
		ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
		defer cancel()
		var n int
		return db.QueryRowContext(ctx, "SELECT count(*) FROM t").Scan(&n)
	}
	for range 6 {
		wg.Go(func() { errs <- insertHolding(t.Context(), d, 5*time.Millisecond, read) })
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatalf("a transaction failed: %v", err)
		}
	}
	if n := rows(t, db); n != 6 {
		t.Fatalf("%d rows, want 6", n)
	}
}

// A transaction waiting at the gate gives up when its context ends, and a
// rolled back or committed transaction lets the next one in.
func TestWriteGateHonoursContextAndHandsOn(t *testing.T) {
	d, _ := gatedWorld(t, 4)
	held, err := d.Tx(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel()
	if _, err := d.Tx(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Tx behind a held transaction: %v, want the context's deadline", err)
	}
	if err := held.Rollback(); err != nil {
		t.Fatal(err)
	}
	next, err := d.Tx(t.Context())
	if err != nil {
		t.Fatalf("Tx after the rollback: %v", err)
	}
	if err := next.Commit(); err != nil {
		t.Fatal(err)
	}
	last, err := d.Tx(t.Context())
	if err != nil {
		t.Fatalf("Tx after the commit: %v", err)
	}
	_ = last.Rollback()
}
