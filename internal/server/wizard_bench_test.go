package server_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"sync/atomic"
	"testing"

	"github.com/plugboard/plugboard/internal/globalid"
	"github.com/plugboard/plugboard/internal/server"
	"github.com/plugboard/plugboard/internal/store"
	"github.com/plugboard/plugboard/internal/store/storetest"
)

// BenchmarkConfigWizard measures configWizard through plugboard's real HTTP
// handler: an instance of an integration with 5 connection slots (one of
// each scope: CUSTOMER asana with a reusable credential, INTEGRATION slack
// with a token, ORGANIZATION_GLOBAL postgres, ORGANIZATION_CUSTOMER asana,
// USER asana), 50 concurrent clients over loopback HTTP, on SQLite and
// (with PLUGBOARD_TEST_POSTGRES_URL) on PostgreSQL, for an admin (API
// token) and for a customer's user (embedding JWT), with the answer cache
// on and off (NoAnswerCache). It reports p50-ms and p99-ms (client side),
// req/s, and stmts/req: the SQL statements one request runs,
// authentication included, counted on sequential requests without the
// cache for 3 slots and for 5 slots; the two must be equal for each viewer
// (no N+1), else the benchmark fails. stmts/req-cached is the same count
// with the cache on.
//
//	PLUGBOARD_TEST_POSTGRES_URL=postgres://... \
//	go test ./internal/server -run '^$' -bench 'ConfigWizard' -count 3
func BenchmarkConfigWizard(b *testing.B) {
	b.Run("sqlite", func(b *testing.B) { benchConfigWizard(b, "") })
	b.Run("postgres", func(b *testing.B) { benchConfigWizard(b, storetest.PostgresURL(b)) })
}

// wizardBenchServer is a seeded plugboard of the benchmark with its
// statement counter and its admin and customer tokens.
type wizardBenchServer struct {
	env      *benchEnv
	stmts    *atomic.Int64
	seed     *wizardSeed
	customer string
}

// startWizardBench starts plugboard on databaseURL ("" is SQLite; on
// PostgreSQL each server gets a database of its own, the seed's keys being
// unique per organization) with slots slots seeded.
func startWizardBench(b *testing.B, databaseURL string, slots int, noCache bool) *wizardBenchServer {
	if databaseURL != "" {
		databaseURL = storetest.PostgresURL(b)
	}
	w := &wizardBenchServer{stmts: &atomic.Int64{}}
	w.env = startBenchOptions(b, server.Options{DatabaseURL: databaseURL, NoAnswerCache: noCache,
		StoreOptions: []store.Option{store.WithStatementCounter(w.stmts)}})
	w.seed = seedWizard(b, w.env.App, slots)
	w.customer = benchCustomerToken(b, w.env)
	return w
}

// benchCustomerToken registers a signing key through the API and returns
// an embedding token of user u1 of customer a1, used once so that the user
// is recorded.
func benchCustomerToken(b *testing.B, env *benchEnv) string {
	key := newEmbedKey(b, "bench-1")
	c := benchClient(b, 1)
	mustQuery(b, c, env.URL+"/graphql", env.AdminToken, registerKeyMutation, map[string]any{"in": map[string]any{
		"kid": key.kid, "algorithm": "EdDSA", "publicKeyPEM": key.publicPEM(b),
	}})
	tok := key.token(b, server.DefaultOrgSlug, "a1", "u1")
	mustQuery(b, c, env.URL+"/graphql", tok, `{ viewer { role } }`, nil)
	return tok
}

func benchConfigWizard(b *testing.B, databaseURL string) {
	three := startWizardBench(b, databaseURL, 3, true)
	off := startWizardBench(b, databaseURL, 5, true)
	on := startWizardBench(b, databaseURL, 5, false)
	type viewer struct {
		name          string
		token         func(*wizardBenchServer) string
		stmts3, stmts int64
	}
	viewers := []*viewer{
		{name: "admin", token: func(w *wizardBenchServer) string { return w.env.AdminToken }},
		{name: "customer", token: func(w *wizardBenchServer) string { return w.customer }},
	}
	for _, v := range viewers {
		v.stmts3 = wizardStatements(b, three, v.token(three), 3)
		v.stmts = wizardStatements(b, off, v.token(off), 5)
		b.Logf("SQL statements per configWizard request, %s: 3 slots %d, 5 slots %d", v.name, v.stmts3, v.stmts)
		if v.stmts3 != v.stmts {
			b.Fatalf("%s: statements grow with the slots: 3 slots %d, 5 slots %d", v.name, v.stmts3, v.stmts)
		}
	}
	// The servers start and the data is seeded once; only the load runs
	// for each b.N.
	for _, mode := range []struct {
		name string
		w    *wizardBenchServer
	}{{"cache-on", on}, {"cache-off", off}} {
		for _, v := range viewers {
			cached := wizardStatements(b, mode.w, v.token(mode.w), 5)
			b.Run(mode.name+"/"+v.name, func(b *testing.B) {
				wizardLoad(b, mode.w, v.token(mode.w))
				b.ReportMetric(float64(v.stmts), "stmts/req")
				b.ReportMetric(float64(v.stmts3), "stmts/req-3-slots")
				b.ReportMetric(float64(cached), "stmts/req-cached")
			})
		}
	}
}

// wizardLoad runs b.N configWizard requests of token from loadClients
// clients and reports the figures.
func wizardLoad(b *testing.B, w *wizardBenchServer, token string) {
	body := gqlBody(wizardQueryText, map[string]any{"id": globalid.Encode(w.seed.inst1.ID)})
	url := w.env.URL + "/graphql"
	_, first, err := post(benchClient(b, 1), url, token, body)
	if err != nil {
		b.Fatal(err)
	}
	check := func(status int, raw []byte) error {
		if status != http.StatusOK || len(raw) != len(first) {
			return fmt.Errorf("unexpected response (%d, %d bytes, want %d): %.300s", status, len(raw), len(first), raw)
		}
		return nil
	}
	c := benchClient(b, loadClients)
	// Open the connections before the clock starts.
	runLoad(b, c, url, token, body, loadClients*2, loadClients, check)
	b.ReportAllocs()
	r := runLoad(b, c, url, token, body, b.N, loadClients, check)
	r.report(b)
	b.ReportMetric(float64(len(first)), "resp-bytes")
}

// wizardStatements sends sequential configWizard requests of token and
// returns the median number of SQL statements one ran; it checks the
// answer has the given number of elements.
func wizardStatements(b *testing.B, w *wizardBenchServer, token string, slots int) int64 {
	b.Helper()
	c := benchClient(b, 1)
	body := gqlBody(wizardQueryText, map[string]any{"id": globalid.Encode(w.seed.inst1.ID)})
	var counts []int64
	for range 21 {
		before := w.stmts.Load()
		status, raw, err := post(c, w.env.URL+"/graphql", token, body)
		n := w.stmts.Load() - before
		if err != nil {
			b.Fatal(err)
		}
		var r wizardResp
		if err := json.Unmarshal(raw, &r); err != nil || status != http.StatusOK || len(r.Errors) > 0 ||
			r.Data.ConfigWizard == nil || len(r.Data.ConfigWizard.Pages[0].Elements) != slots {
			b.Fatalf("configWizard (%d): %.500s", status, raw)
		}
		counts = append(counts, n)
	}
	slices.Sort(counts)
	return counts[len(counts)/2]
}
