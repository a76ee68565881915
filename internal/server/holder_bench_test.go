package server_test

import (
	"context"
	"testing"

	"github.com/plugboard/plugboard/ent/credential"
	"github.com/plugboard/plugboard/internal/auth"
	"github.com/plugboard/plugboard/internal/store"
)

// BenchmarkHolderLookup runs the save pipeline's holder lookup (by
// connection, holder key and is_test, in the viewer's organization) among
// 10,000 credentials of one organization on SQLite, with the planner
// statistics Migrate leaves (baseline) and without the baseline rows of the
// *_organization_id indexes (none).
//
//	go test ./internal/server -run '^$' -bench 'HolderLookup' -count 3
func BenchmarkHolderLookup(b *testing.B) {
	env := startBench(b, "")
	seedCredentials(b, env, seededCredentials)
	ctx := auth.SystemContext(context.Background())
	db := env.App.Store.Client
	last, err := db.Credential.Query().Order(credential.ByID()).Offset(seededCredentials - 1).Only(ctx)
	if err != nil {
		b.Fatal(err)
	}
	ctx = auth.OrganizationContext(context.Background(), last.OrganizationID)
	lookup := func(b *testing.B) {
		for b.Loop() {
			_, err := db.Credential.Query().
				Where(credential.ConnectionID(last.ConnectionID), credential.HolderKey(last.HolderKey), credential.IsTest(false)).
				Only(ctx)
			if err != nil {
				b.Fatal(err)
			}
		}
	}
	b.Run("baseline", lookup)
	dropOrgBaseline(b, env.App.Store)
	b.Run("none", lookup)
}

// dropOrgBaseline deletes the statistics of the *_organization_id indexes
// and makes every connection reload the rest.
func dropOrgBaseline(b *testing.B, s *store.Store) {
	ctx := context.Background()
	for _, q := range []string{`DELETE FROM sqlite_stat1 WHERE idx LIKE '%organization_id'`, "ANALYZE sqlite_schema"} {
		if _, err := s.DB.ExecContext(ctx, q); err != nil {
			b.Fatal(err)
		}
	}
	s.DB.SetMaxIdleConns(0)
	s.DB.SetMaxIdleConns(store.DefaultSQLiteMaxOpenConns)
}
