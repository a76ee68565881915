package server_test

import (
	"encoding/json"
	"slices"
	"sync/atomic"
	"testing"

	"github.com/plugboard/plugboard/internal/store"
)

// pageTotal is how many credentials TestPageWithoutTotalCount lists.
const pageTotal = 250

// credentialsPageTotalQuery is credentialsPageQuery with totalCount.
const credentialsPageTotalQuery = `query Credentials($first: Int!, $after: Cursor) {
  credentials(first: $first, after: $after) {
    edges { node { id status values { key isSet } connection { stableKey } } }
    pageInfo { endCursor hasNextPage }
    totalCount
  }
}`

// credentialsPageFragmentQuery selects pageInfo through a fragment.
const credentialsPageFragmentQuery = `query Credentials($first: Int!, $after: Cursor) {
  credentials(first: $first, after: $after) { ...page }
}
fragment page on CredentialConnection {
  edges { node { id status connection { stableKey } } }
  pageInfo { hasNextPage endCursor startCursor hasPreviousPage }
}`

// pageAnswer is one credentials page: its ids, pageInfo and totalCount.
type pageAnswer struct {
	ids                    []string
	endCursor, startCursor string
	hasNext, hasPrevious   bool
	totalCount             *int
}

func fetchPage(t *testing.T, env *benchEnv, query string, after any, stmts *atomic.Int64) (pageAnswer, int64) {
	t.Helper()
	before := stmts.Load()
	raw := mustQuery(t, benchClient(t, 1), env.URL+"/graphql", env.AdminToken, query, map[string]any{"first": 100, "after": after})
	n := stmts.Load() - before
	var r struct {
		Data struct {
			Credentials struct {
				Edges []struct {
					Node struct{ ID string } `json:"node"`
				} `json:"edges"`
				PageInfo struct {
					EndCursor, StartCursor       string
					HasNextPage, HasPreviousPage bool
				} `json:"pageInfo"`
				TotalCount *int `json:"totalCount"`
			} `json:"credentials"`
		} `json:"data"`
	}
	if err := json.Unmarshal(raw, &r); err != nil {
		t.Fatal(err)
	}
	c := r.Data.Credentials
	p := pageAnswer{endCursor: c.PageInfo.EndCursor, startCursor: c.PageInfo.StartCursor,
		hasNext: c.PageInfo.HasNextPage, hasPrevious: c.PageInfo.HasPreviousPage, totalCount: c.TotalCount}
	for _, e := range c.Edges {
		p.ids = append(p.ids, e.Node.ID)
	}
	return p, n
}

// TestPageWithoutTotalCount: a credentials page (first: 100 of 250) that
// does not select totalCount runs one statement fewer (no COUNT) than the
// same page with totalCount, and answers the same edges and pageInfo on
// every page, the last one (hasNextPage false) included.
func TestPageWithoutTotalCount(t *testing.T) {
	var stmts atomic.Int64
	env := startBench(t, "", store.WithStatementCounter(&stmts))
	seedCredentials(t, env, pageTotal)
	var after any
	for pageNo := 1; ; pageNo++ {
		with, nWith := fetchPage(t, env, credentialsPageTotalQuery, after, &stmts)
		without, nWithout := fetchPage(t, env, credentialsPageQuery, after, &stmts)
		frag, nFrag := fetchPage(t, env, credentialsPageFragmentQuery, after, &stmts)
		if with.totalCount == nil || *with.totalCount != pageTotal || without.totalCount != nil {
			t.Fatalf("page %d: totalCount %v with, %v without", pageNo, with.totalCount, without.totalCount)
		}
		if nWithout != nWith-1 || nFrag != nWith-1 {
			t.Errorf("page %d: %d statements with totalCount, %d without, %d through a fragment; want one fewer without",
				pageNo, nWith, nWithout, nFrag)
		}
		if !slices.Equal(with.ids, without.ids) || !slices.Equal(with.ids, frag.ids) ||
			with.endCursor != without.endCursor || with.endCursor != frag.endCursor || with.hasNext != without.hasNext || with.hasNext != frag.hasNext {
			t.Fatalf("page %d differs:\nwith     %+v\nwithout  %+v\nfragment %+v", pageNo, with, without, frag)
		}
		wantLen, wantNext := 100, pageNo < 3
		if pageNo == 3 {
			wantLen = pageTotal - 200
		}
		if len(with.ids) != wantLen || with.hasNext != wantNext || frag.hasPrevious != (pageNo > 1) || frag.startCursor == "" {
			t.Fatalf("page %d: %d credentials, hasNextPage %v, hasPreviousPage %v; want %d, %v, %v",
				pageNo, len(with.ids), with.hasNext, frag.hasPrevious, wantLen, wantNext, pageNo > 1)
		}
		if !with.hasNext {
			break
		}
		after = with.endCursor
	}
}
