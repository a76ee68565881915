package store

import (
	"context"
	"database/sql/driver"
	"fmt"
	"sync"
	"time"
)

// writeGateWait bounds how long a transaction waits for the write gate:
// the busy_timeout it replaces for this process's own transactions.
const writeGateWait = 10 * time.Second

// writeGate lets one transaction of this process at a time hold SQLite's
// write lock (every transaction begins IMMEDIATE). Without it, concurrent
// transactions wait in SQLite's busy handler, which polls with sleeps of
// up to 100 ms: the lock sits idle between a commit and the next poll, and
// an unlucky waiter can lose every race until its busy_timeout fails it.
// The gate queues them in Go, first come first served, and hands the lock
// on the moment a transaction ends. Other processes (the CLI) still meet
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

// BeginTx begins a transaction once the connection's pool lets it through
// the write gate; the transaction leaves it when it commits or rolls back.
func (c *cachingConn) BeginTx(ctx context.Context, opts driver.TxOptions) (driver.Tx, error) {
	if c.gate == nil {
		return c.sqliteConn.BeginTx(ctx, opts)
	}
	if err := c.gate.enter(ctx); err != nil {
		return nil, err
	}
	tx, err := c.sqliteConn.BeginTx(ctx, opts)
	if err != nil {
		c.gate.leave()
		return nil, err
	}
	return &gatedTx{Tx: tx, gate: c.gate}, nil
}

// gatedTx leaves its gate once, when it ends either way.
type gatedTx struct {
	driver.Tx
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
