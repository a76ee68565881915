package auth

import (
	"context"

	"entgo.io/ent/dialect/sql"

	"github.com/plugboard/plugboard/ent"
	"github.com/plugboard/plugboard/ent/connection"
	"github.com/plugboard/plugboard/ent/credential"
	"github.com/plugboard/plugboard/ent/customer"
	"github.com/plugboard/plugboard/ent/instance"
	"github.com/plugboard/plugboard/ent/instancebinding"
	"github.com/plugboard/plugboard/ent/intercept"
	"github.com/plugboard/plugboard/ent/onpremresource"
	"github.com/plugboard/plugboard/ent/organization"
	"github.com/plugboard/plugboard/ent/user"
)

// tenantTypes are the ent types owned by one organization: each has an
// organization_id column (ent/schema.TenantMixin).
var tenantTypes = map[string]bool{
	ent.TypeAPIToken:           true,
	ent.TypeAuditEvent:         true,
	ent.TypeConnection:         true,
	ent.TypeConnectionSlot:     true,
	ent.TypeConnectionTemplate: true,
	ent.TypeCredential:         true,
	ent.TypeCustomer:           true,
	ent.TypeInstance:           true,
	ent.TypeInstanceBinding:    true,
	ent.TypeIntegration:        true,
	ent.TypeOAuthState:         true,
	ent.TypeSigningKey:         true,
	ent.TypeCredentialVersion:  true,
	ent.TypeUser:               true,
	ent.TypeWebhookEndpoint:    true,
	ent.TypeWebhookEvent:       true,
	ent.TypeWebhookDelivery:    true,
	ent.TypeOnPremResource:     true,
}

// InstallTenantFilter makes every query of client, node lookups and edge
// traversals included, see only the rows of the viewer's organization; a
// CUSTOMER_USER viewer sees less still (see customerUserFilter). plugboard
// itself sees every organization under SystemContext, and one under
// OrganizationContext. A query of tenant data without a viewer fails with
// ErrNoViewer.
//
// Writes are held to the viewer's organization too (tenantWriteHook): an
// update or delete of another organization's row finds nothing, and a
// create lands in the viewer's organization.
//
// customerVisible are the connection scopes whose connections and
// credentials a customer's users see: the values they enter themselves, as
// the scope table says (scopes.CustomerVisible). The caller passes them, so
// auth knows no scope rule.
func InstallTenantFilter(client *ent.Client, customerVisible []connection.Scope) {
	client.Use(tenantWriteHook)
	client.Intercept(intercept.TraverseFunc(func(ctx context.Context, q intercept.Query) error {
		typ := q.Type()
		if !tenantTypes[typ] && typ != ent.TypeOrganization {
			return nil
		}
		v := FromContext(ctx)
		switch {
		case v == nil:
			return ErrNoViewer
		case v.unfiltered():
			return nil
		case typ == ent.TypeOrganization:
			q.WhereP(sql.FieldEQ(organization.FieldID, v.OrganizationID))
			return nil
		}
		q.WhereP(sql.FieldEQ("organization_id", v.OrganizationID))
		if v.IsCustomerUser() {
			customerUserFilter(v, customerVisible, typ, q)
		}
		return nil
	}))
}

// customerUserFilter narrows a query of the viewer's organization to what a
// customer's user may see:
//
//   - Customer: its own; User: itself.
//   - Connection: the customer-visible scopes only.
//   - Credential: of a customer-visible connection, and held by its
//     customer, by an instance of its customer, or by itself.
//   - Instance and its bindings, OnPremResource: its customer's.
//   - Integration and ConnectionSlot: all of them (the catalog).
//   - AuditEvent, APIToken, SigningKey, ConnectionTemplate, OAuthState:
//     nothing.
func customerUserFilter(v *Viewer, customerVisible []connection.Scope, typ string, q intercept.Query) {
	switch typ {
	case ent.TypeCustomer:
		q.WhereP(customer.ID(v.CustomerID))
	case ent.TypeUser:
		q.WhereP(user.ID(v.UserID))
	case ent.TypeConnection:
		q.WhereP(connection.ScopeIn(customerVisible...))
	case ent.TypeCredential:
		q.WhereP(
			credential.HasConnectionWith(connection.ScopeIn(customerVisible...)),
			credential.Or(
				credential.And(credential.HolderEQ(credential.HolderCUSTOMER), credential.CustomerID(v.CustomerID)),
				credential.And(credential.HolderEQ(credential.HolderINSTANCE),
					credential.HasInstanceWith(instance.CustomerID(v.CustomerID))),
				credential.And(credential.HolderEQ(credential.HolderUSER), credential.UserID(v.UserID)),
			),
		)
	case ent.TypeInstance:
		q.WhereP(instance.CustomerID(v.CustomerID))
	case ent.TypeOnPremResource:
		q.WhereP(onpremresource.CustomerID(v.CustomerID))
	case ent.TypeInstanceBinding:
		q.WhereP(instancebinding.HasInstanceWith(instance.CustomerID(v.CustomerID)))
	case ent.TypeIntegration, ent.TypeConnectionSlot:
		// The organization's catalog of integrations.
	default:
		q.WhereP(func(s *sql.Selector) { s.Where(sql.False()) })
	}
}
