// Package telemetry is plugboard's OpenTelemetry tracing: a tracer
// provider exporting over OTLP/gRPC when an endpoint is configured, and the
// wrappers that make spans of HTTP requests, GraphQL operations and
// resolvers, SQL statements, plugin calls and calls to OAuth 2.0 providers.
//
// Tracing is off unless an endpoint is given: Setup then returns a nil
// *Tracing and callers wrap nothing. Spans never carry a secret: no
// GraphQL variable or argument, no SQL argument, no query string of a URL,
// no error text that may quote a value.
package telemetry

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"runtime/debug"
	"strings"

	"go.opentelemetry.io/contrib/instrumentation/google.golang.org/grpc/otelgrpc"
	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.40.0"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/grpc/stats"

	"github.com/plugboard/plugboard/plugins/sdk"
)

// EndpointEnv is the standard OpenTelemetry variable read when no endpoint
// is given explicitly.
const EndpointEnv = "OTEL_EXPORTER_OTLP_ENDPOINT"

// ServiceName is the service.name of plugboard's spans.
const ServiceName = "plugboard"

// ScopeName is the instrumentation scope of plugboard's own spans.
const ScopeName = "github.com/plugboard/plugboard"

// Tracing is an installed tracer provider and what plugboard's parts need
// from it. A nil *Tracing means tracing is off.
type Tracing struct {
	provider       trace.TracerProvider
	pluginEndpoint string
	shutdown       func(context.Context) error
}

// Setup returns the tracing of a server: exporting over OTLP/gRPC to
// endpoint, or to $OTEL_EXPORTER_OTLP_ENDPOINT when endpoint is empty. With
// neither it returns nil: tracing off. The endpoint is a URL
// (http://collector:4317 for plain text, https:// for TLS) or host:port
// (plain text). Plugins started by the server export to the same endpoint.
func Setup(ctx context.Context, endpoint string) (*Tracing, error) {
	if endpoint == "" {
		endpoint = os.Getenv(EndpointEnv)
	}
	if endpoint == "" {
		return nil, nil
	}
	endpoint = normalizeEndpoint(endpoint)
	if _, err := url.Parse(endpoint); err != nil {
		return nil, errors.New("telemetry: the OTLP endpoint is not a valid URL")
	}
	exp, err := otlptracegrpc.New(ctx, otlptracegrpc.WithEndpointURL(endpoint))
	if err != nil {
		return nil, fmt.Errorf("telemetry: OTLP exporter: %w", err)
	}
	tp := NewProvider(sdktrace.WithBatcher(exp))
	return &Tracing{provider: tp, pluginEndpoint: endpoint, shutdown: tp.Shutdown}, nil
}

// normalizeEndpoint makes host:port a plain-text URL.
func normalizeEndpoint(endpoint string) string {
	if strings.Contains(endpoint, "://") {
		return endpoint
	}
	return "http://" + endpoint
}

// NewProvider returns an SDK tracer provider with plugboard's resource
// (service name and version) and opts (an exporter, say).
func NewProvider(opts ...sdktrace.TracerProviderOption) *sdktrace.TracerProvider {
	res := resource.NewSchemaless(
		semconv.ServiceName(ServiceName),
		semconv.ServiceVersion(Version()),
	)
	all := append([]sdktrace.TracerProviderOption{sdktrace.WithResource(res)}, opts...)
	return sdktrace.NewTracerProvider(all...)
}

// New wraps a provider the caller owns (tests, benchmarks); pluginEndpoint,
// when not empty, is passed to plugin processes. Shutdown does not shut tp
// down.
func New(tp trace.TracerProvider, pluginEndpoint string) *Tracing {
	if pluginEndpoint != "" {
		pluginEndpoint = normalizeEndpoint(pluginEndpoint)
	}
	return &Tracing{provider: tp, pluginEndpoint: pluginEndpoint}
}

// Version is plugboard's module version from the build information.
func Version() string {
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" {
		return bi.Main.Version
	}
	return "(devel)"
}

// Provider is the tracer provider.
func (t *Tracing) Provider() trace.TracerProvider { return t.provider }

// Tracer is plugboard's tracer.
func (t *Tracing) Tracer() trace.Tracer { return t.provider.Tracer(ScopeName) }

// PluginEndpoint is the OTLP endpoint plugin processes export to, or "".
func (t *Tracing) PluginEndpoint() string { return t.pluginEndpoint }

// PluginEnv is the environment entry that tells a plugin process where to
// export its spans, or "" when plugins should not trace.
func (t *Tracing) PluginEnv() string {
	if t.pluginEndpoint == "" {
		return ""
	}
	return sdk.OTLPEndpointEnv + "=" + t.pluginEndpoint
}

// Shutdown flushes the spans not yet exported and stops the exporter.
func (t *Tracing) Shutdown(ctx context.Context) error {
	if t == nil || t.shutdown == nil {
		return nil
	}
	return t.shutdown(ctx)
}

// propagator is W3C trace context only (traceparent and tracestate).
var propagator = propagation.TraceContext{}

// HTTPHandler makes a server span of every request to h, joining the
// caller's trace from its traceparent header. The span carries the path,
// never the query string.
func (t *Tracing) HTTPHandler(h http.Handler) http.Handler {
	return otelhttp.NewHandler(h, "plugboard",
		otelhttp.WithTracerProvider(t.provider),
		otelhttp.WithPropagators(propagator),
		otelhttp.WithSpanNameFormatter(serverSpanName),
	)
}

// serverSpanName is "METHOD route": the ServeMux pattern once the mux has
// routed the request ("GET /runtime/v1/credentials/{id}", not every id),
// the path before.
func serverSpanName(_ string, r *http.Request) string {
	route := r.Pattern
	if route == "" {
		route = r.URL.Path
	}
	if strings.HasPrefix(route, r.Method+" ") {
		return route
	}
	return r.Method + " " + route
}

// HTTPClient returns a copy of c (nil: a client over http.DefaultTransport)
// whose calls are client spans, children of the caller's span. The spans'
// url.full has no query string.
func (t *Tracing) HTTPClient(c *http.Client) *http.Client {
	out := &http.Client{}
	if c != nil {
		*out = *c
	}
	base := out.Transport
	if base == nil {
		base = http.DefaultTransport
	}
	out.Transport = otelhttp.NewTransport(stripURL{base},
		otelhttp.WithTracerProvider(t.provider),
		otelhttp.WithPropagators(propagator),
	)
	return out
}

// GRPCClientHandler is the stats handler of the host's connections to
// plugins: a client span of every plugboard call, whose trace context goes
// to the plugin in the gRPC metadata. go-plugin's own calls (stdio,
// broker, controller, health checks) are not traced.
func (t *Tracing) GRPCClientHandler() stats.Handler {
	return otelgrpc.NewClientHandler(
		otelgrpc.WithTracerProvider(t.provider),
		otelgrpc.WithPropagators(propagator),
		otelgrpc.WithFilter(func(info *stats.RPCTagInfo) bool {
			return strings.HasPrefix(info.FullMethodName, "/plugboard.v1.Provider/")
		}),
	)
}

// stripURL sits under otelhttp's transport: it replaces the span's
// url.full, which otelhttp records whole, by the URL without its query
// string, fragment and user info (codes, tokens, signatures).
type stripURL struct{ base http.RoundTripper }

func (s stripURL) RoundTrip(r *http.Request) (*http.Response, error) {
	if span := trace.SpanFromContext(r.Context()); span.IsRecording() && r.URL != nil {
		u := *r.URL
		u.User, u.RawQuery, u.ForceQuery, u.Fragment, u.RawFragment = nil, "", false, "", ""
		span.SetAttributes(semconv.URLFull(u.String()))
	}
	return s.base.RoundTrip(r)
}

// StripQuery returns u without its query string and fragment.
func StripQuery(u string) string {
	if i := strings.IndexAny(u, "?#"); i >= 0 {
		return u[:i]
	}
	return u
}
