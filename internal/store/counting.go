package store

import (
	"context"
	"database/sql"
	"sync/atomic"

	"entgo.io/ent/dialect"
)

// CountingDriver wraps an ent driver and adds one to N for every statement
// (Exec, Query, ExecContext, QueryContext), inside transactions too.
// BEGIN, COMMIT and ROLLBACK are not counted. Benchmarks use it to count
// the SQL statements one request runs.
type CountingDriver struct {
	dialect.Driver
	N *atomic.Int64
}

// NewCountingDriver returns drv counting its statements into n.
func NewCountingDriver(drv dialect.Driver, n *atomic.Int64) *CountingDriver {
	return &CountingDriver{Driver: drv, N: n}
}

// Exec counts and runs a statement.
func (d *CountingDriver) Exec(ctx context.Context, query string, args, v any) error {
	d.N.Add(1)
	return d.Driver.Exec(ctx, query, args, v)
}

// Query counts and runs a query.
func (d *CountingDriver) Query(ctx context.Context, query string, args, v any) error {
	d.N.Add(1)
	return d.Driver.Query(ctx, query, args, v)
}

// ExecContext counts and runs a statement on the underlying database/sql
// driver (ent's generated ExecContext).
func (d *CountingDriver) ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error) {
	d.N.Add(1)
	return execContext(ctx, d.Driver, query, args)
}

// QueryContext counts and runs a query on the underlying database/sql
// driver (ent's generated QueryContext).
func (d *CountingDriver) QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	d.N.Add(1)
	return queryContext(ctx, d.Driver, query, args)
}

// Tx starts a transaction whose statements are counted.
func (d *CountingDriver) Tx(ctx context.Context) (dialect.Tx, error) {
	tx, err := d.Driver.Tx(ctx)
	if err != nil {
		return nil, err
	}
	return &countingTx{Tx: tx, n: d.N}, nil
}

// BeginTx starts a transaction with options (ent's Client.BeginTx) whose
// statements are counted.
func (d *CountingDriver) BeginTx(ctx context.Context, opts *sql.TxOptions) (dialect.Tx, error) {
	tx, err := beginTx(ctx, d.Driver, opts)
	if err != nil {
		return nil, err
	}
	return &countingTx{Tx: tx, n: d.N}, nil
}

// countingTx counts the statements of one transaction.
type countingTx struct {
	dialect.Tx
	n *atomic.Int64
}

func (t *countingTx) Exec(ctx context.Context, query string, args, v any) error {
	t.n.Add(1)
	return t.Tx.Exec(ctx, query, args, v)
}

func (t *countingTx) Query(ctx context.Context, query string, args, v any) error {
	t.n.Add(1)
	return t.Tx.Query(ctx, query, args, v)
}

func (t *countingTx) ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error) {
	t.n.Add(1)
	return execContext(ctx, t.Tx, query, args)
}

func (t *countingTx) QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	t.n.Add(1)
	return queryContext(ctx, t.Tx, query, args)
}

var (
	_ dialect.Driver = (*CountingDriver)(nil)
	_ dialect.Tx     = (*countingTx)(nil)
)
