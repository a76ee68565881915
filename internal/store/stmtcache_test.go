package store

import (
	"context"
	"database/sql"
	"fmt"
	"slices"
	"testing"
)

// cacheConn opens an SQLite store with the statement cache and returns one
// connection of it with a table t(id, name).
func cacheConn(t *testing.T) *sql.Conn {
	t.Helper()
	ctx := context.Background()
	s, err := Open(ctx, "", t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	conn, err := s.DB.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	mustExec(t, conn, "CREATE TABLE t (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE)")
	for i := 1; i <= 5; i++ {
		mustExec(t, conn, "INSERT INTO t (id, name) VALUES (?, ?)", i, fmt.Sprint("n", i))
	}
	return conn
}

func mustExec(t *testing.T, conn *sql.Conn, query string, args ...any) {
	t.Helper()
	if _, err := conn.ExecContext(context.Background(), query, args...); err != nil {
		t.Fatalf("%s: %v", query, err)
	}
}

// cacheState returns the SQL texts in conn's cache, most recent first, and
// the statement cached for query (nil if none).
func cacheState(t *testing.T, conn *sql.Conn, query string) (queries []string, st any) {
	t.Helper()
	err := conn.Raw(func(dc any) error {
		c, ok := dc.(*cachingConn)
		if !ok {
			return fmt.Errorf("connection is %T, not a caching one", dc)
		}
		for e := c.lru.Front(); e != nil; e = e.Next() {
			queries = append(queries, e.Value.(*cachedStmt).query)
		}
		if e, ok := c.bySQL[query]; ok {
			st = e.Value.(*cachedStmt).stmt
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return queries, st
}

func nameOf(t *testing.T, conn *sql.Conn, id int) string {
	t.Helper()
	var name string
	if err := conn.QueryRowContext(context.Background(), "SELECT name FROM t WHERE id = ?", id).Scan(&name); err != nil {
		t.Fatalf("id %d: %v", id, err)
	}
	return name
}

func TestStmtCacheHit(t *testing.T) {
	conn := cacheConn(t)
	const q = "SELECT name FROM t WHERE id = ?"
	if got := nameOf(t, conn, 2); got != "n2" {
		t.Fatalf("first: %q", got)
	}
	_, first := cacheState(t, conn, q)
	if first == nil {
		t.Fatal("query not cached")
	}
	if got := nameOf(t, conn, 4); got != "n4" {
		t.Fatalf("hit: %q", got)
	}
	if _, again := cacheState(t, conn, q); again != first {
		t.Fatal("second run prepared the statement again")
	}
	// An Exec through the cache, with text arguments, then the cached read.
	const upd = "UPDATE t SET name = ? WHERE id = ?"
	mustExec(t, conn, upd, "renamed", 4)
	mustExec(t, conn, upd, "renamed3", 3)
	if got := nameOf(t, conn, 4) + nameOf(t, conn, 3); got != "renamedrenamed3" {
		t.Fatalf("after update: %q", got)
	}
}

func TestStmtCacheBusyStatement(t *testing.T) {
	ctx := context.Background()
	conn := cacheConn(t)
	const q = "SELECT id, name FROM t WHERE id >= ? ORDER BY id"
	rows, err := conn.QueryContext(ctx, q, 1)
	if err != nil {
		t.Fatal(err)
	}
	var outer, inner []string
	for rows.Next() {
		var id int
		var name string
		if err := rows.Scan(&id, &name); err != nil {
			t.Fatal(err)
		}
		outer = append(outer, name)
		if len(outer) > 5 {
			t.Fatalf("outer rows started over: %v", outer)
		}
		// The same SQL while its cached statement is iterating: it must run
		// apart and leave the outer rows where they were.
		var n string
		if err := conn.QueryRowContext(ctx, q, id).Scan(new(int), &n); err != nil {
			t.Fatal(err)
		}
		inner = append(inner, n)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	rows.Close()
	want := []string{"n1", "n2", "n3", "n4", "n5"}
	if !slices.Equal(outer, want) || !slices.Equal(inner, want) {
		t.Fatalf("outer %v, inner %v; want %v both", outer, inner, want)
	}
	// Free again: the next run uses the cached statement and starts over.
	_, st := cacheState(t, conn, q)
	var first string
	if err := conn.QueryRowContext(ctx, q, 1).Scan(new(int), &first); err != nil || first != "n1" {
		t.Fatalf("after busy: %q, %v", first, err)
	}
	if _, again := cacheState(t, conn, q); st == nil || again != st {
		t.Fatal("the statement left the cache while busy")
	}
}

func TestStmtCacheSchemaChange(t *testing.T) {
	ctx := context.Background()
	conn := cacheConn(t)
	const q = "SELECT * FROM t WHERE id = ?"
	columns := func() []string {
		rows, err := conn.QueryContext(ctx, q, 1)
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		cols, err := rows.Columns()
		if err != nil {
			t.Fatal(err)
		}
		if !rows.Next() {
			t.Fatalf("no row: %v", rows.Err())
		}
		vals := make([]any, len(cols))
		for i := range vals {
			vals[i] = new(any)
		}
		if err := rows.Scan(vals...); err != nil {
			t.Fatal(err)
		}
		return cols
	}
	if got := columns(); !slices.Equal(got, []string{"id", "name"}) {
		t.Fatalf("before: %v", got)
	}
	mustExec(t, conn, "ALTER TABLE t ADD COLUMN extra TEXT NOT NULL DEFAULT 'x'")
	if got := columns(); !slices.Equal(got, []string{"id", "name", "extra"}) {
		t.Fatalf("after ALTER: %v", got)
	}
	// Dropped table: the cached statement fails and leaves the cache.
	mustExec(t, conn, "DROP TABLE t")
	if _, err := conn.QueryContext(ctx, q, 1); err == nil {
		t.Fatal("query of a dropped table succeeded")
	}
	if _, st := cacheState(t, conn, q); st != nil {
		t.Fatal("failed statement still cached")
	}
	mustExec(t, conn, "CREATE TABLE t (id INTEGER PRIMARY KEY, other TEXT)")
	mustExec(t, conn, "INSERT INTO t VALUES (1, 'o')")
	if got := columns(); !slices.Equal(got, []string{"id", "other"}) {
		t.Fatalf("recreated: %v", got)
	}
}

func TestStmtCacheEviction(t *testing.T) {
	conn := cacheConn(t)
	query := func(i int) string { return fmt.Sprintf("SELECT name, %d FROM t WHERE id = ?", i) }
	check := func(i int) {
		t.Helper()
		var name string
		var n int
		err := conn.QueryRowContext(context.Background(), query(i), i%5+1).Scan(&name, &n)
		if err != nil || n != i || name != fmt.Sprint("n", i%5+1) {
			t.Fatalf("query %d: %q %d %v", i, name, n, err)
		}
	}
	for i := range DefaultStmtCacheSize + 72 {
		check(i)
	}
	queries, _ := cacheState(t, conn, "")
	if len(queries) != DefaultStmtCacheSize {
		t.Fatalf("cache holds %d statements, want %d", len(queries), DefaultStmtCacheSize)
	}
	if queries[0] != query(DefaultStmtCacheSize+71) || slices.Contains(queries, query(0)) {
		t.Fatalf("not least recently used first out: front %q", queries[0])
	}
	for i := range DefaultStmtCacheSize + 72 { // evicted and cached ones alike
		check(i)
	}
}

func TestStmtCacheTransactions(t *testing.T) {
	ctx := context.Background()
	conn := cacheConn(t)
	const ins = "INSERT INTO t (id, name) VALUES (?, ?)"
	tx, err := conn.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.ExecContext(ctx, ins, 10, "ten"); err != nil {
		t.Fatal(err)
	}
	if err := tx.Rollback(); err != nil {
		t.Fatal(err)
	}
	var n int
	if err := conn.QueryRowContext(ctx, "SELECT count(*) FROM t WHERE id = 10").Scan(&n); err != nil || n != 0 {
		t.Fatalf("after rollback: %d rows, %v", n, err)
	}
	tx, err = conn.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.ExecContext(ctx, ins, 10, "ten"); err != nil {
		t.Fatal(err)
	}
	// A failing statement (duplicate name) is dropped and the transaction
	// goes on.
	if _, err := tx.ExecContext(ctx, ins, 11, "ten"); err == nil {
		t.Fatal("duplicate name inserted")
	}
	if _, err := tx.ExecContext(ctx, ins, 11, "eleven"); err != nil {
		t.Fatal(err)
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	if got := nameOf(t, conn, 10) + nameOf(t, conn, 11); got != "teneleven" {
		t.Fatalf("after commit: %q", got)
	}
}
