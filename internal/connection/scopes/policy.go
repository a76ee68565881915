// Package scopes is the table of connection scopes (DESIGN.md §1): one
// policy value per scope says who holds its credentials, who enters which
// values, whether customers see them, how the organization's and the
// customer's values merge, and what a config wizard shows. It is the only
// code that names a scope value; the domain (internal/connection) and the
// tenant filter (internal/auth) read it, so it imports neither.
//
// Adding a scope means adding one value to the table.
package scopes

import (
	"github.com/plugboard/plugboard/ent/connection"
	"github.com/plugboard/plugboard/ent/credential"
)

// Party is who enters the values of a connection's credentials.
type Party string

// Parties.
const (
	// PartyOrganization: the organization; customers never see or set them.
	PartyOrganization Party = "ORGANIZATION"
	// PartyCustomer: the customer, in a form or with an OAuth Connect.
	PartyCustomer Party = "CUSTOMER"
	// PartyUser: each of a customer's users, for themselves.
	PartyUser Party = "USER"
)

// Merge says how the organization's and a customer's values combine.
type Merge string

// Merges.
const (
	// MergeNone: one credential holds every value.
	MergeNone Merge = "NONE"
	// MergeOrgInputs: each input is marked ORG (the organization's
	// credential, the same for every customer) or CUSTOMER (the customer's
	// credential); a customer's credential works with the ORG inputs of the
	// organization's.
	MergeOrgInputs Merge = "ORG_INPUTS"
)

// WizardAction is what a config wizard shows for one connection slot.
type WizardAction string

// Wizard actions.
const (
	// WizardForm is a form with the fields the viewer may see and fill.
	WizardForm WizardAction = "FORM"
	// WizardOAuthConnect is a Connect button (OAuth 2.0 authorization code).
	WizardOAuthConnect WizardAction = "OAUTH_CONNECT"
	// WizardSelectExisting is a choice among the customer's reusable
	// credentials of the slot's connection type.
	WizardSelectExisting WizardAction = "SELECT_EXISTING"
	// WizardManagedByOrg means the organization fills the values.
	WizardManagedByOrg WizardAction = "MANAGED_BY_ORG"
)

// Policy is the rule set of one scope.
type Policy struct {
	Scope connection.Scope
	// Words name the scope in messages ("customer-scoped"); messages never
	// show the enum name.
	Words string
	// Holder holds a credential of the scope. With MergeOrgInputs the
	// organization also holds one (its ORG inputs) beside each customer's.
	Holder credential.Holder
	// EnteredBy is who enters the values.
	EnteredBy Party
	// Merge is how the organization's and a customer's values combine.
	Merge Merge
	// Wizard is the action of a slot of the scope in a config wizard.
	// WizardForm becomes OAUTH_CONNECT for an OAuth 2.0 authorization code
	// type, or SELECT_EXISTING when the customer has reusable credentials
	// and OffersExisting is set.
	Wizard WizardAction
	// Reusable: a customer's credential serves every slot of the same type
	// in its instances (SELECT_EXISTING).
	Reusable bool
	// OffersExisting: a slot of the scope may take a customer's reusable
	// credential of the same type instead of its own.
	OffersExisting bool
	// Inline: the connection belongs to one slot of one integration and is
	// made with it; no other slot names it.
	Inline bool
	// OnPrem: a credential of the scope may be bound to an on-prem resource
	// of its customer, reached through the customer's agent. As in
	// Prismatic, the connections the customer fills for itself (customer-
	// and integration-scoped) may.
	OnPrem bool
}

// table is every scope's policy, in the order of the enum.
var table = []Policy{
	{
		Scope: connection.ScopeCUSTOMER, Words: "customer-scoped",
		Holder: credential.HolderCUSTOMER, EnteredBy: PartyCustomer, Merge: MergeNone,
		Wizard: WizardForm, Reusable: true, OffersExisting: true, OnPrem: true,
	},
	{
		Scope: connection.ScopeORGANIZATION_CUSTOMER, Words: "organization-managed per-customer",
		Holder: credential.HolderCUSTOMER, EnteredBy: PartyOrganization, Merge: MergeOrgInputs,
		Wizard: WizardManagedByOrg,
	},
	{
		Scope: connection.ScopeORGANIZATION_GLOBAL, Words: "organization-wide",
		Holder: credential.HolderORGANIZATION, EnteredBy: PartyOrganization, Merge: MergeNone,
		Wizard: WizardManagedByOrg,
	},
	{
		Scope: connection.ScopeINTEGRATION, Words: "integration-scoped",
		Holder: credential.HolderINSTANCE, EnteredBy: PartyCustomer, Merge: MergeNone,
		Wizard: WizardForm, OffersExisting: true, Inline: true, OnPrem: true,
	},
	{
		Scope: connection.ScopeUSER, Words: "user-scoped",
		Holder: credential.HolderUSER, EnteredBy: PartyUser, Merge: MergeNone,
		Wizard: WizardForm,
	},
}

// unknown is the policy of a value outside the table: nobody may do
// anything with it, and customers see nothing of it.
var unknown = Policy{Words: "unknown-scope", EnteredBy: PartyOrganization, Merge: MergeNone, Wizard: WizardManagedByOrg}

// Of returns the policy of sc.
func Of(sc connection.Scope) Policy {
	for _, p := range table {
		if p.Scope == sc {
			return p
		}
	}
	u := unknown
	u.Scope = sc
	return u
}

// Known reports whether sc has a policy.
func Known(sc connection.Scope) bool {
	return Of(sc).Words != unknown.Words
}

// ManagedByOrg reports whether the organization enters the values; then
// customers never see or set them.
func (p Policy) ManagedByOrg() bool { return p.EnteredBy == PartyOrganization }

// CustomerVisible reports whether a customer's users see the scope's
// connections and credentials: those whose values they enter themselves.
func (p Policy) CustomerVisible() bool { return !p.ManagedByOrg() }

// SplitsInputs reports whether each input is marked ORG or CUSTOMER.
func (p Policy) SplitsInputs() bool { return p.Merge == MergeOrgInputs }

// OrgPart reports whether a credential held by holder is the
// organization's part of a split scope: it holds only the ORG inputs and
// is tested with a customer's credential.
func (p Policy) OrgPart(holder credential.Holder) bool {
	return p.SplitsInputs() && holder == credential.HolderORGANIZATION
}

// where returns the scopes whose policy satisfies keep, in table order.
func where(keep func(Policy) bool) []connection.Scope {
	var out []connection.Scope
	for _, p := range table {
		if keep(p) {
			out = append(out, p.Scope)
		}
	}
	return out
}

// CustomerVisible lists the scopes customers see.
func CustomerVisible() []connection.Scope { return where(Policy.CustomerVisible) }

// ManagedByOrg lists the scopes whose values the organization enters.
func ManagedByOrg() []connection.Scope { return where(Policy.ManagedByOrg) }

// Reusable lists the scopes of reusable customer credentials.
func Reusable() []connection.Scope { return where(func(p Policy) bool { return p.Reusable }) }

// OnPrem lists the scopes whose credentials may go through an on-prem
// agent.
func OnPrem() []connection.Scope { return where(func(p Policy) bool { return p.OnPrem }) }

// Inline is the scope of the connections an integration makes for one of
// its slots.
func Inline() connection.Scope { return where(func(p Policy) bool { return p.Inline })[0] }

// ReusableScope is the scope of reusable customer credentials, for
// messages.
func ReusableScope() connection.Scope { return Reusable()[0] }

// Splitting is the scope whose inputs are each marked ORG or CUSTOMER, for
// messages.
func Splitting() connection.Scope { return where(Policy.SplitsInputs)[0] }

// SaveHolderField names the field of a save (saveCredential's input) by
// which a config wizard's form names the holder of a slot's credential:
// "customerID" or "instanceID"; "" when the viewer's token names it (a
// user's own) or no wizard form saves it (the organization's values).
func (p Policy) SaveHolderField() string {
	if p.ManagedByOrg() {
		return ""
	}
	switch p.Holder {
	case credential.HolderCUSTOMER:
		return "customerID"
	case credential.HolderINSTANCE:
		return "instanceID"
	}
	return ""
}

// SaveHolderFields maps each scope whose wizard form names its holder to
// the field that does (SaveHolderField).
func SaveHolderFields() map[connection.Scope]string {
	out := map[connection.Scope]string{}
	for _, p := range table {
		if f := p.SaveHolderField(); f != "" {
			out[p.Scope] = f
		}
	}
	return out
}
