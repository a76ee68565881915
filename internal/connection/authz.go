package connection

import (
	"context"
	"fmt"

	"github.com/plugboard/plugboard/internal/auth"
)

// Action is one operation a viewer may be allowed to do. Every operation
// of the API and of the runtime endpoint names its action, and Authorize
// decides it from table: no other code compares roles.
type Action int

// Actions, one per operation (or per family of operations that always go
// together, such as creating, changing and deleting connections).
const (
	// ReadViewer reads who the caller is.
	ReadViewer Action = iota + 1
	// ReadCatalog reads the plugins and connection types.
	ReadCatalog
	// ReadNodes looks objects up by global id (node, nodes).
	ReadNodes
	// ReadConnections lists connections.
	ReadConnections
	// ReadCredentials lists credentials.
	ReadCredentials
	// ReadCustomers lists customers.
	ReadCustomers
	// ReadInstances lists instances.
	ReadInstances
	// ReadIntegrations lists integrations.
	ReadIntegrations
	// ReadSlots reads an integration's connection slots.
	ReadSlots
	// ReadInstanceSlots reads an instance's slots and what each uses.
	ReadInstanceSlots
	// ReadWizard reads an instance's config wizard.
	ReadWizard
	// WatchCredentials subscribes to credential status changes.
	WatchCredentials
	// ReadAPITokens lists the organization's API tokens.
	ReadAPITokens
	// ReadAuditLog lists the organization's audit events.
	ReadAuditLog
	// ReadSigningKeys lists the organization's embedding signing keys.
	ReadSigningKeys
	// ReadUsage reads what uses a connection.
	ReadUsage
	// ManageConnections creates, changes and deletes connections.
	ManageConnections
	// ManageTemplates creates connection templates.
	ManageTemplates
	// ManageCustomers creates customers.
	ManageCustomers
	// ManageUsers creates users of customers.
	ManageUsers
	// ManageIntegrations creates integrations.
	ManageIntegrations
	// ManageInstances creates and deletes instances.
	ManageInstances
	// DeployInstance deploys an instance.
	DeployInstance
	// ManageOrganization changes the organization's settings.
	ManageOrganization
	// SaveCredential saves a credential's values.
	SaveCredential
	// SaveTestCredential saves a test credential (isTest).
	SaveTestCredential
	// BindInstance binds an instance's slot to a credential.
	BindInstance
	// TestCredential runs the live test of a stored credential.
	TestCredential
	// RollbackCredential makes an earlier version of a credential live.
	RollbackCredential
	// StartOAuth starts an OAuth 2.0 authorization of a credential.
	StartOAuth
	// DisconnectOAuth revokes and erases a credential's OAuth 2.0 tokens.
	DisconnectOAuth
	// ReadToken reads a fresh OAuth 2.0 access token of a credential.
	ReadToken
	// ReadRuntimeValues reads a credential's decrypted values (the runtime
	// endpoint) and records the read.
	ReadRuntimeValues
	// ManageTokens issues and revokes API tokens.
	ManageTokens
	// ManageSigningKeys registers and revokes embedding signing keys.
	ManageSigningKeys
	// RotateKeys rotates the plugboard-wide data key.
	RotateKeys
	// ReloadPlugins re-reads the plugin directory and lock file.
	ReloadPlugins
	// ProxyCredential calls a credential's API through the credential
	// proxy, which injects the credential; each call is audited.
	ProxyCredential
	// ReadWebhooks lists webhook endpoints, their deliveries and the
	// event types.
	ReadWebhooks
	// ManageWebhooks creates, changes, deletes and rotates webhook
	// endpoints and redelivers events.
	ManageWebhooks
	// ReadOnPremResources lists a customer's on-prem resources and their
	// agents' state; a customer's user reads its own customer's (the
	// wizard shows them).
	ReadOnPremResources
	// ManageOnPremResources creates, rotates the token of and deletes
	// on-prem resources.
	ManageOnPremResources

	numActions // not an action: the count, for tests
)

// allow is one cell of the table.
type allow uint8

const (
	no allow = iota
	yes
	// own: a customer's user whose token names its customer.
	own
)

// grant is one row of the table: who may, and what a refusal says.
type grant struct {
	admin, customer, runtime, system allow
	// need completes the FORBIDDEN message ("forbidden: " + need); empty
	// for a bare "forbidden".
	need string
}

const (
	needAdmin         = "this needs an organization admin token"
	needAdminCustomer = "this needs an organization admin or a customer user"
)

// table decides who may do what. RUNTIME tokens read values through the
// runtime endpoint, not through GraphQL lists; the tenant filter narrows
// what a customer's user sees of what it may read. The system viewer is
// plugboard itself, never a request.
var table = map[Action]grant{
	//                     admin customer runtime system
	ReadViewer:            {yes, yes, yes, no, ""},
	ReadCatalog:           {yes, yes, yes, no, ""},
	ReadNodes:             {yes, yes, no, no, ""},
	ReadConnections:       {yes, yes, no, no, ""},
	ReadCredentials:       {yes, yes, no, no, ""},
	ReadCustomers:         {yes, yes, no, no, ""},
	ReadInstances:         {yes, yes, no, no, ""},
	ReadIntegrations:      {yes, yes, no, no, ""},
	ReadSlots:             {yes, yes, yes, no, ""},
	ReadInstanceSlots:     {yes, yes, no, no, "this needs an admin or the instance's customer"},
	ReadWizard:            {yes, own, no, no, ""},
	WatchCredentials:      {yes, yes, no, no, ""},
	ReadAPITokens:         {yes, no, no, no, needAdmin},
	ReadAuditLog:          {yes, no, no, no, needAdmin},
	ReadSigningKeys:       {yes, no, no, no, needAdmin},
	ReadUsage:             {yes, no, no, no, needAdmin},
	ManageConnections:     {yes, no, no, no, needAdmin},
	ManageTemplates:       {yes, no, no, no, needAdmin},
	ManageCustomers:       {yes, no, no, no, needAdmin},
	ManageUsers:           {yes, no, no, no, needAdmin},
	ManageIntegrations:    {yes, no, no, no, needAdmin},
	ManageInstances:       {yes, no, no, no, needAdmin},
	DeployInstance:        {yes, no, no, no, needAdmin},
	ManageOrganization:    {yes, no, no, no, needAdmin},
	SaveCredential:        {yes, own, no, no, needAdmin},
	SaveTestCredential:    {yes, no, no, no, needAdmin},
	BindInstance:          {yes, own, no, no, needAdmin},
	TestCredential:        {yes, no, no, no, needAdmin},
	RollbackCredential:    {yes, no, no, no, needAdmin},
	StartOAuth:            {yes, yes, no, no, needAdminCustomer},
	DisconnectOAuth:       {yes, yes, no, no, needAdminCustomer},
	ReadToken:             {yes, no, yes, yes, "reading a token needs a runtime or admin token"},
	ReadRuntimeValues:     {no, no, yes, no, "only RUNTIME tokens read credential values"},
	ManageTokens:          {yes, no, no, no, needAdmin},
	ManageSigningKeys:     {yes, no, no, no, needAdmin},
	RotateKeys:            {yes, no, no, no, needAdmin},
	ReloadPlugins:         {yes, no, no, no, needAdmin},
	ProxyCredential:       {no, no, yes, no, "only RUNTIME tokens call through the credential proxy"},
	ReadWebhooks:          {yes, no, no, no, needAdmin},
	ManageWebhooks:        {yes, no, no, no, needAdmin},
	ReadOnPremResources:   {yes, own, no, no, needAdminCustomer},
	ManageOnPremResources: {yes, no, no, no, needAdmin},
}

// Authorize returns the viewer of ctx if it may do a: ErrUnauthenticated
// without a viewer, a *Refusal (wrapping ErrForbidden) when the table
// refuses.
func Authorize(ctx context.Context, a Action) (*auth.Viewer, error) {
	v := auth.FromContext(ctx)
	if v == nil {
		return nil, auth.ErrUnauthenticated
	}
	if err := decide(v, a); err != nil {
		return nil, err
	}
	return v, nil
}

// Permits reports whether v may do a.
func Permits(v *auth.Viewer, a Action) bool {
	return v != nil && decide(v, a) == nil
}

// Refusal is the error of an action the table refuses. It wraps
// auth.ErrForbidden; Need says who may, for people.
type Refusal struct {
	Need string
}

func (r *Refusal) Error() string {
	if r.Need == "" {
		return auth.ErrForbidden.Error()
	}
	return auth.ErrForbidden.Error() + ": " + r.Need
}

// Unwrap makes a Refusal an auth.ErrForbidden.
func (r *Refusal) Unwrap() error { return auth.ErrForbidden }

// decide is the table's answer for a viewer that is not nil.
func decide(v *auth.Viewer, a Action) error {
	g, ok := table[a]
	if !ok {
		return &Refusal{Need: fmt.Sprintf("action %d is not in the authorization table", a)}
	}
	switch g.cell(v) {
	case yes:
		return nil
	case own:
		if v.CustomerID != 0 {
			return nil
		}
		return &Refusal{Need: "the token names no customer"}
	}
	return &Refusal{Need: g.need}
}

// cell is the table's answer for v's role; no for nil and unknown roles.
func (g grant) cell(v *auth.Viewer) allow {
	switch {
	case v == nil:
		return no
	case v.IsSystem():
		return g.system
	}
	switch v.Role {
	case auth.RoleOrgAdmin:
		return g.admin
	case auth.RoleCustomerUser:
		return g.customer
	case auth.RoleRuntime:
		return g.runtime
	}
	return no
}

// customerBound reports whether v acts for one customer: it sees and
// changes only that customer's objects, and only the inputs shown to
// customers. Admins, runtimes and plugboard itself see the organization's
// view.
func customerBound(v *auth.Viewer) bool {
	return v.IsCustomerUser()
}
