//go:build unix

package pluginhost

import (
	"context"
	"io"
	"log/slog"
	"testing"
)

// benchHost starts a host with the named plugins (the faulty plugin when
// none are named), quiet logs and default timeouts.
func benchHost(b *testing.B, plugins ...string) *Host {
	b.Helper()
	if len(plugins) == 0 {
		plugins = []string{"faulty"}
	}
	dir := pluginDir(b, plugins...)
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

// asanaToken is a well-formed Asana personal access token (the plugin's
// placeholder); Validate finds nothing wrong with it.
const asanaToken = "2/1200000000000000/1200000000000001:0123456789abcdef0123456789abcdef"

// BenchmarkAsanaRoundTrip puts a real plugin call beside the bare gRPC
// unary call under it, in the same run and over the same go-plugin
// connection (gRPC with AutoMTLS over a Unix socket) to the bundled Asana
// plugin:
//
//   - validate: Host.Validate("asana.apiKey", ...): routing, the call
//     deadline, the SDK's conversions both ways and the plugin's checks
//     (declared pattern, required inputs);
//   - ping: Host.Ping(ctx, "asana"): a grpc.health.v1 Check through the
//     same Host.callCurrent path.
//
// Validate's cost over Ping is the ratio of the two ns/op.
//
//	go test ./internal/pluginhost -run '^$' -bench AsanaRoundTrip -count 6
func BenchmarkAsanaRoundTrip(b *testing.B) {
	h := benchHost(b, "asana")
	ctx := context.Background()
	values := map[string]string{"apiKey": asanaToken}
	resp, err := h.Validate(ctx, "asana.apiKey", values)
	if err != nil {
		b.Fatal(err)
	}
	if len(resp.Diagnostics) != 0 {
		b.Fatalf("the token should be valid: %+v", resp.Diagnostics)
	}
	b.Run("validate", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := h.Validate(ctx, "asana.apiKey", values); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("ping", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if err := h.Ping(ctx, "asana"); err != nil {
				b.Fatal(err)
			}
		}
	})
}
