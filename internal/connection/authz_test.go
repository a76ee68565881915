package connection

import (
	"context"
	"errors"
	"testing"

	"github.com/plugboard/plugboard/internal/auth"
)

// viewers of the authorization test, in the column order of want.
var authzViewers = []struct {
	name string
	ctx  context.Context
}{
	{"admin", auth.NewContext(context.Background(), &auth.Viewer{Role: auth.RoleOrgAdmin, OrganizationID: 1})},
	{"customer", auth.NewContext(context.Background(), &auth.Viewer{Role: auth.RoleCustomerUser, OrganizationID: 1, CustomerID: 7})},
	{"customer-without-customer", auth.NewContext(context.Background(), &auth.Viewer{Role: auth.RoleCustomerUser, OrganizationID: 1})},
	{"runtime", auth.NewContext(context.Background(), &auth.Viewer{Role: auth.RoleRuntime, OrganizationID: 1})},
	{"system", auth.SystemContext(context.Background())},
	{"unknown-role", auth.NewContext(context.Background(), &auth.Viewer{Role: "AUDITOR", OrganizationID: 1})},
	{"anonymous", context.Background()},
}

// want is every action against every viewer of authzViewers: A allowed,
// F FORBIDDEN, U UNAUTHENTICATED. It is written out again on purpose: a
// change to the table must change this test too.
var want = map[Action]string{
	//                   admin customer no-customer runtime system unknown anonymous
	ReadViewer:            "AAAAFFU",
	ReadCatalog:           "AAAAFFU",
	ReadNodes:             "AAAFFFU",
	ReadConnections:       "AAAFFFU",
	ReadCredentials:       "AAAFFFU",
	ReadCustomers:         "AAAFFFU",
	ReadInstances:         "AAAFFFU",
	ReadIntegrations:      "AAAFFFU",
	ReadSlots:             "AAAAFFU",
	ReadInstanceSlots:     "AAAFFFU",
	ReadWizard:            "AAFFFFU",
	WatchCredentials:      "AAAFFFU",
	ReadAPITokens:         "AFFFFFU",
	ReadAuditLog:          "AFFFFFU",
	ReadSigningKeys:       "AFFFFFU",
	ReadUsage:             "AFFFFFU",
	ManageConnections:     "AFFFFFU",
	ManageTemplates:       "AFFFFFU",
	ManageCustomers:       "AFFFFFU",
	ManageUsers:           "AFFFFFU",
	ManageIntegrations:    "AFFFFFU",
	ManageInstances:       "AFFFFFU",
	DeployInstance:        "AFFFFFU",
	ManageOrganization:    "AFFFFFU",
	SaveCredential:        "AAFFFFU",
	SaveTestCredential:    "AFFFFFU",
	BindInstance:          "AAFFFFU",
	TestCredential:        "AFFFFFU",
	RollbackCredential:    "AFFFFFU",
	StartOAuth:            "AAAFFFU",
	DisconnectOAuth:       "AAAFFFU",
	ReadToken:             "AFFAAFU",
	ReadRuntimeValues:     "FFFAFFU",
	ManageTokens:          "AFFFFFU",
	ManageSigningKeys:     "AFFFFFU",
	RotateKeys:            "AFFFFFU",
	ReloadPlugins:         "AFFFFFU",
	ProxyCredential:       "FFFAFFU",
	ReadWebhooks:          "AFFFFFU",
	ManageWebhooks:        "AFFFFFU",
	ReadOnPremResources:   "AAFFFFU",
	ManageOnPremResources: "AFFFFFU",
}

func TestAuthorizeTable(t *testing.T) {
	for a := Action(1); a < numActions; a++ {
		cells, ok := want[a]
		if !ok || len(cells) != len(authzViewers) {
			t.Fatalf("action %d: the test has no expectation of every viewer", a)
		}
		for i, vw := range authzViewers {
			v, err := Authorize(vw.ctx, a)
			got := 'A'
			switch {
			case errors.Is(err, auth.ErrUnauthenticated):
				got = 'U'
			case errors.Is(err, auth.ErrForbidden):
				got = 'F'
			case err != nil:
				t.Errorf("action %d, %s: unexpected error %v", a, vw.name, err)
			}
			if got != rune(cells[i]) {
				t.Errorf("action %d, %s: got %c, want %c (%v)", a, vw.name, got, cells[i], err)
			}
			if got == 'A' && v != auth.FromContext(vw.ctx) {
				t.Errorf("action %d, %s: allowed, but returned viewer %+v", a, vw.name, v)
			}
			if p := Permits(auth.FromContext(vw.ctx), a); p != (got == 'A') {
				t.Errorf("action %d, %s: Permits %v disagrees with Authorize %c", a, vw.name, p, got)
			}
		}
	}
}

// Every action has a row in the table, and the table has no other rows.
func TestEveryActionIsInTheTable(t *testing.T) {
	for a := Action(1); a < numActions; a++ {
		if _, ok := table[a]; !ok {
			t.Errorf("action %d has no entry in the authorization table", a)
		}
	}
	for a := range table {
		if a < 1 || a >= numActions {
			t.Errorf("the table has a row for %d, which is no action", a)
		}
	}
	if len(want) != int(numActions)-1 {
		t.Errorf("TestAuthorizeTable expects %d actions, there are %d", len(want), numActions-1)
	}
}

// An action missing from the table is refused, never allowed.
func TestAuthorizeRefusesUnknownActions(t *testing.T) {
	admin := authzViewers[0].ctx
	for _, a := range []Action{0, numActions, -1} {
		if _, err := Authorize(admin, a); !errors.Is(err, auth.ErrForbidden) {
			t.Errorf("action %d: %v, want forbidden", a, err)
		}
	}
}

// Refusals say who may, as the FORBIDDEN message.
func TestRefusalMessages(t *testing.T) {
	customer := authzViewers[1].ctx
	tests := []struct {
		ctx  context.Context
		a    Action
		want string
	}{
		{customer, ManageConnections, "forbidden: this needs an organization admin token"},
		{authzViewers[3].ctx, ReadNodes, "forbidden"},
		{authzViewers[2].ctx, SaveCredential, "forbidden: the token names no customer"},
		{customer, ReadRuntimeValues, "forbidden: only RUNTIME tokens read credential values"},
	}
	for _, tc := range tests {
		_, err := Authorize(tc.ctx, tc.a)
		if err == nil || err.Error() != tc.want {
			t.Errorf("action %d: %v, want %q", tc.a, err, tc.want)
		}
	}
}
