package server_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"sync/atomic"
	"testing"

	"github.com/plugboard/plugboard/internal/globalid"
	"github.com/plugboard/plugboard/internal/store"
	"github.com/plugboard/plugboard/internal/store/storetest"
)

// BenchmarkConfigWizard measures configWizard through plugboard's real HTTP
// handler with an admin token: an instance of an integration with 5
// connection slots (one of each scope: CUSTOMER asana with a reusable
// credential, INTEGRATION slack with a token, ORGANIZATION_GLOBAL postgres,
// ORGANIZATION_CUSTOMER asana, USER asana), 50 concurrent clients over
// loopback HTTP, on SQLite and (with PLUGBOARD_TEST_POSTGRES_URL) on
// PostgreSQL. It reports p50-ms and p99-ms (client side), req/s, and
// stmts/req: the SQL statements one request runs, authentication included,
// counted on sequential requests for 1 slot and for 5 slots; the two must
// be equal (no N+1), else the benchmark fails.
//
//	PLUGBOARD_TEST_POSTGRES_URL=postgres://... \
//	go test ./internal/server -run '^$' -bench 'ConfigWizard' -count 6
func BenchmarkConfigWizard(b *testing.B) {
	b.Run("sqlite", func(b *testing.B) { benchConfigWizard(b, "") })
	b.Run("postgres", func(b *testing.B) { benchConfigWizard(b, storetest.PostgresURL(b)) })
}

func benchConfigWizard(b *testing.B, databaseURL string) {
	// One slot: statements per request.
	var stmts1 atomic.Int64
	env1 := startBench(b, databaseURL, store.WithStatementCounter(&stmts1))
	s1 := seedWizard(b, env1.App, 1)
	one := wizardStatements(b, env1, s1.inst1.ID, 1, &stmts1)
	if databaseURL != "" {
		// A second database for the 5-slot server: the seed's keys are
		// unique per organization and database.
		databaseURL = storetest.PostgresURL(b)
	}
	var stmts5 atomic.Int64
	env := startBench(b, databaseURL, store.WithStatementCounter(&stmts5))
	s := seedWizard(b, env.App, 5)
	five := wizardStatements(b, env, s.inst1.ID, 5, &stmts5)
	b.Logf("SQL statements per configWizard request: 1 slot %d, 5 slots %d", one, five)
	if one != five {
		b.Fatalf("statements grow with the slots: 1 slot %d, 5 slots %d", one, five)
	}

	body := gqlBody(wizardQueryText, map[string]any{"id": globalid.Encode(s.inst1.ID)})
	url := env.URL + "/graphql"
	_, first, err := post(benchClient(b, 1), url, env.AdminToken, body)
	if err != nil {
		b.Fatal(err)
	}
	check := func(status int, raw []byte) error {
		if status != http.StatusOK || len(raw) != len(first) {
			return fmt.Errorf("unexpected response (%d, %d bytes, want %d): %.300s", status, len(raw), len(first), raw)
		}
		return nil
	}
	// The servers start and the data is seeded once; only the load runs
	// for each b.N.
	b.Run("5-slots", func(b *testing.B) {
		c := benchClient(b, loadClients)
		// Open the connections before the clock starts.
		runLoad(b, c, url, env.AdminToken, body, loadClients*2, loadClients, check)
		b.ReportAllocs()
		r := runLoad(b, c, url, env.AdminToken, body, b.N, loadClients, check)
		r.report(b)
		b.ReportMetric(float64(five), "stmts/req")
		b.ReportMetric(float64(one), "stmts/req-1-slot")
		b.ReportMetric(float64(len(first)), "resp-bytes")
	})
}

// wizardStatements sends sequential configWizard requests and returns the
// median number of SQL statements one ran; it checks the answer has the
// given number of elements.
func wizardStatements(b *testing.B, env *benchEnv, instanceID, slots int, stmts *atomic.Int64) int64 {
	b.Helper()
	c := benchClient(b, 1)
	body := gqlBody(wizardQueryText, map[string]any{"id": globalid.Encode(instanceID)})
	var counts []int64
	for range 21 {
		before := stmts.Load()
		status, raw, err := post(c, env.URL+"/graphql", env.AdminToken, body)
		n := stmts.Load() - before
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
