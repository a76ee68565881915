package server_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/plugboard/plugboard/ent"
	"github.com/plugboard/plugboard/ent/credential"
	"github.com/plugboard/plugboard/ent/schema/schematype"
	"github.com/plugboard/plugboard/internal/auth"
	"github.com/plugboard/plugboard/internal/globalid"
	"github.com/plugboard/plugboard/internal/server"
	"github.com/plugboard/plugboard/internal/store"
	"github.com/plugboard/plugboard/internal/store/storetest"
)

// seededCredentials is how many credentials BenchmarkCredentialsPage lists.
const seededCredentials = 10_000

// credentialsPageQuery is one page of the credentials list, with each
// credential's values (key and isSet) and its connection's stable key.
const credentialsPageQuery = `query Credentials($first: Int!, $after: Cursor) {
  credentials(first: $first, after: $after) {
    edges { node { id status values { key isSet } connection { stableKey } } }
    pageInfo { endCursor hasNextPage }
  }
}`

// credentialsPageQueryNoValues is the same page without `values`, to tell
// what the values field costs.
const credentialsPageQueryNoValues = `query Credentials($first: Int!, $after: Cursor) {
  credentials(first: $first, after: $after) {
    edges { node { id status connection { stableKey } } }
    pageInfo { endCursor hasNextPage }
  }
}`

// BenchmarkCredentialsPage lists 10,000 customer credentials of one Asana
// connection page by page through plugboard's real HTTP handler, one
// request at a time, on SQLite and (with PLUGBOARD_TEST_POSTGRES_URL) on
// PostgreSQL. Each op is one page request; the pages follow one another
// (after: the previous endCursor) and start over at the end of the list.
// Besides the latencies it reports stmts/page, the median number of SQL
// statements one page request runs (authentication included), and
// stmts-max/page; constant in the page size means no N+1.
//
//	PLUGBOARD_TEST_POSTGRES_URL=postgres://... \
//	go test ./internal/server -run '^$' -bench 'CredentialsPage' -count 6
func BenchmarkCredentialsPage(b *testing.B) {
	b.Run("sqlite", func(b *testing.B) { benchCredentialsPages(b, "") })
	b.Run("postgres", func(b *testing.B) { benchCredentialsPages(b, storetest.PostgresURL(b)) })
}

func benchCredentialsPages(b *testing.B, databaseURL string) {
	var stmts atomic.Int64
	env := startBench(b, databaseURL, store.WithStatementCounter(&stmts))
	seedStart := time.Now()
	seedCredentials(b, env, seededCredentials)
	b.Logf("seeded %d credentials in %s", seededCredentials, time.Since(seedStart).Round(time.Millisecond))
	c := benchClient(b, 1)
	url := env.URL + "/graphql"

	// Walk the whole list once: every credential comes back exactly once.
	seen := map[string]bool{}
	pages := 0
	var cursor any
	var walk []int64
	walkStart := time.Now()
	for {
		p, n, err := credentialsPage(c, url, env.AdminToken, credentialsPageQuery, 100, cursor, &stmts)
		if err != nil {
			b.Fatal(err)
		}
		pages++
		walk = append(walk, n)
		for _, id := range p.ids {
			seen[id] = true
		}
		if !p.hasNext {
			break
		}
		cursor = p.endCursor
	}
	if len(seen) != seededCredentials || pages != seededCredentials/100 {
		b.Fatalf("listed %d credentials in %d pages, want %d in %d", len(seen), pages, seededCredentials, seededCredentials/100)
	}
	slices.Sort(walk)
	b.Logf("walked %d credentials in %d pages of 100 in %s; SQL statements per page: min %d, median %d, max %d",
		len(seen), pages, time.Since(walkStart).Round(time.Millisecond), walk[0], walk[len(walk)/2], walk[len(walk)-1])

	for _, v := range []struct {
		name  string
		query string
		first int
	}{
		{"first=10", credentialsPageQuery, 10},
		{"first=50", credentialsPageQuery, 50},
		{"first=100", credentialsPageQuery, 100},
		{"first=100-without-values", credentialsPageQueryNoValues, 100},
	} {
		b.Run(v.name, func(b *testing.B) {
			var cursor any
			lat := make([]time.Duration, 0, b.N)
			counts := make([]int64, 0, b.N)
			nodes := 0
			pool := env.App.Store.DB
			before := pool.Stats()
			b.ReportAllocs()
			b.ResetTimer()
			start := time.Now()
			for range b.N {
				t0 := time.Now()
				p, n, err := credentialsPage(c, url, env.AdminToken, v.query, v.first, cursor, &stmts)
				lat = append(lat, time.Since(t0))
				if err != nil {
					b.Fatal(err)
				}
				counts = append(counts, n)
				nodes += len(p.ids)
				cursor = p.endCursor
				if !p.hasNext {
					cursor = nil
				}
			}
			elapsed := time.Since(start)
			b.StopTimer()
			after := pool.Stats()
			slices.Sort(lat)
			slices.Sort(counts)
			r := loadResult{n: len(lat), elapsed: elapsed, lat: lat}
			b.ReportMetric(float64(r.quantile(0.50).Microseconds())/1000, "p50-ms")
			b.ReportMetric(float64(r.quantile(0.99).Microseconds())/1000, "p99-ms")
			b.ReportMetric(float64(counts[len(counts)/2]), "stmts/page")
			b.ReportMetric(float64(counts[len(counts)-1]), "stmts-max/page")
			b.ReportMetric(float64(nodes)/float64(b.N), "nodes/page")
			// Connections the pool closed because more than MaxIdleConns
			// were open at once: each is reopened by a later request.
			closed := (after.MaxIdleClosed - before.MaxIdleClosed) + (after.MaxIdleTimeClosed - before.MaxIdleTimeClosed) +
				(after.MaxLifetimeClosed - before.MaxLifetimeClosed)
			b.ReportMetric(float64(closed)/float64(b.N), "conns-closed/page")
			b.ReportMetric(float64(after.WaitCount-before.WaitCount)/float64(b.N), "pool-waits/page")
		})
	}
}

// page is what one credentials page answered.
type page struct {
	ids       []string
	endCursor string
	hasNext   bool
}

// credentialsPage fetches one page and returns it with the number of SQL
// statements the request ran. Requests are sequential, so the counter's
// difference is this request's.
func credentialsPage(c *http.Client, url, token, query string, first int, after any, stmts *atomic.Int64) (page, int64, error) {
	body := gqlBody(query, map[string]any{"first": first, "after": after})
	before := stmts.Load()
	status, raw, err := post(c, url, token, body)
	n := stmts.Load() - before
	if err != nil {
		return page{}, n, err
	}
	var r struct {
		Data struct {
			Credentials struct {
				Edges []struct {
					Node struct {
						ID     string `json:"id"`
						Status string `json:"status"`
						Values []struct {
							Key   string `json:"key"`
							IsSet bool   `json:"isSet"`
						} `json:"values"`
						Connection struct {
							StableKey string `json:"stableKey"`
						} `json:"connection"`
					} `json:"node"`
				} `json:"edges"`
				PageInfo struct {
					EndCursor   string `json:"endCursor"`
					HasNextPage bool   `json:"hasNextPage"`
				} `json:"pageInfo"`
			} `json:"credentials"`
		} `json:"data"`
		Errors []json.RawMessage `json:"errors"`
	}
	if err := json.Unmarshal(raw, &r); err != nil || status != http.StatusOK || len(r.Errors) > 0 {
		return page{}, n, fmt.Errorf("credentials page (%d): %.500s", status, raw)
	}
	p := page{endCursor: r.Data.Credentials.PageInfo.EndCursor, hasNext: r.Data.Credentials.PageInfo.HasNextPage}
	for _, e := range r.Data.Credentials.Edges {
		nd := e.Node
		if nd.Status != "ACTIVE" || nd.Connection.StableKey != "asana" {
			return page{}, n, fmt.Errorf("unexpected credential: %+v", nd)
		}
		p.ids = append(p.ids, nd.ID)
	}
	if len(p.ids) == 0 || len(p.ids) > first {
		return page{}, n, fmt.Errorf("page of %d credentials for first: %d", len(p.ids), first)
	}
	return p, n, nil
}

// seedCredentials creates an Asana connection (through the API), then n
// customers and one ACTIVE credential each, inserted directly with the ent
// client in bulk, as plugboard itself, with the shape the save pipeline
// gives them: the non-secret inputs as JSON and, for the secret apiKey,
// only its metadata (listing never reads the ciphertext).
func seedCredentials(b testing.TB, env *benchEnv, n int) {
	b.Helper()
	c := benchClient(b, 1)
	raw := mustQuery(b, c, env.URL+"/graphql", env.AdminToken,
		`mutation { createConnection(input: {typeKey: "asana.apiKey", stableKey: "asana", name: "Asana", scope: CUSTOMER}) {
			connection { id } userErrors { code message } } }`, nil)
	var r struct {
		Data struct {
			CreateConnection struct {
				Connection struct{ ID string }
				UserErrors []json.RawMessage
			}
		}
	}
	if err := json.Unmarshal(raw, &r); err != nil || len(r.Data.CreateConnection.UserErrors) > 0 {
		b.Fatalf("createConnection: %s", raw)
	}
	connID, err := globalid.Decode(r.Data.CreateConnection.Connection.ID)
	if err != nil {
		b.Fatalf("connection id %q: %v", r.Data.CreateConnection.Connection.ID, err)
	}

	ctx, cancel := context.WithTimeout(auth.SystemContext(context.Background()), 5*time.Minute)
	defer cancel()
	db := env.App.Store.Client
	org, err := server.EnsureOrganization(ctx, db, server.DefaultOrgSlug)
	if err != nil {
		b.Fatal(err)
	}
	const batch = 500
	meta := map[string]schematype.SecretMeta{"apiKey": {UpdatedAt: time.Now().UnixMilli()}}
	inputs := map[string]string{"baseUrl": "https://app.asana.com/api/1.0"}
	for lo := 0; lo < n; lo += batch {
		hi := min(lo+batch, n)
		err := withTx(ctx, db, func(tx *ent.Tx) error {
			cb := make([]*ent.CustomerCreate, 0, hi-lo)
			for i := lo; i < hi; i++ {
				cb = append(cb, tx.Customer.Create().SetOrganizationID(org.ID).
					SetExternalID(fmt.Sprintf("customer-%05d", i)).SetName(fmt.Sprintf("Customer %d", i)))
			}
			customers, err := tx.Customer.CreateBulk(cb...).Save(ctx)
			if err != nil {
				return fmt.Errorf("customers: %w", err)
			}
			crb := make([]*ent.CredentialCreate, 0, len(customers))
			for _, cu := range customers {
				crb = append(crb, tx.Credential.Create().
					SetOrganizationID(org.ID).
					SetConnectionID(connID).
					SetHolder(credential.HolderCUSTOMER).
					SetHolderKey("customer:"+strconv.Itoa(cu.ID)).
					SetCustomerID(cu.ID).
					SetInputs(inputs).
					SetSecretMeta(meta).
					SetStatus(credential.StatusACTIVE))
			}
			if _, err := tx.Credential.CreateBulk(crb...).Save(ctx); err != nil {
				return fmt.Errorf("credentials: %w", err)
			}
			return nil
		})
		if err != nil {
			b.Fatalf("seeding: %v", err)
		}
	}
}

// withTx runs fn in a transaction, committed when fn succeeds.
func withTx(ctx context.Context, db *ent.Client, fn func(tx *ent.Tx) error) error {
	tx, err := db.Tx(ctx)
	if err != nil {
		return err
	}
	if err := fn(tx); err != nil {
		_ = tx.Rollback()
		return err
	}
	return tx.Commit()
}
