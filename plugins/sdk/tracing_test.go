package sdk

import (
	"context"
	"errors"
	"testing"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"google.golang.org/grpc/stats"
)

// TestNoTracingWithoutEndpoint: a plugin whose host does not trace (or an
// old host) makes no span and serves with go-plugin's default server.
func TestNoTracingWithoutEndpoint(t *testing.T) {
	tr := startTracing("", "p")
	if tr.tracer() != nil {
		t.Fatal("a tracer without an endpoint")
	}
	ctx := context.Background()
	got, end := startSpan(ctx, tr.tracer(), "Validate", "x.apiKey")
	end(nil)
	if got != ctx {
		t.Error("startSpan without a tracer changed the context")
	}
	tr.shutdown()
}

// TestDispatchSpan: a traced call is a span named plugin.<method> with the
// type key, and a failure sets the status without the error's text.
func TestDispatchSpan(t *testing.T) {
	mem := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(mem))
	_, end := startSpan(context.Background(), tp.Tracer(tracerName), "Test", "x.apiKey")
	end(errors.New("401 for key CANARY"))
	spans := mem.GetSpans()
	if len(spans) != 1 || spans[0].Name != "plugin.Test" {
		t.Fatalf("spans: %v", spans)
	}
	s := spans[0]
	if len(s.Attributes) != 1 || s.Attributes[0].Value.AsString() != "x.apiKey" {
		t.Errorf("attributes: %v", s.Attributes)
	}
	if s.Status.Description != "Test failed" {
		t.Errorf("status: %+v", s.Status)
	}
}

func TestProviderCallsOnly(t *testing.T) {
	for method, want := range map[string]bool{
		"/plugboard.v1.Provider/Validate": true,
		"/grpc.health.v1.Health/Check":    false,
		"/plugin.GRPCStdio/StreamStdio":   false,
	} {
		if got := providerCallsOnly(&stats.RPCTagInfo{FullMethodName: method}); got != want {
			t.Errorf("%s traced: %v, want %v", method, got, want)
		}
	}
}
