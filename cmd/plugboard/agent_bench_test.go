package main

import (
	"context"
	"os"
	"slices"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// BenchmarkTunnelPostgres: the p50 of `SELECT 1` through the tunnel to the
// PostgreSQL in the test namespace (a real plugboard agent process inside
// it), beside the same query on the host's own PostgreSQL
// (PLUGBOARD_TEST_POSTGRES_URL, the same PostgreSQL 15 binaries) over
// loopback.
//
//	go test ./cmd/plugboard -run '^$' -bench TunnelPostgres -benchtime 3000x -count 3
func BenchmarkTunnelPostgres(b *testing.B) {
	r := newAgentRig(b)
	r.start(b, agentToken)
	r.waitStatus(b, true)
	ctx := context.Background()
	b.Run("tunnel", func(b *testing.B) {
		c, f, err := r.connect(ctx)
		if err != nil {
			b.Fatal(err)
		}
		defer f.Close()
		defer c.Close(ctx)
		benchSelect(b, c)
	})
	b.Run("direct", func(b *testing.B) {
		url := os.Getenv("PLUGBOARD_TEST_POSTGRES_URL")
		if url == "" {
			b.Skip("PLUGBOARD_TEST_POSTGRES_URL is not set")
		}
		c, err := pgx.Connect(ctx, url)
		if err != nil {
			b.Fatal(err)
		}
		defer c.Close(ctx)
		benchSelect(b, c)
	})
}

func benchSelect(b *testing.B, c *pgx.Conn) {
	ctx := context.Background()
	lat := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for range b.N {
		start := time.Now()
		var one int
		if err := c.QueryRow(ctx, "SELECT 1").Scan(&one); err != nil {
			b.Fatal(err)
		}
		lat = append(lat, time.Since(start))
	}
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)/2].Nanoseconds())/1e3, "p50-µs")
}
