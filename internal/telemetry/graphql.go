package telemetry

import (
	"context"
	"strings"

	"github.com/99designs/gqlgen/graphql"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"
)

// GraphQL returns the gqlgen extension that makes a span of every
// operation ("graphql.mutation saveCredential") and of every resolver that
// is not a plain field read. Spans carry the operation's type and name and
// the resolvers' object and field names: never the document, a variable or
// an argument, which may hold secrets.
func (t *Tracing) GraphQL() graphql.HandlerExtension {
	return graphQLTracer{tracer: t.Tracer()}
}

type graphQLTracer struct {
	tracer trace.Tracer
}

var (
	_ graphql.HandlerExtension    = graphQLTracer{}
	_ graphql.ResponseInterceptor = graphQLTracer{}
	_ graphql.FieldInterceptor    = graphQLTracer{}
)

func (graphQLTracer) ExtensionName() string { return "OpenTelemetry" }

func (graphQLTracer) Validate(graphql.ExecutableSchema) error { return nil }

// InterceptResponse spans one response: the whole of a query or mutation,
// one event of a subscription.
func (g graphQLTracer) InterceptResponse(ctx context.Context, next graphql.ResponseHandler) *graphql.Response {
	if !graphql.HasOperationContext(ctx) {
		return next(ctx)
	}
	opType, name := operationName(graphql.GetOperationContext(ctx))
	ctx, span := g.tracer.Start(ctx, "graphql."+opType+" "+name, trace.WithAttributes(
		attribute.String("graphql.operation.type", opType),
		attribute.String("graphql.operation.name", name),
	))
	defer span.End()
	resp := next(ctx)
	if resp != nil && len(resp.Errors) > 0 {
		span.SetStatus(codes.Error, "")
		span.SetAttributes(attribute.Int("graphql.errors", len(resp.Errors)))
	}
	return resp
}

// operationName is the operation's type and its name, or the name of its
// first field when the client gave none.
func operationName(oc *graphql.OperationContext) (opType, name string) {
	op := oc.Operation
	if op == nil {
		return "operation", "unknown"
	}
	opType = string(op.Operation)
	if op.Name != "" {
		return opType, op.Name
	}
	var fields []string
	for _, f := range graphql.CollectFields(oc, op.SelectionSet, nil) {
		fields = append(fields, f.Name)
	}
	if len(fields) == 0 {
		return opType, "anonymous"
	}
	return opType, strings.Join(fields, ",")
}

// InterceptField spans resolvers and methods; plain field reads pass.
func (g graphQLTracer) InterceptField(ctx context.Context, next graphql.Resolver) (any, error) {
	fc := graphql.GetFieldContext(ctx)
	if fc == nil || !(fc.IsResolver || fc.IsMethod) {
		return next(ctx)
	}
	ctx, span := g.tracer.Start(ctx, "graphql.resolve "+fc.Object+"."+fc.Field.Name, trace.WithAttributes(
		attribute.String("graphql.field.object", fc.Object),
		attribute.String("graphql.field.name", fc.Field.Name),
	))
	defer span.End()
	res, err := next(ctx)
	if err != nil {
		// Resolver errors reach the client through the error presenter;
		// the span says only that the field failed.
		span.SetStatus(codes.Error, "")
	}
	return res, err
}
