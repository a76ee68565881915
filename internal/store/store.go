// Package store opens plugboard's database (embedded SQLite by default,
// PostgreSQL for production), wraps it in an ent client and migrates its
// schema.
package store

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync/atomic"
	"time"

	"entgo.io/ent/dialect"
	entsql "entgo.io/ent/dialect/sql"
	_ "github.com/jackc/pgx/v5/stdlib" // registers the "pgx" database/sql driver
	"go.opentelemetry.io/otel/trace"
	_ "modernc.org/sqlite" // registers the "sqlite" database/sql driver

	"github.com/plugboard/plugboard/ent"
	"github.com/plugboard/plugboard/ent/migrate"
	_ "github.com/plugboard/plugboard/ent/runtime" // schema hooks and defaults
)

// Default connection pool sizes.
const (
	// DefaultSQLiteMaxOpenConns bounds the SQLite pool. SQLite has one
	// writer at a time; with WAL, readers run alongside it, and writers
	// queue on busy_timeout rather than fail.
	DefaultSQLiteMaxOpenConns = 8
	// DefaultPostgresMaxOpenConns bounds the PostgreSQL pool of one replica.
	DefaultPostgresMaxOpenConns = 20
)

// migrateLockKey is the PostgreSQL advisory lock that serialises migrations
// of replicas starting at the same time.
const migrateLockKey int64 = 0x706c7567626f6172 // "plugboar"

// Store is an open database: the ent client, the database/sql pool under it
// and the ent dialect (dialect.SQLite or dialect.Postgres).
type Store struct {
	// Client is the ent client; with WithStatementCounter it counts statements.
	Client *ent.Client
	// DB is the underlying pool, for health checks and raw SQL.
	DB *sql.DB
	// Dialect is the ent dialect name: dialect.SQLite or dialect.Postgres.
	Dialect string

	drv         *entsql.Driver // uncounted driver, used by Migrate
	logger      *slog.Logger
	description string
}

// Option configures Open.
type Option func(*options)

type options struct {
	counter       *atomic.Int64
	maxOpenConns  int
	stmtCacheSize int
	tracer        trace.TracerProvider
}

// WithStmtCacheSize sets how many prepared statements each SQLite
// connection keeps (default DefaultStmtCacheSize); a negative n turns the
// cache off. PostgreSQL ignores it.
func WithStmtCacheSize(n int) Option {
	return func(o *options) { o.stmtCacheSize = n }
}

// WithStatementCounter makes the store's ent client add one to n for every
// SQL statement it runs, inside transactions too (see CountingDriver).
// Migrate's statements are not counted.
func WithStatementCounter(n *atomic.Int64) Option {
	return func(o *options) { o.counter = n }
}

// WithTracerProvider makes every statement of the store's ent client a span
// of tp (see TracingDriver). Nil leaves the driver unwrapped. Migrate's
// statements are not traced.
func WithTracerProvider(tp trace.TracerProvider) Option {
	return func(o *options) { o.tracer = tp }
}

// WithMaxOpenConns overrides the pool size (DefaultSQLiteMaxOpenConns or
// DefaultPostgresMaxOpenConns). In-memory SQLite always uses one connection.
func WithMaxOpenConns(n int) Option {
	return func(o *options) { o.maxOpenConns = n }
}

// Open opens the database named by databaseURL and checks that it answers:
//
//   - "" — embedded SQLite at <dataDir>/plugboard.db (dataDir created 0700);
//   - "sqlite:///abs/path.db", "sqlite://rel/path.db", "file:..." — SQLite;
//   - "postgres://..." or "postgresql://..." — PostgreSQL through pgx.
//
// SQLite connections use foreign_keys, WAL, busy_timeout(10000),
// synchronous(NORMAL) and immediate transactions. Errors and logs never
// contain the URL's password. Open does not migrate: call Migrate.
// A nil logger discards logs.
func Open(ctx context.Context, databaseURL, dataDir string, logger *slog.Logger, opts ...Option) (*Store, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	var o options
	for _, opt := range opts {
		opt(&o)
	}
	t, err := parseTarget(databaseURL, dataDir)
	if err != nil {
		return nil, fmt.Errorf("store: %w", err)
	}
	display := RedactURL(databaseURL)
	if t.path != "" {
		display = t.path
		if err := createSQLiteFile(t.path); err != nil {
			return nil, fmt.Errorf("store: %w", err)
		}
	}

	db, err := openDB(t, o.stmtCacheSize)
	if err != nil {
		return nil, redactErr(err, "open", databaseURL)
	}
	configurePool(db, t, o.maxOpenConns)
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return nil, redactErr(err, "connect to", display)
	}

	drv := entsql.OpenDB(t.dialect, db)
	var clientDrv dialect.Driver = drv
	if t.dialect == dialect.SQLite {
		clientDrv = newGatedDriver(drv)
	}
	if o.counter != nil {
		clientDrv = NewCountingDriver(clientDrv, o.counter)
	}
	if o.tracer != nil {
		clientDrv = NewTracingDriver(clientDrv, o.tracer, t.dialect)
	}
	logger.Info("database opened", "dialect", t.dialect, "database", display)
	return &Store{
		Client:      ent.NewClient(ent.Driver(clientDrv)),
		DB:          db,
		Dialect:     t.dialect,
		drv:         drv,
		logger:      logger,
		description: describe(t, display),
	}, nil
}

// Describe says which database the store is, for logs: "sqlite <path>",
// "sqlite in-memory" or "postgres <URL without its password>".
func (s *Store) Describe() string { return s.description }

func describe(t target, display string) string {
	switch {
	case t.dialect == dialect.Postgres:
		return "postgres " + display
	case t.memory:
		return "sqlite in-memory"
	default:
		return "sqlite " + display
	}
}

// createSQLiteFile creates the directory of an SQLite file (0700) and the
// file itself (0600) so that SQLite, which gives its -wal and -shm files the
// database file's mode, keeps everything private to the service's user.
func createSQLiteFile(path string) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return fmt.Errorf("create data directory: %w", err)
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return fmt.Errorf("create database file: %w", err)
	}
	return f.Close()
}

// openDB opens the pool of t; SQLite connections keep their prepared
// statements (see stmtCacheConnector) unless cacheSize < 0.
func openDB(t target, cacheSize int) (*sql.DB, error) {
	if t.dialect != dialect.SQLite || cacheSize < 0 {
		return sql.Open(t.driver, t.dsn)
	}
	c, err := newStmtCacheConnector(t.dsn, cacheSize)
	if err != nil {
		return nil, err
	}
	return sql.OpenDB(c), nil
}

func configurePool(db *sql.DB, t target, maxOpen int) {
	switch {
	case t.memory:
		// Every connection to a private in-memory database is a different
		// database, and shared cache fails with SQLITE_LOCKED instead of
		// waiting: use one connection and never let it go.
		db.SetMaxOpenConns(1)
		db.SetMaxIdleConns(1)
		db.SetConnMaxLifetime(0)
		db.SetConnMaxIdleTime(0)
	case t.dialect == dialect.SQLite:
		if maxOpen <= 0 {
			maxOpen = DefaultSQLiteMaxOpenConns
		}
		db.SetMaxOpenConns(maxOpen)
		db.SetMaxIdleConns(maxOpen)
		db.SetConnMaxLifetime(0)
		db.SetConnMaxIdleTime(0)
	default:
		if maxOpen <= 0 {
			maxOpen = DefaultPostgresMaxOpenConns
		}
		db.SetMaxOpenConns(maxOpen)
		db.SetMaxIdleConns(maxOpen) // reopening connections under load costs more than idle ones
		db.SetConnMaxLifetime(30 * time.Minute)
		db.SetConnMaxIdleTime(5 * time.Minute)
	}
}

// Migrate creates or updates the schema with ent's automatic migration.
// It is idempotent. On PostgreSQL it holds an advisory lock, so replicas
// starting together migrate one after the other.
func (s *Store) Migrate(ctx context.Context) (err error) {
	start := time.Now()
	if s.Dialect == dialect.Postgres {
		unlock, err := s.lockPostgres(ctx)
		if err != nil {
			return err
		}
		defer unlock()
	}
	if err := migrate.NewSchema(s.drv).Create(ctx); err != nil {
		return fmt.Errorf("store: migrate: %w", err)
	}
	if s.Dialect == dialect.SQLite {
		if err := s.analyzeSQLite(ctx); err != nil {
			return err
		}
	}
	s.logger.Info("database migrated", "dialect", s.Dialect, "took", time.Since(start).Round(time.Millisecond))
	return nil
}

// lockPostgres takes the migration advisory lock on a dedicated connection
// and returns the function that releases it.
func (s *Store) lockPostgres(ctx context.Context) (func(), error) {
	conn, err := s.DB.Conn(ctx)
	if err != nil {
		return nil, fmt.Errorf("store: migrate: %w", err)
	}
	if _, err := conn.ExecContext(ctx, "SELECT pg_advisory_lock($1)", migrateLockKey); err != nil {
		conn.Close()
		return nil, fmt.Errorf("store: migrate: take lock: %w", err)
	}
	return func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if _, err := conn.ExecContext(ctx, "SELECT pg_advisory_unlock($1)", migrateLockKey); err != nil {
			// Drop the connection: its session, and the lock, end with it.
			_ = conn.Raw(func(any) error { return driver.ErrBadConn })
			s.logger.Warn("releasing migration lock", "err", err)
		}
		conn.Close()
	}, nil
}

// Ping checks that the database answers.
func (s *Store) Ping(ctx context.Context) error {
	if err := s.DB.PingContext(ctx); err != nil {
		return fmt.Errorf("store: ping: %w", err)
	}
	return nil
}

// Close closes the ent client and the pool.
func (s *Store) Close() error {
	if err := s.Client.Close(); err != nil && !errors.Is(err, sql.ErrConnDone) {
		return fmt.Errorf("store: close: %w", err)
	}
	return nil
}
