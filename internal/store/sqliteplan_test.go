package store_test

import (
	"context"
	"strings"
	"testing"

	"entgo.io/ent/dialect"
	entsql "entgo.io/ent/dialect/sql"

	"github.com/plugboard/plugboard/ent"
	"github.com/plugboard/plugboard/ent/credential"
	"github.com/plugboard/plugboard/internal/auth"
	"github.com/plugboard/plugboard/internal/store/storetest"
)

// capturingDriver records the last query ent runs.
type capturingDriver struct {
	dialect.Driver
	query string
	args  []any
}

func (d *capturingDriver) Query(ctx context.Context, query string, args, v any) error {
	d.query, d.args = query, args.([]any)
	return d.Driver.Query(ctx, query, args, v)
}

// TestHolderLookupPlan: on a freshly migrated SQLite database, the save's
// holder lookup (internal/connection save.holder, with the tenant filter's
// organization_id) goes through the (connection_id, holder_key, is_test)
// index, not through credential_organization_id, which would walk every
// credential of the organization.
func TestHolderLookupPlan(t *testing.T) {
	s := storetest.SQLite(t)
	capture := &capturingDriver{Driver: entsql.OpenDB(dialect.SQLite, s.DB)}
	client := ent.NewClient(ent.Driver(capture))
	auth.InstallTenantFilter(client, nil)
	ctx := auth.OrganizationContext(context.Background(), 7)
	_, err := client.Credential.Query().
		Where(credential.ConnectionID(3), credential.HolderKey("org"), credential.IsTest(false)).
		Only(ctx)
	if !ent.IsNotFound(err) {
		t.Fatalf("lookup: %v", err)
	}
	if !strings.Contains(capture.query, "organization_id") || !strings.Contains(capture.query, "holder_key") {
		t.Fatalf("not the holder lookup: %s", capture.query)
	}
	rows, err := s.DB.QueryContext(ctx, "EXPLAIN QUERY PLAN "+capture.query, capture.args...)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var plan []string
	for rows.Next() {
		var id, parent, unused int
		var detail string
		if err := rows.Scan(&id, &parent, &unused, &detail); err != nil {
			t.Fatal(err)
		}
		plan = append(plan, detail)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	got := strings.Join(plan, "; ")
	if !strings.Contains(got, "credential_connection_id_holder_key_is_test") || strings.Contains(got, "credential_organization_id") {
		t.Fatalf("query %s\nplan: %s\nwant the credential_connection_id_holder_key_is_test index", capture.query, got)
	}
	t.Logf("plan: %s", got)
}
