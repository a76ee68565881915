package server_test

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/plugboard/plugboard/internal/egress"
	"github.com/plugboard/plugboard/internal/server"
	"github.com/plugboard/plugboard/internal/store/storetest"
)

// BenchmarkProxy measures a call through the credential proxy (RUNTIME
// token checked, credential resolved and decrypted, the key injected, the
// call sent over a pooled connection, an audit row committed before the
// answer) beside the same local upstream called directly, in the same run,
// 50 concurrent clients each, on SQLite and, with
// PLUGBOARD_TEST_POSTGRES_URL, PostgreSQL.
//
// Two upstreams: one that answers 1 KiB at once (what the proxy costs in
// CPU when nothing else takes time; the load generator, the proxy and the
// upstream share the machine's cores), and one that answers after 20 ms,
// as a fast third-party API does (what the proxy adds to a call's
// latency). bare-reverse-proxy is the floor on the instant upstream:
// net/http/httputil.ReverseProxy to a fixed URL with a fixed header, no
// token check, no database, no audit.
//
//	go test ./internal/server -run '^$' -bench 'BenchmarkProxy$' -count 3
func BenchmarkProxy(b *testing.B) {
	answer := bytes.Repeat([]byte("a"), 1024)
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasSuffix(r.URL.Path, "/slow") {
			time.Sleep(benchUpstreamDelay)
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(answer)
	}))
	b.Cleanup(up.Close)
	bare := bareReverseProxy(b, up.URL)
	for _, name := range []string{"sqlite", "postgres"} {
		if name == "postgres" && os.Getenv(storetest.PostgresURLEnv) == "" {
			continue
		}
		b.Run(name, func(b *testing.B) {
			dbURL := ""
			if name == "postgres" {
				dbURL = storetest.PostgresURL(b) // a fresh database
			}
			env := startBenchOptions(b, server.Options{DatabaseURL: dbURL, Egress: egress.Policy{AllowLoopback: true}})
			proxyURL, rt := benchProxyCredential(b, env, up.URL)
			run := func(b *testing.B, url, token string) {
				c := benchClient(b, loadClients)
				runLoad(b, c, url, token, nil, loadClients*2, loadClients, wantSize(len(answer)))
				b.ReportAllocs()
				runLoad(b, c, url, token, nil, b.N, loadClients, wantSize(len(answer))).report(b)
			}
			const me, slow = "/users/me", "/slow"
			b.Run("direct", func(b *testing.B) { run(b, up.URL+"/api/1.0"+me, benchAsanaKey) })
			b.Run("bare-reverse-proxy", func(b *testing.B) { run(b, bare+"/api/1.0"+me, "") })
			b.Run("proxied", func(b *testing.B) { run(b, proxyURL+me, rt) })
			b.Run("direct-20ms", func(b *testing.B) { run(b, up.URL+"/api/1.0"+slow, benchAsanaKey) })
			b.Run("proxied-20ms", func(b *testing.B) { run(b, proxyURL+slow, rt) })
		})
	}
}

// benchUpstreamDelay is how long the slow upstream takes to answer.
const benchUpstreamDelay = 20 * time.Millisecond

// bareReverseProxy serves httputil.ReverseProxy to upstream with a fixed
// Authorization header and the pool the credential proxy uses, and returns
// its URL.
func bareReverseProxy(b *testing.B, upstream string) string {
	target, err := url.Parse(upstream)
	if err != nil {
		b.Fatal(err)
	}
	rp := &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(target)
			pr.Out.Header.Set("Authorization", "Bearer "+benchAsanaKey)
		},
		Transport: egress.NewTransport(egress.Policy{AllowLoopback: true}, egress.ClientOptions{MaxIdleConnsPerHost: 256}),
	}
	srv := httptest.NewServer(rp)
	b.Cleanup(srv.Close)
	return srv.URL
}

const benchAsanaKey = "2/1200000000000000/1200000000000001:0123456789abcdef0123456789abcdef"

// benchProxyCredential saves an Asana credential aimed at upstream and
// returns its proxy URL (the credential's root) and a RUNTIME token.
func benchProxyCredential(b *testing.B, env *benchEnv, upstream string) (string, string) {
	id, rt := benchSaveCredential(b, env, "asana.apiKey", [][2]string{{"apiKey", benchAsanaKey}, {"baseUrl", upstream + "/api/1.0"}})
	return env.URL + "/proxy/v1/credentials/" + id, rt
}
