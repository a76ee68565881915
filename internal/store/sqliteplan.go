package store

import (
	"context"
	"database/sql"
	"fmt"
)

// orgIndexBaseline is the sqlite_stat1 row given to an index on
// organization_id alone that ANALYZE left without one (its table is empty,
// or small at analysis_limit): a million rows, a million per organization.
// Without it the planner deems organization_id as selective as any other
// equality and may walk a whole organization's rows through that index,
// e.g. for saveCredential's holder lookup (connection_id = ? AND
// holder_key = ? AND NOT is_test AND organization_id = ?), instead of
// using the (connection_id, holder_key, is_test) index.
const orgIndexBaseline = "1000000 1000000"

// analyzeSQLite gathers planner statistics after a migration: ANALYZE with
// analysis_limit, the baseline row of every *_organization_id index without
// statistics, then ANALYZE sqlite_schema so the planner loads them. The
// pool's idle connections are closed afterwards so that new ones load the
// statistics (not with a single connection, e.g. an in-memory database).
func (s *Store) analyzeSQLite(ctx context.Context) error {
	conn, err := s.DB.Conn(ctx)
	if err != nil {
		return fmt.Errorf("store: analyze: %w", err)
	}
	err = analyzeConn(ctx, conn)
	conn.Close()
	if err != nil {
		return fmt.Errorf("store: analyze: %w", err)
	}
	if n := s.DB.Stats().MaxOpenConnections; n != 1 {
		idle := n
		if idle <= 0 {
			idle = DefaultSQLiteMaxOpenConns
		}
		s.DB.SetMaxIdleConns(0) // closes the idle connections
		s.DB.SetMaxIdleConns(idle)
	}
	return nil
}

func analyzeConn(ctx context.Context, conn *sql.Conn) error {
	for _, q := range []string{"PRAGMA analysis_limit=1000", "ANALYZE"} {
		if _, err := conn.ExecContext(ctx, q); err != nil {
			return err
		}
	}
	res, err := conn.ExecContext(ctx, `INSERT INTO sqlite_stat1 (tbl, idx, stat)
		SELECT tbl_name, name, ? FROM sqlite_schema
		WHERE type = 'index' AND name LIKE '%\_organization\_id' ESCAPE '\'
		AND name NOT IN (SELECT idx FROM sqlite_stat1 WHERE idx IS NOT NULL)`, orgIndexBaseline)
	if err != nil {
		return err
	}
	if n, err := res.RowsAffected(); err != nil || n == 0 {
		return err
	}
	_, err = conn.ExecContext(ctx, "ANALYZE sqlite_schema")
	return err
}
