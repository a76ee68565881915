package onprem

import (
	"context"
	"io"
	"net"
	"slices"
	"testing"
	"time"
)

// BenchmarkTunnel compares the tunnel (TLS websocket, yamux, an in-process
// agent) with a direct connection to the same local TCP echo service:
// throughput (MB/s, 1 MiB writes) and p50 latency of 64-byte round trips;
// "relayed" is a stream another replica's hub relays through the one
// holding the session (one more TLS websocket hop).
//
//	go test -run '^$' -bench Tunnel -benchtime 2s -count 3 ./internal/onprem
func BenchmarkTunnel(b *testing.B) {
	target := echo(b)
	r, other, _ := relayPair(b, target)
	r.agent(b, AgentOptions{})
	r.waitConnected(b, true)
	dials := map[string]func() (net.Conn, error){
		"direct":  func() (net.Conn, error) { return net.Dial("tcp", target) },
		"tunnel":  func() (net.Conn, error) { return r.hub.Dial(context.Background(), 7, StreamInfo{Purpose: "bench"}) },
		"relayed": func() (net.Conn, error) { return other.Dial(context.Background(), 7, StreamInfo{Purpose: "bench"}) },
	}
	for _, name := range []string{"direct", "tunnel", "relayed"} {
		b.Run("throughput/"+name, func(b *testing.B) { benchThroughput(b, dials[name]) })
		b.Run("latency/"+name, func(b *testing.B) { benchLatency(b, dials[name]) })
	}
}

func benchThroughput(b *testing.B, dial func() (net.Conn, error)) {
	c, err := dial()
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	buf := make([]byte, 1<<20)
	b.SetBytes(int64(len(buf)))
	done := make(chan error, 1)
	go func() {
		_, err := io.CopyN(io.Discard, c, int64(b.N)*int64(len(buf)))
		done <- err
	}()
	b.ResetTimer()
	for range b.N {
		if _, err := c.Write(buf); err != nil {
			b.Fatal(err)
		}
	}
	if err := <-done; err != nil {
		b.Fatal(err)
	}
}

func benchLatency(b *testing.B, dial func() (net.Conn, error)) {
	c, err := dial()
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	msg := make([]byte, 64)
	lat := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for range b.N {
		start := time.Now()
		if _, err := c.Write(msg); err != nil {
			b.Fatal(err)
		}
		if _, err := io.ReadFull(c, msg); err != nil {
			b.Fatal(err)
		}
		lat = append(lat, time.Since(start))
	}
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "p50-µs")
}
