package server_test

import (
	"encoding/json"
	"io"
	"log/slog"
	"net/http/httptest"
	"testing"

	"github.com/plugboard/plugboard/internal/server"
	"github.com/plugboard/plugboard/internal/server/benchtest"
)

// connectionTypesQuery asks for every connection type with its inputs and
// OAuth 2.0 spec: what a config wizard or an admin UI loads.
const connectionTypesQuery = `query ConnectionTypes {
  connectionTypes(orderBy: {field: KEY}) {
    edges { node {
      id key label description iconURL authKind schemaVersion available
      inputs { key label type required default example placeholder description shown secret
        options { value label } pattern collection onPremControlled template }
      oauth2 { authorizeURL tokenURL revokeURL scopes scopeSeparator pkceMethod authStyle
        clientIDInput clientSecretInput extraAuthorizeParams extraTokenParams refreshMarginSeconds }
    } }
  }
}`

// loadClients is the number of concurrent HTTP clients.
const loadClients = 50

// BenchmarkConnectionTypesHTTP measures the connectionTypes query through
// plugboard's real HTTP handler (every bundled plugin loaded, SQLite, admin
// token, loopback HTTP) beside a bare gqlgen handler answering a one-field
// schema with a static payload of the same byte size, over the same kind of
// loopback HTTP. Each sub-benchmark sends b.N requests from 50 goroutines
// and reports req/s, p50-ms and p99-ms (client-side latencies).
//
// The bare handler is server.NewGraphQLHandler: handler.New with the same
// transports, query cache, extensions and error presenter as plugboard, so
// the difference is what plugboard does per request (authentication, the
// tenant filter, the SQL query, building and marshalling the typed
// response, the metrics and logging middleware).
//
//	go test ./internal/server -run '^$' -bench 'ConnectionTypesHTTP' -count 6
func BenchmarkConnectionTypesHTTP(b *testing.B) {
	env := startBench(b, "")
	setup := benchClient(b, 1)
	real := mustQuery(b, setup, env.URL+"/graphql", env.AdminToken, connectionTypesQuery, nil)
	size := len(real)
	var shape struct {
		Data struct {
			ConnectionTypes struct {
				Edges []struct {
					Node struct {
						Inputs []struct{ Options []struct{} }
					}
				}
			}
		}
	}
	if err := json.Unmarshal(real, &shape); err != nil {
		b.Fatal(err)
	}
	inputs, options := 0, 0
	for _, e := range shape.Data.ConnectionTypes.Edges {
		inputs += len(e.Node.Inputs)
		for _, in := range e.Node.Inputs {
			options += len(in.Options)
		}
	}
	var tree any
	if err := json.Unmarshal(real, &tree); err != nil {
		b.Fatal(err)
	}
	b.Logf("the real response: %d bytes, %d connection types, %d inputs, %d options, %d JSON values",
		size, len(shape.Data.ConnectionTypes.Edges), inputs, options, countValues(tree))

	quiet := slog.New(slog.NewTextHandler(io.Discard, &slog.HandlerOptions{Level: slog.LevelInfo}))
	bare := httptest.NewServer(server.NewGraphQLHandler(benchtest.NewSchema(size), quiet, nil))
	b.Cleanup(bare.Close)
	bareBody := gqlBody(`query Payload { payload }`, nil)
	if _, raw, err := post(setup, bare.URL, "", bareBody); err != nil || len(raw) != size {
		b.Fatalf("bare response is %d bytes, want %d (%v)", len(raw), size, err)
	}
	realBody := gqlBody(connectionTypesQuery, nil)

	run := func(b *testing.B, url, token string, body []byte) {
		c := benchClient(b, loadClients)
		// Open the connections before the clock starts.
		runLoad(b, c, url, token, body, loadClients*2, loadClients, wantSize(size))
		b.ReportAllocs()
		r := runLoad(b, c, url, token, body, b.N, loadClients, wantSize(size))
		r.report(b)
		b.ReportMetric(float64(size), "resp-bytes")
	}
	// The same server without its cache of catalog answers: every request
	// is authenticated, queried and marshalled by gqlgen.
	uncached := startBenchOptions(b, server.Options{NoCatalogCache: true})
	b.Run("plugboard", func(b *testing.B) { run(b, env.URL+"/graphql", env.AdminToken, realBody) })
	b.Run("bare", func(b *testing.B) { run(b, bare.URL, env.AdminToken, bareBody) })
	b.Run("plugboard-uncached", func(b *testing.B) { run(b, uncached.URL+"/graphql", uncached.AdminToken, realBody) })
}

// countValues counts the values of a decoded JSON document: every object,
// array and scalar, i.e. roughly the fields and list items a GraphQL
// executor produced.
func countValues(v any) int {
	n := 1
	switch v := v.(type) {
	case map[string]any:
		for _, e := range v {
			n += countValues(e)
		}
	case []any:
		for _, e := range v {
			n += countValues(e)
		}
	}
	return n
}
