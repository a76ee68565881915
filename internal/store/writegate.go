package store

import (
	"context"
	"database/sql"
	"fmt"
	"sync"
	"time"

	"entgo.io/ent/dialect"
)

// writeGateWait bounds how long a transaction waits for the write gate:
// the busy_timeout it replaces for this process's own transactions.
const writeGateWait = 10 * time.Second

// writeGate lets one ent transaction of this process at a time hold
// SQLite's write lock (every transaction begins IMMEDIATE). Without it,
// concurrent transactions wait in SQLite's busy handler, which polls with
// sleeps of up to 100 ms: the lock sits idle between a commit and the next
// poll, and an unlucky waiter can lose every race until its busy_timeout
// fails it. The gate queues them in Go, first come first served, and hands
// the lock on the moment a transaction ends. A transaction waits at the
// gate before it takes a connection from the pool, so waiters never hold
// the connections the holder's own queries outside it may need. Raw SQL
// transactions on Store.DB and other processes (the CLI) still meet
// busy_timeout.
type writeGate chan struct{}

func newWriteGate() writeGate { return make(writeGate, 1) }

// enter waits for the gate, at most writeGateWait or until ctx ends.
func (g writeGate) enter(ctx context.Context) error {
	select {
	case g <- struct{}{}:
		return nil
	default:
	}
	t := time.NewTimer(writeGateWait)
	defer t.Stop()
	select {
	case g <- struct{}{}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return fmt.Errorf("database is locked: waited %s for this process's other transactions", writeGateWait)
	}
}

func (g writeGate) leave() { <-g }

// gatedDriver is an ent driver whose transactions pass the write gate.
type gatedDriver struct {
	dialect.Driver
	gate writeGate
}

func newGatedDriver(drv dialect.Driver) *gatedDriver {
	return &gatedDriver{Driver: drv, gate: newWriteGate()}
}

// Tx begins a transaction once it is through the gate.
func (d *gatedDriver) Tx(ctx context.Context) (dialect.Tx, error) {
	return d.BeginTx(ctx, nil)
}

// BeginTx begins a transaction with options (ent's Client.BeginTx) once it
// is through the gate; it leaves the gate when it commits or rolls back.
func (d *gatedDriver) BeginTx(ctx context.Context, opts *sql.TxOptions) (dialect.Tx, error) {
	if err := d.gate.enter(ctx); err != nil {
		return nil, err
	}
	tx, err := beginTx(ctx, d.Driver, opts)
	if err != nil {
		d.gate.leave()
		return nil, err
	}
	return &gatedTx{Tx: tx, gate: d.gate}, nil
}

// ExecContext and QueryContext pass through (ent's generated ExecContext
// and QueryContext, and the counting and tracing drivers above this one).
func (d *gatedDriver) ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error) {
	return execContext(ctx, d.Driver, query, args)
}

func (d *gatedDriver) QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	return queryContext(ctx, d.Driver, query, args)
}

// gatedTx leaves its gate once, when it ends either way.
type gatedTx struct {
	dialect.Tx
	gate writeGate
	once sync.Once
}

func (t *gatedTx) Commit() error {
	defer t.once.Do(t.gate.leave)
	return t.Tx.Commit()
}

func (t *gatedTx) Rollback() error {
	defer t.once.Do(t.gate.leave)
	return t.Tx.Rollback()
}

// ExecContext and QueryContext pass through to the transaction (ent's
// generated ExecContext and QueryContext on a Tx).
func (t *gatedTx) ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error) {
	return execContext(ctx, t.Tx, query, args)
}

func (t *gatedTx) QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	return queryContext(ctx, t.Tx, query, args)
}
