package store

import (
	"context"
	"database/sql"
	"fmt"

	"entgo.io/ent/dialect"
)

// The store's ent drivers (CountingDriver, TracingDriver, gatedDriver) wrap
// one another and ent's own; these pass ent's optional methods (its
// generated ExecContext and QueryContext, Client.BeginTx) on to what they
// wrap: a driver or a transaction.

// execContext runs ExecContext of x.
func execContext(ctx context.Context, x any, query string, args []any) (sql.Result, error) {
	ex, ok := x.(interface {
		ExecContext(context.Context, string, ...any) (sql.Result, error)
	})
	if !ok {
		return nil, fmt.Errorf("store: %T does not support ExecContext", x)
	}
	return ex.ExecContext(ctx, query, args...)
}

// queryContext runs QueryContext of x.
func queryContext(ctx context.Context, x any, query string, args []any) (*sql.Rows, error) {
	q, ok := x.(interface {
		QueryContext(context.Context, string, ...any) (*sql.Rows, error)
	})
	if !ok {
		return nil, fmt.Errorf("store: %T does not support QueryContext", x)
	}
	return q.QueryContext(ctx, query, args...)
}

// beginTx runs BeginTx of drv.
func beginTx(ctx context.Context, drv dialect.Driver, opts *sql.TxOptions) (dialect.Tx, error) {
	b, ok := drv.(interface {
		BeginTx(context.Context, *sql.TxOptions) (dialect.Tx, error)
	})
	if !ok {
		return nil, fmt.Errorf("store: %T does not support BeginTx", drv)
	}
	return b.BeginTx(ctx, opts)
}
