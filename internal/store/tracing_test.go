package store_test

import (
	"context"
	"strings"
	"testing"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/plugboard/plugboard/ent"
	"github.com/plugboard/plugboard/ent/organization"
	"github.com/plugboard/plugboard/internal/store"
	"github.com/plugboard/plugboard/internal/store/storetest"
)

// TestTracingDriver: with a tracer provider every statement of the ent
// client, in transactions too, is a span with db.system.name and the text
// with placeholders, never the arguments; Migrate is not traced.
func TestTracingDriver(t *testing.T) {
	const secret = "CANARY-sql-arg-3c9d"
	for _, tc := range []struct {
		name, system string
		open         func(testing.TB, ...store.Option) *store.Store
	}{
		{"sqlite", "sqlite", storetest.SQLite},
		{"postgres", "postgresql", storetest.Postgres},
	} {
		t.Run(tc.name, func(t *testing.T) {
			mem := tracetest.NewInMemoryExporter()
			tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(mem))
			s := tc.open(t, store.WithTracerProvider(tp))
			if n := len(mem.GetSpans()); n != 0 {
				t.Fatalf("Migrate made %d spans", n)
			}
			ctx := context.Background()
			org := createOrg(t, s.Client, "trace")
			err := inTx(ctx, s.Client, func(tx *ent.Tx) error {
				return tx.Organization.Update().Where(organization.ID(org.ID)).SetName(secret).Exec(ctx)
			})
			if err != nil {
				t.Fatal(err)
			}
			spans := mem.GetSpans()
			if len(spans) != 2 {
				t.Fatalf("want 2 statement spans (insert, update), got %d", len(spans))
			}
			for i, want := range []string{"INSERT", "UPDATE"} {
				sp := spans[i]
				attrs := map[string]string{}
				for _, kv := range sp.Attributes {
					attrs[string(kv.Key)] = kv.Value.String()
				}
				if sp.Name != want || attrs["db.system.name"] != tc.system || !strings.HasPrefix(attrs["db.query.text"], want) {
					t.Errorf("span %d: %s %v", i, sp.Name, attrs)
				}
				for k, v := range attrs {
					if strings.Contains(v, secret) {
						t.Errorf("span %s: attribute %s holds an argument", sp.Name, k)
					}
				}
			}
		})
	}
}
