package store

import (
	"context"
	"database/sql"
	"strings"

	"entgo.io/ent/dialect"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"
)

// tracerName is the instrumentation scope of the statement spans.
const tracerName = "github.com/plugboard/plugboard/internal/store"

// TracingDriver wraps an ent driver and makes a client span of every
// statement (Exec, Query, ExecContext, QueryContext), inside transactions
// too, with db.system.name and the statement's text. The text has
// placeholders; the arguments, which may be sealed secrets or tokens'
// hashes, are never recorded, nor are error texts, which may quote them.
type TracingDriver struct {
	dialect.Driver
	tracer trace.Tracer
	system string
}

// NewTracingDriver returns drv making spans with tp's tracer; dialectName
// is the ent dialect (dialect.SQLite or dialect.Postgres).
func NewTracingDriver(drv dialect.Driver, tp trace.TracerProvider, dialectName string) *TracingDriver {
	system := "sqlite"
	if dialectName == dialect.Postgres {
		system = "postgresql"
	}
	return &TracingDriver{Driver: drv, tracer: tp.Tracer(tracerName), system: system}
}

// statementSpan starts the span of one statement; end records failure.
func statementSpan(ctx context.Context, tr trace.Tracer, system, query string) (context.Context, func(error)) {
	op := query
	if i := strings.IndexAny(op, " \t\n"); i > 0 {
		op = op[:i]
	}
	op = strings.ToUpper(op)
	ctx, span := tr.Start(ctx, op, trace.WithSpanKind(trace.SpanKindClient), trace.WithAttributes(
		attribute.String("db.system.name", system),
		attribute.String("db.system", system),
		attribute.String("db.operation.name", op),
		attribute.String("db.query.text", query),
	))
	return ctx, func(err error) {
		if err != nil && err != sql.ErrNoRows {
			span.SetStatus(codes.Error, "statement failed")
		}
		span.End()
	}
}

// Exec runs a statement in a span.
func (d *TracingDriver) Exec(ctx context.Context, query string, args, v any) (err error) {
	ctx, end := statementSpan(ctx, d.tracer, d.system, query)
	defer func() { end(err) }()
	return d.Driver.Exec(ctx, query, args, v)
}

// Query runs a query in a span.
func (d *TracingDriver) Query(ctx context.Context, query string, args, v any) (err error) {
	ctx, end := statementSpan(ctx, d.tracer, d.system, query)
	defer func() { end(err) }()
	return d.Driver.Query(ctx, query, args, v)
}

// ExecContext runs a statement on the underlying database/sql driver in a
// span.
func (d *TracingDriver) ExecContext(ctx context.Context, query string, args ...any) (_ sql.Result, err error) {
	ctx, end := statementSpan(ctx, d.tracer, d.system, query)
	defer func() { end(err) }()
	return execContext(ctx, d.Driver, query, args)
}

// QueryContext runs a query on the underlying database/sql driver in a
// span.
func (d *TracingDriver) QueryContext(ctx context.Context, query string, args ...any) (_ *sql.Rows, err error) {
	ctx, end := statementSpan(ctx, d.tracer, d.system, query)
	defer func() { end(err) }()
	return queryContext(ctx, d.Driver, query, args)
}

// Tx starts a transaction whose statements are spans.
func (d *TracingDriver) Tx(ctx context.Context) (dialect.Tx, error) {
	tx, err := d.Driver.Tx(ctx)
	if err != nil {
		return nil, err
	}
	return &tracingTx{Tx: tx, d: d}, nil
}

// BeginTx starts a transaction with options whose statements are spans.
func (d *TracingDriver) BeginTx(ctx context.Context, opts *sql.TxOptions) (dialect.Tx, error) {
	tx, err := beginTx(ctx, d.Driver, opts)
	if err != nil {
		return nil, err
	}
	return &tracingTx{Tx: tx, d: d}, nil
}

// tracingTx makes spans of the statements of one transaction.
type tracingTx struct {
	dialect.Tx
	d *TracingDriver
}

func (t *tracingTx) Exec(ctx context.Context, query string, args, v any) (err error) {
	ctx, end := statementSpan(ctx, t.d.tracer, t.d.system, query)
	defer func() { end(err) }()
	return t.Tx.Exec(ctx, query, args, v)
}

func (t *tracingTx) Query(ctx context.Context, query string, args, v any) (err error) {
	ctx, end := statementSpan(ctx, t.d.tracer, t.d.system, query)
	defer func() { end(err) }()
	return t.Tx.Query(ctx, query, args, v)
}

func (t *tracingTx) ExecContext(ctx context.Context, query string, args ...any) (_ sql.Result, err error) {
	ctx, end := statementSpan(ctx, t.d.tracer, t.d.system, query)
	defer func() { end(err) }()
	return execContext(ctx, t.Tx, query, args)
}

func (t *tracingTx) QueryContext(ctx context.Context, query string, args ...any) (_ *sql.Rows, err error) {
	ctx, end := statementSpan(ctx, t.d.tracer, t.d.system, query)
	defer func() { end(err) }()
	return queryContext(ctx, t.Tx, query, args)
}
