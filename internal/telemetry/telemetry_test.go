package telemetry

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
)

// TestSetupOffWithoutEndpoint: no flag and no environment variable is no
// tracing at all.
func TestSetupOffWithoutEndpoint(t *testing.T) {
	t.Setenv(EndpointEnv, "")
	tr, err := Setup(context.Background(), "")
	if err != nil || tr != nil {
		t.Fatalf("Setup without an endpoint = %v, %v; want nil, nil", tr, err)
	}
	if err := tr.Shutdown(context.Background()); err != nil {
		t.Fatalf("Shutdown of no tracing: %v", err)
	}
}

// TestSetupFromEnvironment: OTEL_EXPORTER_OTLP_ENDPOINT turns tracing on,
// and plugins are told the same endpoint, as a URL.
func TestSetupFromEnvironment(t *testing.T) {
	t.Setenv(EndpointEnv, "127.0.0.1:4317")
	tr, err := Setup(context.Background(), "")
	if err != nil || tr == nil {
		t.Fatalf("Setup from the environment = %v, %v", tr, err)
	}
	defer tr.Shutdown(context.Background())
	if got, want := tr.PluginEnv(), "PLUGBOARD_PLUGIN_OTLP_ENDPOINT=http://127.0.0.1:4317"; got != want {
		t.Errorf("PluginEnv = %q, want %q", got, want)
	}
	tr2, err := Setup(context.Background(), "https://collector.example:4317")
	if err != nil {
		t.Fatal(err)
	}
	defer tr2.Shutdown(context.Background())
	if got := tr2.PluginEndpoint(); got != "https://collector.example:4317" {
		t.Errorf("the flag does not win over the environment: %q", got)
	}
}

// TestHTTPClientSpanHasNoQuery: a call through HTTPClient is a client
// span whose url.full has neither the query string nor user info.
func TestHTTPClientSpanHasNoQuery(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	defer srv.Close()
	mem := tracetest.NewInMemoryExporter()
	tp := NewProvider(sdktrace.WithSyncer(mem))
	tr := New(tp, "")
	ctx, parent := tr.Tracer().Start(context.Background(), "parent")
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, strings.Replace(srv.URL, "://", "://user:CANARYpw@", 1)+"/token?code=CANARYcode#frag", nil)
	res, err := tr.HTTPClient(nil).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	parent.End()
	spans := mem.GetSpans()
	if len(spans) != 2 {
		t.Fatalf("want the client span and its parent, got %d", len(spans))
	}
	client := spans[0]
	if client.Parent.SpanID() != parent.SpanContext().SpanID() {
		t.Error("the client span is not a child of the caller's span")
	}
	for _, kv := range client.Attributes {
		if strings.Contains(kv.Value.String(), "CANARY") {
			t.Errorf("attribute %s = %q carries a secret", kv.Key, kv.Value.String())
		}
		if kv.Key == "url.full" && kv.Value.AsString() != srv.URL+"/token" {
			t.Errorf("url.full = %q, want %q", kv.Value.AsString(), srv.URL+"/token")
		}
	}
	if res, ok := client.Resource.Set().Value("service.name"); !ok || res.AsString() != ServiceName {
		t.Errorf("service.name = %v", res)
	}
}
