package store_test

import (
	"context"
	"testing"

	"github.com/plugboard/plugboard/internal/store"
	"github.com/plugboard/plugboard/internal/store/storetest"
)

// BenchmarkGetByID reads one organization by id through ent, with the
// statement cache (cached) and without it (uncached).
func BenchmarkGetByID(b *testing.B) {
	for _, bc := range []struct {
		name string
		size int
	}{{"cached", 0}, {"uncached", -1}} {
		b.Run(bc.name, func(b *testing.B) {
			ctx := context.Background()
			s := storetest.SQLite(b, store.WithStmtCacheSize(bc.size))
			org, err := s.Client.Organization.Create().SetName("Bench").SetSlug("bench").Save(ctx)
			if err != nil {
				b.Fatal(err)
			}
			for b.Loop() {
				if _, err := s.Client.Organization.Get(ctx, org.ID); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
