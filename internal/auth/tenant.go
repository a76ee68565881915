package auth

import (
	"context"

	"entgo.io/ent/dialect/sql"

	"github.com/plugboard/plugboard/ent"
	"github.com/plugboard/plugboard/ent/intercept"
	"github.com/plugboard/plugboard/ent/organization"
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
	ent.TypeUser:               true,
}

// InstallTenantFilter makes every query of client, node lookups and edge
// traversals included, see only the rows of the viewer's organization. A
// query of tenant data without a viewer fails with ErrNoViewer.
func InstallTenantFilter(client *ent.Client) {
	client.Intercept(intercept.TraverseFunc(func(ctx context.Context, q intercept.Query) error {
		typ := q.Type()
		if !tenantTypes[typ] && typ != ent.TypeOrganization {
			return nil
		}
		v := FromContext(ctx)
		switch {
		case v == nil:
			return ErrNoViewer
		case v.IsSystem():
			return nil
		case typ == ent.TypeOrganization:
			q.WhereP(sql.FieldEQ(organization.FieldID, v.OrganizationID))
		default:
			q.WhereP(sql.FieldEQ("organization_id", v.OrganizationID))
		}
		return nil
	}))
}
