package connection

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/plugboard/plugboard/ent"
	"github.com/plugboard/plugboard/ent/connection"
	"github.com/plugboard/plugboard/ent/credential"
	"github.com/plugboard/plugboard/ent/migrate"
	"github.com/plugboard/plugboard/internal/auth"
	"github.com/plugboard/plugboard/internal/store/storetest"
)

// holderWorld is one organization with a customer, its user, and one
// connection per scope, each in a slot of one integration that the
// customer has an instance of.
type holderWorld struct {
	s     *Service
	org   *ent.Organization
	cust  *ent.Customer
	user  *ent.User
	inst  *ent.Instance
	conns map[connection.Scope]*ent.Connection
}

func newHolderWorld(t *testing.T) *holderWorld {
	t.Helper()
	ctx := context.Background()
	db := storetest.SQLite(t).Client
	w := &holderWorld{s: &Service{DB: db}, conns: map[connection.Scope]*ent.Connection{}}
	w.org = db.Organization.Create().SetName("Acme").SetSlug("acme").SaveX(ctx)
	w.cust = db.Customer.Create().SetOrganizationID(w.org.ID).SetExternalID("c1").SetName("Customer").SaveX(ctx)
	w.user = db.User.Create().SetOrganizationID(w.org.ID).SetCustomerID(w.cust.ID).SetExternalID("u1").SaveX(ctx)
	pl := db.Plugin.Create().SetName("demo").SaveX(ctx)
	ct := db.ConnectionType.Create().SetKey("demo.apiKey").SetPluginID(pl.ID).SetLabel("Demo").
		SetAuthKind("API_KEY").SetInputs(nil).SaveX(ctx)
	ig := db.Integration.Create().SetOrganizationID(w.org.ID).SetKey("ig").SetName("Integration").SaveX(ctx)
	for i, col := range scopeEnum(t) {
		c := db.Connection.Create().SetOrganizationID(w.org.ID).SetTypeID(ct.ID).
			SetStableKey("c-" + strings.ToLower(string(col))).SetName(string(col)).SetScope(col).SaveX(ctx)
		w.conns[col] = c
		db.ConnectionSlot.Create().SetOrganizationID(w.org.ID).SetIntegrationID(ig.ID).
			SetKey("s" + string(rune('a'+i))).SetLabel("Slot").SetPosition(i).SetConnectionID(c.ID).ExecX(ctx)
	}
	w.inst = db.Instance.Create().SetOrganizationID(w.org.ID).SetIntegrationID(ig.ID).
		SetCustomerID(w.cust.ID).SetName("Instance").SaveX(ctx)
	return w
}

// scopeEnum lists the values of the generated scope enum.
func scopeEnum(t *testing.T) []connection.Scope {
	t.Helper()
	for _, col := range migrate.ConnectionsColumns {
		if col.Name == connection.FieldScope {
			var out []connection.Scope
			for _, e := range col.Enums {
				out = append(out, connection.Scope(e))
			}
			return out
		}
	}
	t.Fatal("no scope column")
	return nil
}

// holderCase is a save on a connection of one scope: the holder it gets,
// or the field and code of its refusal.
type holderCase struct {
	name     string
	scope    connection.Scope
	customer bool // a customer's user saves, else an admin
	in       func(w *holderWorld) SaveCredentialInput
	holder   credential.Holder
	key      func(w *holderWorld) string
	field    string
	code     string
}

var holderCases = []holderCase{
	{name: "customer's own", scope: connection.ScopeCUSTOMER,
		in:     func(w *holderWorld) SaveCredentialInput { return SaveCredentialInput{CustomerID: w.cust.ID} },
		holder: credential.HolderCUSTOMER, key: func(w *holderWorld) string { return customerHolderKey(w.cust.ID) }},
	{name: "customer's, no customer", scope: connection.ScopeCUSTOMER,
		in: func(*holderWorld) SaveCredentialInput { return SaveCredentialInput{} }, field: "customerID", code: CodeRequired},
	{name: "customer's, with an instance", scope: connection.ScopeCUSTOMER,
		in: func(w *holderWorld) SaveCredentialInput {
			return SaveCredentialInput{CustomerID: w.cust.ID, InstanceID: w.inst.ID}
		},
		field: "instanceID", code: CodeInvalidValue},
	{name: "customer's, by its user", scope: connection.ScopeCUSTOMER, customer: true,
		in:     func(*holderWorld) SaveCredentialInput { return SaveCredentialInput{} },
		holder: credential.HolderCUSTOMER, key: func(w *holderWorld) string { return customerHolderKey(w.cust.ID) }},
	{name: "organization's part", scope: connection.ScopeORGANIZATION_CUSTOMER,
		in:     func(*holderWorld) SaveCredentialInput { return SaveCredentialInput{} },
		holder: credential.HolderORGANIZATION, key: func(*holderWorld) string { return "org" }},
	{name: "organization's per-customer part", scope: connection.ScopeORGANIZATION_CUSTOMER,
		in:     func(w *holderWorld) SaveCredentialInput { return SaveCredentialInput{CustomerID: w.cust.ID} },
		holder: credential.HolderCUSTOMER, key: func(w *holderWorld) string { return customerHolderKey(w.cust.ID) }},
	{name: "organization-managed, by a customer's user", scope: connection.ScopeORGANIZATION_CUSTOMER, customer: true,
		in: func(*holderWorld) SaveCredentialInput { return SaveCredentialInput{} }, field: "connectionID", code: CodeNotFound},
	{name: "organization-wide", scope: connection.ScopeORGANIZATION_GLOBAL,
		in:     func(*holderWorld) SaveCredentialInput { return SaveCredentialInput{} },
		holder: credential.HolderORGANIZATION, key: func(*holderWorld) string { return "org" }},
	{name: "organization-wide, with a customer", scope: connection.ScopeORGANIZATION_GLOBAL,
		in:    func(w *holderWorld) SaveCredentialInput { return SaveCredentialInput{CustomerID: w.cust.ID} },
		field: "customerID", code: CodeInvalidValue},
	{name: "organization-wide, by a customer's user", scope: connection.ScopeORGANIZATION_GLOBAL, customer: true,
		in: func(*holderWorld) SaveCredentialInput { return SaveCredentialInput{} }, field: "connectionID", code: CodeNotFound},
	{name: "instance's", scope: connection.ScopeINTEGRATION,
		in:     func(w *holderWorld) SaveCredentialInput { return SaveCredentialInput{InstanceID: w.inst.ID} },
		holder: credential.HolderINSTANCE, key: func(w *holderWorld) string { return instanceHolderKey(w.inst.ID) }},
	{name: "instance's, by its customer's user", scope: connection.ScopeINTEGRATION, customer: true,
		in:     func(w *holderWorld) SaveCredentialInput { return SaveCredentialInput{InstanceID: w.inst.ID} },
		holder: credential.HolderINSTANCE, key: func(w *holderWorld) string { return instanceHolderKey(w.inst.ID) }},
	{name: "instance's, no instance", scope: connection.ScopeINTEGRATION,
		in: func(*holderWorld) SaveCredentialInput { return SaveCredentialInput{} }, field: "instanceID", code: CodeRequired},
	{name: "instance's, with a customer", scope: connection.ScopeINTEGRATION,
		in: func(w *holderWorld) SaveCredentialInput {
			return SaveCredentialInput{CustomerID: w.cust.ID, InstanceID: w.inst.ID}
		},
		field: "customerID", code: CodeInvalidValue},
	{name: "user's", scope: connection.ScopeUSER,
		in:     func(w *holderWorld) SaveCredentialInput { return SaveCredentialInput{UserID: w.user.ID} },
		holder: credential.HolderUSER, key: func(w *holderWorld) string { return userHolderKey(w.user.ID) }},
	{name: "user's, by the user", scope: connection.ScopeUSER, customer: true,
		in:     func(*holderWorld) SaveCredentialInput { return SaveCredentialInput{} },
		holder: credential.HolderUSER, key: func(w *holderWorld) string { return userHolderKey(w.user.ID) }},
	{name: "user's, no user", scope: connection.ScopeUSER,
		in: func(*holderWorld) SaveCredentialInput { return SaveCredentialInput{} }, field: "userID", code: CodeRequired},
	{name: "user's, with an instance", scope: connection.ScopeUSER,
		in: func(w *holderWorld) SaveCredentialInput {
			return SaveCredentialInput{UserID: w.user.ID, InstanceID: w.inst.ID}
		},
		field: "instanceID", code: CodeInvalidValue},
}

// TestHolderForEveryScope: a save's holder is the one its scope's policy
// names, for an admin and for a customer's user, and every scope of the
// enum has a case.
func TestHolderForEveryScope(t *testing.T) {
	w := newHolderWorld(t)
	covered := map[connection.Scope]bool{}
	for _, tc := range holderCases {
		covered[tc.scope] = true
		t.Run(tc.name, func(t *testing.T) {
			v := &auth.Viewer{Role: auth.RoleOrgAdmin, OrganizationID: w.org.ID}
			if tc.customer {
				v = &auth.Viewer{Role: auth.RoleCustomerUser, OrganizationID: w.org.ID, CustomerID: w.cust.ID, UserID: w.user.ID}
			}
			in := tc.in(w)
			in.ConnectionID = w.conns[tc.scope].ID
			h, err := w.s.holderFor(auth.NewContext(context.Background(), v), v, w.conns[tc.scope], in)
			checkHolder(t, w, tc, h, err)
		})
	}
	for _, sc := range scopeEnum(t) {
		if !covered[sc] {
			t.Errorf("scope %s has no holder case", sc)
		}
	}
}

func checkHolder(t *testing.T, w *holderWorld, tc holderCase, h holderRef, err error) {
	t.Helper()
	if tc.code != "" {
		var ve *ValidationError
		if !errors.As(err, &ve) || len(ve.Fields) != 1 {
			t.Fatalf("err = %v, want one field error %s on %s", err, tc.code, tc.field)
		}
		if f := ve.Fields[0]; f.Code != tc.code || !slices.Equal(f.Field, []string{tc.field}) {
			t.Errorf("field error %s on %v (%s), want %s on %s", f.Code, f.Field, f.Message, tc.code, tc.field)
		}
		return
	}
	if err != nil {
		t.Fatalf("holderFor: %v", err)
	}
	if h.holder != tc.holder || h.key != tc.key(w) {
		t.Errorf("holder %s %q, want %s %q", h.holder, h.key, tc.holder, tc.key(w))
	}
}
