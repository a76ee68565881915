package server_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/plugboard/plugboard/internal/auth"
	"github.com/plugboard/plugboard/internal/server"
	"github.com/plugboard/plugboard/internal/server/servertest"
	"github.com/plugboard/plugboard/internal/store"
	"github.com/plugboard/plugboard/internal/telemetry"
)

// Helpers shared by the benchmarks of this package. Nothing here runs in a
// plain `go test`: only benchmarks call it.

// bundledPlugins returns the plugins plugboard ships: those of
// servertest.Packages built from ./plugins (not the test-only "faulty").
func bundledPlugins() []string {
	var names []string
	for name, pkg := range servertest.Packages {
		if strings.HasPrefix(pkg, "./plugins/") {
			names = append(names, name)
		}
	}
	slices.Sort(names)
	return names
}

// benchEnv is a real plugboard serving its real handler on a loopback port.
type benchEnv struct {
	App        *server.App
	URL        string
	AdminToken string
}

// startBench starts plugboard like servertest.Start, with every bundled
// plugin, on databaseURL ("" is a fresh SQLite file), but logging as
// `plugboard serve` does without --dev (Info level; here into io.Discard).
// servertest.Start logs at Debug level into an in-memory buffer, one line
// per request, which would add a test-only cost to every request measured.
func startBench(b testing.TB, databaseURL string, opts ...store.Option) *benchEnv {
	b.Helper()
	return startBenchOptions(b, server.Options{DatabaseURL: databaseURL, StoreOptions: opts})
}

// startBenchOptions is startBench with more of server.Options: the data
// dir, plugin dir and logger are filled in.
func startBenchOptions(b testing.TB, o server.Options) *benchEnv {
	b.Helper()
	log := slog.New(slog.NewTextHandler(io.Discard, &slog.HandlerOptions{Level: slog.LevelInfo}))
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	o.DataDir, o.PluginDir, o.Logger = b.TempDir(), servertest.PluginDir(b, bundledPlugins()...), log
	if os.Getenv("PLUGBOARD_BENCH_TRACING") == "1" && o.Tracing == nil {
		// Tracing on, every span sampled and batched to an exporter that
		// discards: what tracing costs the server, without a collector.
		tp := telemetry.NewProvider(sdktrace.WithBatcher(tracetest.NewNoopExporter()))
		b.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
		o.Tracing = telemetry.New(tp, "")
	}
	app, err := server.Open(ctx, o)
	if err != nil {
		b.Fatalf("starting plugboard: %v", err)
	}
	srv := httptest.NewServer(app.Handler)
	b.Cleanup(func() {
		srv.Close()
		app.Close()
	})
	if err := app.Ready(ctx); err != nil {
		b.Fatalf("plugboard not ready: %v", err)
	}
	org, err := server.EnsureOrganization(ctx, app.Store.Client, server.DefaultOrgSlug)
	if err != nil {
		b.Fatal(err)
	}
	tok, _, err := app.Tokens.Create(ctx, org.ID, auth.RoleOrgAdmin, "bench")
	if err != nil {
		b.Fatal(err)
	}
	b.Logf("plugboard started with the plugins %v", bundledPlugins())
	return &benchEnv{App: app, URL: srv.URL, AdminToken: tok}
}

// benchClient returns an HTTP client keeping up to conns idle connections
// to one host, so that concurrent clients reuse their connections.
func benchClient(b testing.TB, conns int) *http.Client {
	tr := &http.Transport{
		MaxIdleConns:        conns * 2,
		MaxIdleConnsPerHost: conns * 2,
		IdleConnTimeout:     time.Minute,
		DisableCompression:  true,
	}
	b.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: time.Minute}
}

// gqlBody is the JSON body of a GraphQL request.
func gqlBody(query string, vars map[string]any) []byte {
	body, err := json.Marshal(map[string]any{"query": query, "variables": vars})
	if err != nil {
		panic(err)
	}
	return body
}

// post sends one GraphQL POST (a GET when body is nil) and returns the
// status and the body.
func post(c *http.Client, url, token string, body []byte) (int, []byte, error) {
	method, reader := http.MethodPost, io.Reader(bytes.NewReader(body))
	if body == nil {
		method, reader = http.MethodGet, nil
	}
	req, err := http.NewRequest(method, url, reader)
	if err != nil {
		return 0, nil, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	res, err := c.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer res.Body.Close()
	raw, err := io.ReadAll(res.Body)
	return res.StatusCode, raw, err
}

// gqlResult is a GraphQL response, decoded.
type gqlResult struct {
	Data   json.RawMessage   `json:"data"`
	Errors []json.RawMessage `json:"errors"`
}

// mustQuery posts a GraphQL request and fails b unless it answered 200
// without errors; it returns the raw body.
func mustQuery(b testing.TB, c *http.Client, url, token, query string, vars map[string]any) []byte {
	b.Helper()
	status, raw, err := post(c, url, token, gqlBody(query, vars))
	if err != nil {
		b.Fatal(err)
	}
	var r gqlResult
	if err := json.Unmarshal(raw, &r); err != nil || status != http.StatusOK || len(r.Errors) > 0 {
		b.Fatalf("query failed (%d): %s", status, raw)
	}
	return raw
}

// loadResult is what runLoad measured.
type loadResult struct {
	n       int
	elapsed time.Duration
	lat     []time.Duration // sorted
}

func (r loadResult) perSecond() float64 { return float64(r.n) / r.elapsed.Seconds() }

// quantile returns the q-quantile (0..1) of the recorded latencies, nearest
// rank.
func (r loadResult) quantile(q float64) time.Duration {
	if len(r.lat) == 0 {
		return 0
	}
	i := int(q*float64(len(r.lat))+0.5) - 1
	return r.lat[min(max(i, 0), len(r.lat)-1)]
}

// report adds req/s, p50-ms and p99-ms to b's results.
func (r loadResult) report(b *testing.B) {
	b.ReportMetric(r.perSecond(), "req/s")
	b.ReportMetric(float64(r.quantile(0.50).Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(r.quantile(0.99).Microseconds())/1000, "p99-ms")
}

// runLoad sends n requests from `clients` goroutines, each taking the next
// request from a shared counter, and records every latency. check is
// called with each response; an error stops the load and fails b.
func runLoad(b *testing.B, c *http.Client, url, token string, body []byte, n, clients int, check func(status int, raw []byte) error) loadResult {
	b.Helper()
	var next atomic.Int64
	var failed atomic.Bool
	lats := make([][]time.Duration, clients)
	var wg sync.WaitGroup
	b.ResetTimer()
	b.StartTimer() // a no-op unless an earlier runLoad stopped the timer
	start := time.Now()
	for g := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			mine := make([]time.Duration, 0, n/clients+1)
			for next.Add(1) <= int64(n) && !failed.Load() {
				t0 := time.Now()
				status, raw, err := post(c, url, token, body)
				d := time.Since(t0)
				if err == nil {
					err = check(status, raw)
				}
				if err != nil {
					if !failed.Swap(true) {
						b.Error(err)
					}
					return
				}
				mine = append(mine, d)
			}
			lats[g] = mine
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	b.StopTimer()
	all := slices.Concat(lats...)
	slices.Sort(all)
	return loadResult{n: len(all), elapsed: elapsed, lat: all}
}

// wantSize returns a check that the response is 200 and size bytes long.
func wantSize(size int) func(int, []byte) error {
	return func(status int, raw []byte) error {
		if status != http.StatusOK || len(raw) != size {
			return fmt.Errorf("unexpected response (%d, %d bytes, want %d): %.300s", status, len(raw), size, raw)
		}
		return nil
	}
}
