//go:build unix

package pluginhost

import (
	"context"
	"io"
	"log/slog"
	"testing"
)

// benchHost starts a host with the faulty plugin, quiet logs and default
// timeouts.
func benchHost(b *testing.B) *Host {
	b.Helper()
	dir := pluginDir(b, "faulty")
	mustPin(b, dir)
	h := New(Config{Dir: dir, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	b.Cleanup(func() { _ = h.Close() })
	if err := h.Start(context.Background()); err != nil {
		b.Fatal(err)
	}
	if !h.Ready() {
		b.Fatalf("not ready: %+v", h.Plugins())
	}
	return h
}

// BenchmarkValidate is a full plugin call: routing, deadline, the SDK's
// conversions and the plugin's Validate over go-plugin's gRPC with mTLS.
func BenchmarkValidate(b *testing.B) {
	h := benchHost(b)
	ctx := context.Background()
	values := map[string]string{"mode": "ok", "secret": "0123456789abcdef"}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := h.Validate(ctx, echoType, values); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkPing is the bare gRPC health check over the same transport: the
// floor under BenchmarkValidate.
func BenchmarkPing(b *testing.B) {
	h := benchHost(b)
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if err := h.Ping(ctx, "faulty"); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkValidateParallel shows throughput with concurrent callers over
// the one connection.
func BenchmarkValidateParallel(b *testing.B) {
	h := benchHost(b)
	values := map[string]string{"mode": "ok"}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		ctx := context.Background()
		for pb.Next() {
			if _, err := h.Validate(ctx, echoType, values); err != nil {
				b.Error(err)
				return
			}
		}
	})
}
