package connection

import (
	"context"
	"fmt"
	"strings"

	"github.com/plugboard/plugboard/ent"
	"github.com/plugboard/plugboard/ent/connection"
	"github.com/plugboard/plugboard/ent/connectiontype"
	"github.com/plugboard/plugboard/ent/credential"
	"github.com/plugboard/plugboard/ent/customer"
	"github.com/plugboard/plugboard/ent/instancebinding"
	"github.com/plugboard/plugboard/ent/schema/schematype"
	"github.com/plugboard/plugboard/internal/auth"
	"github.com/plugboard/plugboard/internal/connection/scopes"
)

// CreateConnectionInput is a new connection.
type CreateConnectionInput struct {
	TypeKey       string
	StableKey     string
	Name          string
	Description   string
	Scope         connection.Scope
	BuildOnly     bool
	InputSettings map[string]schematype.InputSetting
	// TemplateID names a template of the same type whose presets fill the
	// inputs a credential leaves empty; 0 for none.
	TemplateID int
}

// CreateConnection creates a connection of a declared type in the viewer's
// organization.
func (s *Service) CreateConnection(ctx context.Context, in CreateConnectionInput) (*ent.Connection, error) {
	v, err := Authorize(ctx, ManageConnections)
	if err != nil {
		return nil, err
	}
	ct, errs, err := s.checkConnectionInput(ctx, in)
	if err != nil {
		return nil, err
	}
	if len(errs) > 0 {
		return nil, invalid(errs...)
	}
	var created *ent.Connection
	err = s.withTx(ctx, func(tx *ent.Tx) error {
		created, err = s.writeConnection(ctx, tx, v, in, ct)
		return err
	})
	if err != nil {
		return nil, err
	}
	// Entities made inside a transaction keep its (now finished) client.
	return created.Unwrap(), nil
}

// checkConnectionInput checks a new connection and returns its type.
func (s *Service) checkConnectionInput(ctx context.Context, in CreateConnectionInput) (*ent.ConnectionType, []FieldError, error) {
	var errs []FieldError
	ct, problem, err := s.declaredType(ctx, in.TypeKey)
	if err != nil {
		return nil, nil, err
	}
	if problem != "" {
		errs = append(errs, fieldErr(CodeUnknownType, problem, "typeKey"))
	}
	if !scopes.Known(in.Scope) {
		errs = append(errs, fieldErr(CodeInvalidValue, "Unknown scope.", "scope"))
	}
	if strings.TrimSpace(in.Name) == "" {
		errs = append(errs, fieldErr(CodeRequired, "A name is required.", "name"))
	} else if len(in.Name) > 200 {
		errs = append(errs, fieldErr(CodeTooLong, "The name is longer than 200 characters.", "name"))
	}
	errs = append(errs, checkChars(in.Name, displayText, "name")...)
	errs = append(errs, checkChars(in.Description, displayText, "description")...)
	if !stableKeyPattern.MatchString(in.StableKey) || len(in.StableKey) > 100 {
		errs = append(errs, fieldErr(CodeInvalidValue,
			"A stable key is 1 to 100 letters, digits, '.', '_' or '-', starting with a letter or digit.", "stableKey"))
	}
	if len(in.Description) > 2000 {
		errs = append(errs, fieldErr(CodeTooLong, "The description is longer than 2000 characters.", "description"))
	}
	if ct != nil {
		errs = append(errs, checkInputSettings(ct.Inputs, in.Scope, in.InputSettings)...)
		if in.TemplateID != 0 {
			errs = append(errs, s.checkTemplate(ctx, in.TemplateID, ct.ID)...)
		}
	}
	return ct, errs, nil
}

// writeConnection stores a checked connection under a free stable key and
// audits it.
func (s *Service) writeConnection(ctx context.Context, tx *ent.Tx, v *auth.Viewer, in CreateConnectionInput, ct *ent.ConnectionType) (*ent.Connection, error) {
	taken, err := tx.Connection.Query().Where(connection.StableKey(in.StableKey)).Exist(ctx)
	if err != nil {
		return nil, err
	}
	if taken {
		return nil, invalid(fieldErr(CodeTaken, "Another connection has this stable key.", "stableKey"))
	}
	created, err := tx.Connection.Create().
		SetOrganizationID(v.OrganizationID).
		SetTypeID(ct.ID).
		SetStableKey(in.StableKey).
		SetName(strings.TrimSpace(in.Name)).
		SetDescription(in.Description).
		SetScope(in.Scope).
		SetBuildOnly(in.BuildOnly).
		SetInputSettings(in.InputSettings).
		SetNillableTemplateID(nilIfZero(in.TemplateID)).
		Save(ctx)
	if err != nil {
		return nil, err
	}
	return created, s.audit(ctx, tx.Client(), v, auditEntry{
		connectionID: created.ID, action: "connection.created",
		message: fmt.Sprintf("connection %s of type %s created with scope %s", created.StableKey, ct.Key, created.Scope),
	})
}

// checkInputSettings checks a connection's per-input settings: known
// inputs, a known source, and a source only where the scope splits its
// inputs between the organization and each customer.
func checkInputSettings(inputs []schematype.Input, scope connection.Scope, settings map[string]schematype.InputSetting) []FieldError {
	var errs []FieldError
	for key, st := range settings {
		if findInput(inputs, key) == nil {
			errs = append(errs, fieldErr(CodeUnknownInput, "The type declares no input "+quote(key)+".", "inputSettings", key))
			continue
		}
		switch st.Source {
		case "", schematype.InputSourceOrg, schematype.InputSourceCustomer:
		default:
			errs = append(errs, fieldErr(CodeInvalidValue, "The source is ORG or CUSTOMER.", "inputSettings", key, "source"))
			continue
		}
		if st.Source != "" && !scopes.Of(scope).SplitsInputs() {
			errs = append(errs, fieldErr(CodeInvalidValue,
				"Only "+ScopeWords(scopes.Splitting())+" connections say who fills each input.", "inputSettings", key, "source"))
		}
	}
	return errs
}

// UpdateConnectionInput changes a connection; nil fields stay as they are.
type UpdateConnectionInput struct {
	ID          int
	Name        *string
	Description *string
	BuildOnly   *bool
}

// UpdateConnection changes a connection's name, description or build-only
// flag.
func (s *Service) UpdateConnection(ctx context.Context, in UpdateConnectionInput) (*ent.Connection, error) {
	v, err := Authorize(ctx, ManageConnections)
	if err != nil {
		return nil, err
	}
	errs := checkNewName(in.Name)
	if in.Description != nil {
		errs = append(errs, checkChars(*in.Description, displayText, "description")...)
	}
	if in.Description != nil && len(*in.Description) > 2000 {
		errs = append(errs, fieldErr(CodeTooLong, "The description is longer than 2000 characters.", "description"))
	}
	if len(errs) > 0 {
		return nil, invalid(errs...)
	}
	var updated *ent.Connection
	err = s.withTx(ctx, func(tx *ent.Tx) error {
		c, err := tx.Connection.Query().Where(connection.ID(in.ID)).Only(ctx)
		if ent.IsNotFound(err) {
			return notFound("connection", in.ID)
		}
		if err != nil {
			return err
		}
		u := c.Update()
		if in.Name != nil {
			u.SetName(strings.TrimSpace(*in.Name))
		}
		if in.Description != nil {
			u.SetDescription(*in.Description)
		}
		if in.BuildOnly != nil {
			u.SetBuildOnly(*in.BuildOnly)
		}
		if updated, err = u.Save(ctx); err != nil {
			return err
		}
		return s.audit(ctx, tx.Client(), v, auditEntry{
			connectionID: c.ID, action: "connection.updated", message: "connection " + c.StableKey + " updated",
		})
	})
	if err != nil {
		return nil, err
	}
	return updated.Unwrap(), nil
}

// DeleteConnection deletes a connection and its credentials. A connection
// that an integration uses is refused, naming what uses it.
func (s *Service) DeleteConnection(ctx context.Context, id int) error {
	v, err := Authorize(ctx, ManageConnections)
	if err != nil {
		return err
	}
	return s.withTx(ctx, func(tx *ent.Tx) error {
		c, err := tx.Connection.Query().Where(connection.ID(id)).WithSlots(func(q *ent.ConnectionSlotQuery) {
			q.WithIntegration(func(q *ent.IntegrationQuery) {
				q.WithInstances(func(q *ent.InstanceQuery) { q.WithCustomer() })
			})
		}).Only(ctx)
		if ent.IsNotFound(err) {
			return notFound("connection", id)
		}
		if err != nil {
			return err
		}
		if len(c.Edges.Slots) > 0 {
			return invalid(fieldErr(CodeInUse, "The connection is in use by "+strings.Join(slotUses(c), ", ")+".", "id"))
		}
		if err := refuseBoundCredentials(ctx, tx, id); err != nil {
			return err
		}
		if err := s.deleteCredentialsOf(ctx, tx, v, id); err != nil {
			return err
		}
		if err := tx.Connection.DeleteOneID(id).Exec(ctx); err != nil {
			return err
		}
		return s.audit(ctx, tx.Client(), v, auditEntry{
			action: "connection.deleted", message: "connection " + c.StableKey + " deleted",
		})
	})
}

// slotUses names the integrations (and their instances) whose slots use c.
func slotUses(c *ent.Connection) []string {
	var users []string
	for _, sl := range c.Edges.Slots {
		ig := sl.Edges.Integration
		if ig == nil {
			continue
		}
		use := fmt.Sprintf("integration %s (slot %s)", ig.Key, sl.Key)
		if len(ig.Edges.Instances) > 0 {
			var insts []string
			for _, inst := range ig.Edges.Instances {
				insts = append(insts, fmt.Sprintf("%q of customer %s", inst.Name, customerExternalID(inst)))
			}
			use += " with instances " + strings.Join(insts, ", ")
		}
		users = append(users, use)
	}
	return users
}

// customerExternalID is the external id of an instance's loaded customer,
// "?" when it is not loaded.
func customerExternalID(inst *ent.Instance) string {
	if inst.Edges.Customer != nil {
		return inst.Edges.Customer.ExternalID
	}
	return "?"
}

// refuseBoundCredentials refuses to delete a connection a customer's
// credential of which serves a slot of another connection of the same
// type, naming the instances.
func refuseBoundCredentials(ctx context.Context, tx *ent.Tx, id int) error {
	bound, err := tx.InstanceBinding.Query().
		Where(instancebinding.HasCredentialWith(credential.ConnectionID(id))).
		WithInstance(func(q *ent.InstanceQuery) { q.WithCustomer() }).WithSlot().All(ctx)
	if err != nil || len(bound) == 0 {
		return err
	}
	var users []string
	for _, b := range bound {
		if inst := b.Edges.Instance; inst != nil && b.Edges.Slot != nil {
			users = append(users, fmt.Sprintf("instance %q of customer %s (slot %s)", inst.Name, customerExternalID(inst), b.Edges.Slot.Key))
		}
	}
	return invalid(fieldErr(CodeInUse, "The connection's credentials are in use by "+strings.Join(users, ", ")+".", "id"))
}

// deleteCredentialsOf deletes a connection's credentials and their
// versions. Audit events keep their connection id as history.
func (s *Service) deleteCredentialsOf(ctx context.Context, tx *ent.Tx, v *auth.Viewer, id int) error {
	credIDs, err := tx.Credential.Query().Where(credential.ConnectionID(id)).IDs(ctx)
	if err != nil || len(credIDs) == 0 {
		return err
	}
	if err := s.auditDeleted(ctx, tx.Client(), v, credIDs); err != nil {
		return err
	}
	if err := DeleteVersionsOf(ctx, tx.Client(), credIDs); err != nil {
		return err
	}
	s.closeRuntimeForwarders(credIDs)
	_, err = tx.Credential.Delete().Where(credential.IDIn(credIDs...)).Exec(ctx)
	return err
}

// auditDeleted writes a credential.deleted entry for each of the
// credentials ids, read before they are deleted in the same transaction.
func (s *Service) auditDeleted(ctx context.Context, db *ent.Client, v *auth.Viewer, ids []int) error {
	creds, err := db.Credential.Query().Where(credential.IDIn(ids...)).All(ctx)
	if err != nil {
		return err
	}
	for _, c := range creds {
		e := credentialEntry(c, v.Actor, EventCredentialDeleted, fmt.Sprintf("credential %d deleted", c.ID))
		if err := s.writeAudit(ctx, db, e); err != nil {
			return err
		}
	}
	return nil
}

// CreateCustomer creates a customer of the viewer's organization.
func (s *Service) CreateCustomer(ctx context.Context, externalID, name string) (*ent.Customer, error) {
	v, err := Authorize(ctx, ManageCustomers)
	if err != nil {
		return nil, err
	}
	var errs []FieldError
	if strings.TrimSpace(externalID) == "" || len(externalID) > 200 {
		errs = append(errs, fieldErr(CodeInvalidValue, "An external id is 1 to 200 characters.", "externalID"))
	}
	if strings.TrimSpace(name) == "" || len(name) > 200 {
		errs = append(errs, fieldErr(CodeInvalidValue, "A name is 1 to 200 characters.", "name"))
	}
	errs = append(errs, checkChars(externalID, identifier, "externalID")...)
	errs = append(errs, checkChars(name, displayText, "name")...)
	if len(errs) > 0 {
		return nil, invalid(errs...)
	}
	var c *ent.Customer
	err = s.withTx(ctx, func(tx *ent.Tx) error {
		taken, err := tx.Customer.Query().Where(customer.ExternalID(externalID)).Exist(ctx)
		if err != nil {
			return err
		}
		if taken {
			return invalid(fieldErr(CodeTaken, "Another customer has this external id.", "externalID"))
		}
		c, err = tx.Customer.Create().SetOrganizationID(v.OrganizationID).
			SetExternalID(externalID).SetName(strings.TrimSpace(name)).Save(ctx)
		return err
	})
	if err != nil {
		return nil, err
	}
	return c.Unwrap(), nil
}

func nilIfZero(n int) *int {
	if n == 0 {
		return nil
	}
	return &n
}

// declaredType returns the connection type with key. A key no plugin
// declares gives (nil, problem); a type whose plugin no longer declares it
// gives (ct, problem). problem is a message for the caller's field error.
func (s *Service) declaredType(ctx context.Context, key string) (*ent.ConnectionType, string, error) {
	ct, err := s.DB.ConnectionType.Query().Where(connectiontype.Key(key)).Only(ctx)
	switch {
	case ent.IsNotFound(err):
		return nil, fmt.Sprintf("No plugin declares a connection type %q.", clip(key, 100)), nil
	case err != nil:
		return nil, "", err
	case !ct.Available:
		return ct, fmt.Sprintf("The plugin that declared %q no longer does.", ct.Key), nil
	}
	return ct, "", nil
}

// checkNewName checks a new display name (nil: the name is not changed):
// 1 to 200 characters of display text.
func checkNewName(name *string) []FieldError {
	switch {
	case name == nil:
		return nil
	case strings.TrimSpace(*name) == "" || len(*name) > 200:
		return []FieldError{fieldErr(CodeInvalidValue, "A name is 1 to 200 characters.", "name")}
	}
	return checkChars(*name, displayText, "name")
}
