// Package auth owns who is calling: API tokens, roles, the viewer carried in
// a request's context, and the tenant filter that keeps every query and
// every write inside the viewer's organization.
package auth

import (
	"context"
	"errors"

	"github.com/plugboard/plugboard/ent/apitoken"
)

// Role is what a viewer may do.
type Role string

// Roles.
const (
	// RoleOrgAdmin manages an organization through an API token.
	RoleOrgAdmin Role = "ORG_ADMIN"
	// RoleCustomerUser is a customer's user with an embedding token.
	RoleCustomerUser Role = "CUSTOMER_USER"
	// RoleRuntime is an integration runtime reading credentials.
	RoleRuntime Role = "RUNTIME"
	// roleSystem is plugboard itself (plugin sync, background work); it is
	// never granted to a request.
	roleSystem Role = "SYSTEM"
)

// apiTokenKind is a role an API token may carry: the prefix of its
// plaintext and the role stored with it.
type apiTokenKind struct {
	role   Role
	prefix string
	stored apitoken.Role
}

// apiTokenKinds are the roles of API tokens; customer users come with
// embedding tokens, and plugboard itself with none.
var apiTokenKinds = []apiTokenKind{
	{RoleOrgAdmin, adminPrefix, apitoken.RoleORG_ADMIN},
	{RoleRuntime, runtimePrefix, apitoken.RoleRUNTIME},
}

func apiTokenKindOf(r Role) (apiTokenKind, bool) {
	for _, k := range apiTokenKinds {
		if k.role == r {
			return k, true
		}
	}
	return apiTokenKind{}, false
}

// roleOfStored is the role of a stored API token: an organization admin's
// unless it is a runtime's.
func roleOfStored(r apitoken.Role) Role {
	for _, k := range apiTokenKinds {
		if k.stored == r {
			return k.role
		}
	}
	return RoleOrgAdmin
}

// Viewer is the caller of a request.
type Viewer struct {
	Role           Role
	OrganizationID int
	// CustomerID and UserID are set for CUSTOMER_USER viewers.
	CustomerID int
	UserID     int
	// TokenID is the API token in use, 0 for embedding tokens and the
	// development mode's implicit admin.
	TokenID int
	// Actor names the viewer in the audit log, e.g. "token:42".
	Actor string
	// everyOrganization is set for plugboard itself acting across
	// organizations (SystemContext) alone: the tenant filter and the
	// write hook let it through.
	everyOrganization bool
}

// Errors of authentication and authorization.
var (
	// ErrUnauthenticated means the request carries no valid credentials.
	ErrUnauthenticated = errors.New("authentication required: send Authorization: Bearer <token>")
	// ErrForbidden means the viewer may not do this.
	ErrForbidden = errors.New("forbidden")
	// ErrNotFound means the object does not exist or is not the viewer's.
	ErrNotFound = errors.New("not found")
	// ErrNoViewer means code queried tenant data without a viewer in its
	// context: a programming error, refused rather than served unfiltered.
	ErrNoViewer = errors.New("no viewer in context")
)

type viewerKey struct{}

// NewContext returns ctx carrying v.
func NewContext(ctx context.Context, v *Viewer) context.Context {
	return context.WithValue(ctx, viewerKey{}, v)
}

// FromContext returns the viewer of ctx, or nil.
func FromContext(ctx context.Context) *Viewer {
	v, _ := ctx.Value(viewerKey{}).(*Viewer)
	return v
}

// SystemContext returns ctx acting as plugboard itself across every
// organization, unfiltered by tenant. Only server-internal work that is not
// yet inside one organization uses it: finding a token's organization, the
// plugin catalog, the sweep's list of due credentials, the key rotator. Work
// inside one organization uses OrganizationContext.
func SystemContext(ctx context.Context) context.Context {
	return NewContext(ctx, &Viewer{Role: roleSystem, Actor: "system", everyOrganization: true})
}

// OrganizationContext returns ctx acting as plugboard itself inside
// organization orgID: it sees every row of that organization, as an admin
// does, and the tenant filter and write hook hold its reads and writes to
// that organization (a row of another one is not found). An orgID that
// names no organization sees nothing. Like SystemContext it is never a
// request's viewer: it authenticates nothing and the authorization table
// grants it nothing.
func OrganizationContext(ctx context.Context, orgID int) context.Context {
	return NewContext(ctx, &Viewer{Role: roleSystem, OrganizationID: orgID, Actor: "system"})
}

// IsSystem reports whether v is plugboard itself, across organizations or
// inside one.
func (v *Viewer) IsSystem() bool { return v != nil && v.Role == roleSystem }

// IsCustomerUser reports whether v is a customer's user, whom the tenant
// filter narrows to its customer.
func (v *Viewer) IsCustomerUser() bool { return v != nil && v.Role == RoleCustomerUser }

// unfiltered reports whether v is plugboard itself across every
// organization: the one viewer the tenant filter and write hook let through.
func (v *Viewer) unfiltered() bool { return v.IsSystem() && v.everyOrganization }

// Require returns the viewer of ctx, or ErrUnauthenticated: it
// authenticates and decides nothing else. What a viewer may do is the
// authorization table's (connection.Authorize).
func Require(ctx context.Context) (*Viewer, error) {
	v := FromContext(ctx)
	if v == nil || v.IsSystem() {
		return nil, ErrUnauthenticated
	}
	return v, nil
}
