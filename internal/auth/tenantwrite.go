package auth

import (
	"context"
	"fmt"

	"entgo.io/ent/dialect/sql"

	"github.com/plugboard/plugboard/ent"
	"github.com/plugboard/plugboard/ent/organization"
)

// orgField is the column of every tenant type (ent/schema.TenantMixin).
const orgField = "organization_id"

// predicateMutation is what every generated mutation offers to narrow an
// update or a delete by a raw SQL predicate.
type predicateMutation interface {
	WhereP(...func(*sql.Selector))
}

// tenantWriteHook keeps every write of tenant data inside the viewer's
// organization, as the read filter does for queries:
//
//   - Update, UpdateOne, Delete and DeleteOne gain the predicate
//     organization_id = viewer's, so a row of another organization is not
//     found (UpdateOne and DeleteOne return *ent.NotFoundError) and nothing
//     changes.
//   - Create sets organization_id to the viewer's when unset, and refuses
//     one naming another organization.
//   - An Organization is written only as the viewer's own; creating one is
//     plugboard's work alone.
//
// plugboard itself across organizations (SystemContext) bypasses; inside one
// (OrganizationContext) it is held to that organization like any viewer. A
// write of tenant data without a viewer fails with ErrNoViewer.
func tenantWriteHook(next ent.Mutator) ent.Mutator {
	return ent.MutateFunc(func(ctx context.Context, m ent.Mutation) (ent.Value, error) {
		typ := m.Type()
		if !tenantTypes[typ] && typ != ent.TypeOrganization {
			return next.Mutate(ctx, m)
		}
		v := FromContext(ctx)
		switch {
		case v == nil:
			return nil, fmt.Errorf("%s %s: %w", m.Op(), typ, ErrNoViewer)
		case v.unfiltered():
			return next.Mutate(ctx, m)
		}
		if err := constrainWrite(v, m); err != nil {
			return nil, err
		}
		return next.Mutate(ctx, m)
	})
}

// constrainWrite narrows m to the organization of v, or refuses it.
func constrainWrite(v *Viewer, m ent.Mutation) error {
	column := orgField
	if m.Type() == ent.TypeOrganization {
		column = organization.FieldID
	}
	if m.Op().Is(ent.OpCreate) {
		return checkCreate(v, m, column)
	}
	pm, ok := m.(predicateMutation)
	if !ok {
		// Every generated mutation has WhereP; refuse rather than write
		// unfiltered if that ever changes.
		return fmt.Errorf("%s %s: cannot apply the tenant filter", m.Op(), m.Type())
	}
	pm.WhereP(sql.FieldEQ(column, v.OrganizationID))
	return nil
}

// checkCreate sets the organization of a new tenant row to the viewer's, and
// refuses a row of another organization (reported as not found, like a write
// to a row the viewer cannot see) or a new organization.
func checkCreate(v *Viewer, m ent.Mutation, column string) error {
	if m.Type() == ent.TypeOrganization {
		return fmt.Errorf("create %s: %w: only plugboard itself creates organizations", m.Type(), ErrForbidden)
	}
	got, ok := m.Field(column)
	if !ok {
		return m.SetField(column, v.OrganizationID)
	}
	if id, isInt := got.(int); !isInt || id != v.OrganizationID {
		return fmt.Errorf("create %s: organization %v: %w", m.Type(), got, ErrNotFound)
	}
	return nil
}
