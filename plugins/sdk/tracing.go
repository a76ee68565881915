package sdk

import (
	"context"
	"strings"
	"time"

	"github.com/hashicorp/go-plugin"
	"go.opentelemetry.io/contrib/instrumentation/google.golang.org/grpc/otelgrpc"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.40.0"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/grpc"
	"google.golang.org/grpc/stats"
)

// OTLPEndpointEnv names the environment variable in which a tracing host
// passes its OTLP gRPC endpoint (a URL such as http://collector:4317, or
// host:port for plain text) to the plugins it starts. A plugin whose host
// sets it exports the spans of its calls there, in the host's traces;
// without it a plugin traces nothing.
const OTLPEndpointEnv = "PLUGBOARD_PLUGIN_OTLP_ENDPOINT"

// tracerName is the instrumentation scope of the SDK's spans.
const tracerName = "github.com/plugboard/plugboard/plugins/sdk"

// pluginTracing is a plugin process's tracing: the provider exporting to
// the host's collector, or nothing when the host does not trace.
type pluginTracing struct {
	provider *sdktrace.TracerProvider
}

// startTracing builds the plugin's tracer provider when the host passed an
// endpoint in OTLPEndpointEnv; otherwise (and for old hosts) it returns a
// pluginTracing that traces nothing.
func startTracing(endpoint, name string) *pluginTracing {
	if endpoint == "" {
		return &pluginTracing{}
	}
	if !strings.Contains(endpoint, "://") {
		endpoint = "http://" + endpoint
	}
	// The exporter dials lazily, so a collector that is down costs the
	// plugin dropped spans, never a failed start.
	exp, err := otlptracegrpc.New(context.Background(), otlptracegrpc.WithEndpointURL(endpoint))
	if err != nil {
		return &pluginTracing{}
	}
	res := resource.NewSchemaless(
		semconv.ServiceName("plugboard-plugin-"+name),
		attribute.String("plugboard.plugin", name),
	)
	tp := sdktrace.NewTracerProvider(
		sdktrace.WithBatcher(exp, sdktrace.WithBatchTimeout(time.Second)),
		sdktrace.WithResource(res),
	)
	return &pluginTracing{provider: tp}
}

// tracer is the SDK's tracer, or nil when the plugin does not trace.
func (t *pluginTracing) tracer() trace.Tracer {
	if t.provider == nil {
		return nil
	}
	return t.provider.Tracer(tracerName)
}

// grpcServer returns go-plugin's server factory: the default one, with an
// otelgrpc stats handler that joins the host's trace (W3C trace context in
// the gRPC metadata) when tracing is on.
func (t *pluginTracing) grpcServer() func([]grpc.ServerOption) *grpc.Server {
	if t.provider == nil {
		return plugin.DefaultGRPCServer
	}
	h := otelgrpc.NewServerHandler(
		otelgrpc.WithTracerProvider(t.provider),
		otelgrpc.WithPropagators(propagation.TraceContext{}),
		otelgrpc.WithFilter(providerCallsOnly),
	)
	return func(opts []grpc.ServerOption) *grpc.Server {
		return plugin.DefaultGRPCServer(append(opts, grpc.StatsHandler(h)))
	}
}

// providerCallsOnly traces the calls of the plugboard service, not
// go-plugin's own (stdio, broker, controller, health).
func providerCallsOnly(info *stats.RPCTagInfo) bool {
	return strings.HasPrefix(info.FullMethodName, "/plugboard.v1.Provider/")
}

// shutdown flushes the spans not yet exported.
func (t *pluginTracing) shutdown() {
	if t.provider == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = t.provider.Shutdown(ctx)
}

// startSpan starts the span of one dispatched call ("plugin.Validate",
// say) with the connection type key, never a value: values hold secrets.
// With no tracer it returns ctx and a no-op end.
func startSpan(ctx context.Context, tr trace.Tracer, method, typeKey string) (context.Context, func(error)) {
	if tr == nil {
		return ctx, func(error) {}
	}
	ctx, span := tr.Start(ctx, "plugin."+method, trace.WithAttributes(attribute.String("plugboard.type_key", typeKey)))
	return ctx, func(err error) {
		if err != nil {
			// The error's text comes from the provider and may quote
			// values: record that it failed, not what it said.
			span.SetStatus(codes.Error, method+" failed")
		}
		span.End()
	}
}
