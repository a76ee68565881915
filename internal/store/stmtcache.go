package store

import (
	"container/list"
	"context"
	"database/sql/driver"
	"errors"
	"io"
	"reflect"

	"modernc.org/sqlite"
)

// DefaultStmtCacheSize is how many prepared statements each SQLite
// connection keeps.
const DefaultStmtCacheSize = 128

// stmtCacheConnector opens SQLite connections that keep their prepared
// statements: modernc.org/sqlite prepares every statement again on each
// Exec and Query, which is a large part of a short query's cost.
type stmtCacheConnector struct {
	driver.Connector
	size int
}

// newStmtCacheConnector returns a connector of dsn whose connections each
// keep up to size prepared statements (size <= 0: DefaultStmtCacheSize).
func newStmtCacheConnector(dsn string, size int) (driver.Connector, error) {
	c, err := sqlite.NewConnector(dsn)
	if err != nil {
		return nil, err
	}
	if size <= 0 {
		size = DefaultStmtCacheSize
	}
	return &stmtCacheConnector{Connector: c, size: size}, nil
}

// Connect opens a connection with an empty statement cache.
func (c *stmtCacheConnector) Connect(ctx context.Context) (driver.Conn, error) {
	conn, err := c.Connector.Connect(ctx)
	if err != nil {
		return nil, err
	}
	return newCachingConn(conn, c.size), nil
}

// sqliteConn is what the wrapped connection must offer.
type sqliteConn interface {
	driver.Conn
	driver.ConnBeginTx
	driver.ConnPrepareContext
	driver.ExecerContext
	driver.QueryerContext
}

// cachingConn is an SQLite connection with an LRU of prepared statements
// keyed by their SQL text. database/sql uses a connection from one
// goroutine at a time (rows and transactions included), so it needs no lock.
type cachingConn struct {
	sqliteConn
	size  int
	lru   *list.List // of *cachedStmt, most recently used first
	bySQL map[string]*list.Element
}

// cachedStmt is one prepared statement; busy while rows of it are open.
type cachedStmt struct {
	query string
	stmt  driver.Stmt
	busy  bool
}

type stmtRunner interface {
	driver.Stmt
	driver.StmtExecContext
	driver.StmtQueryContext
}

func newCachingConn(conn driver.Conn, size int) driver.Conn {
	sc, ok := conn.(sqliteConn)
	if !ok {
		return conn
	}
	return &cachingConn{sqliteConn: sc, size: size, lru: list.New(), bySQL: map[string]*list.Element{}}
}

// PrepareContext prepares a statement its caller owns and closes; it does
// not come from the cache.
func (c *cachingConn) PrepareContext(ctx context.Context, query string) (driver.Stmt, error) {
	return c.sqliteConn.PrepareContext(ctx, query)
}

// ExecContext runs query through its cached statement (preparing and caching
// it on a miss); a busy statement's query runs unprepared.
func (c *cachingConn) ExecContext(ctx context.Context, query string, args []driver.NamedValue) (driver.Result, error) {
	cs, err := c.get(ctx, query)
	if err != nil || cs == nil {
		if err != nil && !errors.Is(err, errNotCacheable) {
			return nil, err
		}
		return c.sqliteConn.ExecContext(ctx, query, args)
	}
	res, err := cs.stmt.(stmtRunner).ExecContext(ctx, args)
	if err != nil {
		c.drop(cs)
	}
	return res, err
}

// QueryContext runs query through its cached statement; the statement is
// busy until the rows are closed.
func (c *cachingConn) QueryContext(ctx context.Context, query string, args []driver.NamedValue) (driver.Rows, error) {
	cs, err := c.get(ctx, query)
	if err != nil || cs == nil {
		if err != nil && !errors.Is(err, errNotCacheable) {
			return nil, err
		}
		return c.sqliteConn.QueryContext(ctx, query, args)
	}
	rows, err := cs.stmt.(stmtRunner).QueryContext(ctx, args)
	if err != nil {
		c.drop(cs)
		return nil, err
	}
	cs.busy = true
	return &cachedRows{Rows: rows, conn: c, cs: cs}, nil
}

var errNotCacheable = errors.New("statement not cacheable")

// get returns the cached statement of query, preparing it on a miss; nil
// when the cached one is busy.
func (c *cachingConn) get(ctx context.Context, query string) (*cachedStmt, error) {
	if e, ok := c.bySQL[query]; ok {
		cs := e.Value.(*cachedStmt)
		if cs.busy {
			return nil, nil
		}
		c.lru.MoveToFront(e)
		return cs, nil
	}
	st, err := c.sqliteConn.PrepareContext(ctx, query)
	if err != nil {
		return nil, err
	}
	if _, ok := st.(stmtRunner); !ok {
		st.Close()
		return nil, errNotCacheable
	}
	cs := &cachedStmt{query: query, stmt: st}
	c.bySQL[query] = c.lru.PushFront(cs)
	c.evict()
	return cs, nil
}

// evict closes the least recently used statements that are not busy until
// the cache holds at most size.
func (c *cachingConn) evict() {
	for e := c.lru.Back(); e != nil && c.lru.Len() > c.size; {
		prev := e.Prev()
		if cs := e.Value.(*cachedStmt); !cs.busy {
			c.drop(cs)
		}
		e = prev
	}
}

// drop removes cs from the cache and closes it, or lets its rows close it
// when it is busy.
func (c *cachingConn) drop(cs *cachedStmt) {
	if e, ok := c.bySQL[cs.query]; ok && e.Value == cs {
		c.lru.Remove(e)
		delete(c.bySQL, cs.query)
	}
	if !cs.busy {
		cs.stmt.Close()
	}
}

// cached reports whether cs is still in the cache.
func (c *cachingConn) cached(cs *cachedStmt) bool {
	e, ok := c.bySQL[cs.query]
	return ok && e.Value == cs
}

// Close closes every cached statement, then the connection.
func (c *cachingConn) Close() error {
	for e := c.lru.Front(); e != nil; e = e.Next() {
		e.Value.(*cachedStmt).stmt.Close()
	}
	c.lru.Init()
	clear(c.bySQL)
	return c.sqliteConn.Close()
}

// ResetSession and IsValid pass through to the SQLite connection.
func (c *cachingConn) ResetSession(ctx context.Context) error {
	if r, ok := c.sqliteConn.(driver.SessionResetter); ok {
		return r.ResetSession(ctx)
	}
	return nil
}

// IsValid reports whether the SQLite connection may go back to the pool.
func (c *cachingConn) IsValid() bool {
	if v, ok := c.sqliteConn.(driver.Validator); ok {
		return v.IsValid()
	}
	return true
}

// Ping checks the SQLite connection.
func (c *cachingConn) Ping(ctx context.Context) error {
	if p, ok := c.sqliteConn.(driver.Pinger); ok {
		return p.Ping(ctx)
	}
	return nil
}

// cachedRows are the rows of a cached statement: closing them frees the
// statement for the next query, or closes it when it left the cache.
type cachedRows struct {
	driver.Rows
	conn   *cachingConn
	cs     *cachedStmt
	failed bool
}

func (r *cachedRows) Next(dest []driver.Value) error {
	err := r.Rows.Next(dest)
	if err != nil && err != io.EOF {
		r.failed = true
	}
	return err
}

func (r *cachedRows) Close() error {
	err := r.Rows.Close()
	cs := r.cs
	if cs == nil {
		return err
	}
	r.cs = nil
	cs.busy = false
	switch {
	case !r.conn.cached(cs):
		cs.stmt.Close() // evicted or dropped while busy
	case r.failed || err != nil:
		r.conn.drop(cs)
	default:
		r.conn.evict()
	}
	return err
}

// columnTyper is the column information SQLite's rows give.
type columnTyper interface {
	driver.RowsColumnTypeDatabaseTypeName
	driver.RowsColumnTypeLength
	driver.RowsColumnTypeNullable
	driver.RowsColumnTypePrecisionScale
	driver.RowsColumnTypeScanType
}

// ColumnTypeDatabaseTypeName passes through to SQLite's rows.
func (r *cachedRows) ColumnTypeDatabaseTypeName(i int) string {
	if t, ok := r.Rows.(columnTyper); ok {
		return t.ColumnTypeDatabaseTypeName(i)
	}
	return ""
}

// ColumnTypeLength passes through to SQLite's rows.
func (r *cachedRows) ColumnTypeLength(i int) (int64, bool) {
	if t, ok := r.Rows.(columnTyper); ok {
		return t.ColumnTypeLength(i)
	}
	return 0, false
}

// ColumnTypeNullable passes through to SQLite's rows.
func (r *cachedRows) ColumnTypeNullable(i int) (bool, bool) {
	if t, ok := r.Rows.(columnTyper); ok {
		return t.ColumnTypeNullable(i)
	}
	return false, false
}

// ColumnTypePrecisionScale passes through to SQLite's rows.
func (r *cachedRows) ColumnTypePrecisionScale(i int) (int64, int64, bool) {
	if t, ok := r.Rows.(columnTyper); ok {
		return t.ColumnTypePrecisionScale(i)
	}
	return 0, 0, false
}

// ColumnTypeScanType passes through to SQLite's rows.
func (r *cachedRows) ColumnTypeScanType(i int) reflect.Type {
	if t, ok := r.Rows.(columnTyper); ok {
		return t.ColumnTypeScanType(i)
	}
	return reflect.TypeFor[any]()
}

var (
	_ columnTyper               = (*cachedRows)(nil)
	_ driver.Connector          = (*stmtCacheConnector)(nil)
	_ driver.ExecerContext      = (*cachingConn)(nil)
	_ driver.QueryerContext     = (*cachingConn)(nil)
	_ driver.ConnPrepareContext = (*cachingConn)(nil)
	_ driver.SessionResetter    = (*cachingConn)(nil)
	_ driver.Validator          = (*cachingConn)(nil)
	_ driver.Pinger             = (*cachingConn)(nil)
)
