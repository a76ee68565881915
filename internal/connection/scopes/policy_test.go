package scopes_test

import (
	"slices"
	"testing"

	"github.com/plugboard/plugboard/ent/connection"
	"github.com/plugboard/plugboard/ent/credential"
	"github.com/plugboard/plugboard/ent/migrate"
	"github.com/plugboard/plugboard/internal/connection/scopes"
)

// enumScopes are the values of the generated scope enum: a scope added to
// the ent schema shows here, and fails the test until it has a policy.
func enumScopes(t *testing.T) []connection.Scope {
	t.Helper()
	for _, col := range migrate.ConnectionsColumns {
		if col.Name == connection.FieldScope {
			out := make([]connection.Scope, 0, len(col.Enums))
			for _, e := range col.Enums {
				out = append(out, connection.Scope(e))
			}
			return out
		}
	}
	t.Fatal("the connections table has no scope column")
	return nil
}

// want is the policy of every scope as DESIGN.md §1 states it, with what
// each derived rule answers.
type want struct {
	policy                                 scopes.Policy
	managedByOrg, customerVisible, splits  bool
	orgPartOfOrg, orgPartOfCustomer, known bool
	saveField                              string
}

var wants = map[connection.Scope]want{
	connection.ScopeCUSTOMER: {policy: scopes.Policy{
		Scope: connection.ScopeCUSTOMER, Words: "customer-scoped", Holder: credential.HolderCUSTOMER,
		EnteredBy: scopes.PartyCustomer, Merge: scopes.MergeNone, Wizard: scopes.WizardForm,
		Reusable: true, OffersExisting: true, OnPrem: true,
	}, customerVisible: true, known: true, saveField: "customerID"},
	connection.ScopeORGANIZATION_CUSTOMER: {policy: scopes.Policy{
		Scope: connection.ScopeORGANIZATION_CUSTOMER, Words: "organization-managed per-customer",
		Holder: credential.HolderCUSTOMER, EnteredBy: scopes.PartyOrganization, Merge: scopes.MergeOrgInputs,
		Wizard: scopes.WizardManagedByOrg,
	}, managedByOrg: true, splits: true, orgPartOfOrg: true, known: true},
	connection.ScopeORGANIZATION_GLOBAL: {policy: scopes.Policy{
		Scope: connection.ScopeORGANIZATION_GLOBAL, Words: "organization-wide", Holder: credential.HolderORGANIZATION,
		EnteredBy: scopes.PartyOrganization, Merge: scopes.MergeNone, Wizard: scopes.WizardManagedByOrg,
	}, managedByOrg: true, known: true},
	connection.ScopeINTEGRATION: {policy: scopes.Policy{
		Scope: connection.ScopeINTEGRATION, Words: "integration-scoped", Holder: credential.HolderINSTANCE,
		EnteredBy: scopes.PartyCustomer, Merge: scopes.MergeNone, Wizard: scopes.WizardForm,
		OffersExisting: true, Inline: true, OnPrem: true,
	}, customerVisible: true, known: true, saveField: "instanceID"},
	connection.ScopeUSER: {policy: scopes.Policy{
		Scope: connection.ScopeUSER, Words: "user-scoped", Holder: credential.HolderUSER,
		EnteredBy: scopes.PartyUser, Merge: scopes.MergeNone, Wizard: scopes.WizardForm,
	}, customerVisible: true, known: true},
}

func TestEveryScopeHasItsPolicy(t *testing.T) {
	for _, sc := range enumScopes(t) {
		t.Run(string(sc), func(t *testing.T) {
			w, ok := wants[sc]
			if !ok {
				t.Fatalf("scope %s has no expected policy in this test: add one, and its value to the table", sc)
			}
			p := scopes.Of(sc)
			if p != w.policy {
				t.Errorf("policy\n got %+v\nwant %+v", p, w.policy)
			}
			checks := []struct {
				name      string
				got, want bool
			}{
				{"Known", scopes.Known(sc), w.known},
				{"wizard action is MANAGED_BY_ORG", p.Wizard == scopes.WizardManagedByOrg, w.managedByOrg},
				{"ManagedByOrg", p.ManagedByOrg(), w.managedByOrg},
				{"CustomerVisible", p.CustomerVisible(), w.customerVisible},
				{"SplitsInputs", p.SplitsInputs(), w.splits},
				{"OrgPart(ORGANIZATION)", p.OrgPart(credential.HolderORGANIZATION), w.orgPartOfOrg},
				{"OrgPart(CUSTOMER)", p.OrgPart(credential.HolderCUSTOMER), w.orgPartOfCustomer},
				{"in CustomerVisible()", slices.Contains(scopes.CustomerVisible(), sc), w.customerVisible},
				{"in ManagedByOrg()", slices.Contains(scopes.ManagedByOrg(), sc), w.managedByOrg},
				{"in Reusable()", slices.Contains(scopes.Reusable(), sc), w.policy.Reusable},
				{"is Inline()", scopes.Inline() == sc, w.policy.Inline},
				{"is Splitting()", scopes.Splitting() == sc, w.splits},
			}
			if got := p.SaveHolderField(); got != w.saveField {
				t.Errorf("SaveHolderField = %q, want %q", got, w.saveField)
			}
			if got := scopes.SaveHolderFields()[sc]; got != w.saveField {
				t.Errorf("SaveHolderFields()[%s] = %q, want %q", sc, got, w.saveField)
			}
			for _, c := range checks {
				if c.got != c.want {
					t.Errorf("%s = %v, want %v", c.name, c.got, c.want)
				}
			}
		})
	}
}

func TestEveryPolicyIsAnEnumValue(t *testing.T) {
	enum := enumScopes(t)
	for sc := range wants {
		if !slices.Contains(enum, sc) {
			t.Errorf("scope %s has a policy but is not in the ent enum", sc)
		}
	}
	if len(wants) != len(enum) {
		t.Errorf("%d expected policies for %d enum values", len(wants), len(enum))
	}
}

// An unknown value is kept away from customers and named as such.
func TestUnknownScope(t *testing.T) {
	p := scopes.Of("SOMETHING_ELSE")
	if scopes.Known("SOMETHING_ELSE") || p.CustomerVisible() || p.Words != "unknown-scope" || p.Wizard != scopes.WizardManagedByOrg {
		t.Errorf("unknown scope policy %+v", p)
	}
}

// The visible and organization-managed scopes partition the enum.
func TestVisibleAndManagedPartitionTheScopes(t *testing.T) {
	all := append(scopes.CustomerVisible(), scopes.ManagedByOrg()...)
	enum := enumScopes(t)
	slices.Sort(all)
	slices.Sort(enum)
	if !slices.Equal(all, enum) {
		t.Errorf("visible+managed = %v, enum = %v", all, enum)
	}
}
