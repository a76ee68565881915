package connection

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	"github.com/plugboard/plugboard/ent"
	"github.com/plugboard/plugboard/ent/connection"
	"github.com/plugboard/plugboard/ent/connectionslot"
	"github.com/plugboard/plugboard/ent/integration"
	"github.com/plugboard/plugboard/internal/auth"
	"github.com/plugboard/plugboard/internal/connection/scopes"
)

// SlotInput is one connection slot of a new integration: a reusable
// connection (ConnectionID), or a type (TypeKey) for which the slot gets
// its own connection of INTEGRATION scope, stable key
// "<integration key>.<slot key>".
type SlotInput struct {
	Key          string
	Label        string
	ConnectionID int
	TypeKey      string
	// TemplateID, with TypeKey, presets the slot's own connection.
	TemplateID int
}

// CreateIntegrationInput is a new integration and its slots.
type CreateIntegrationInput struct {
	Key         string
	Name        string
	Description string
	Slots       []SlotInput
}

// MaxSlots bounds the slots of one integration.
const MaxSlots = 50

// CreateIntegration creates an integration, the INTEGRATION-scope
// connections of its inline slots, and its slots in order.
func (s *Service) CreateIntegration(ctx context.Context, in CreateIntegrationInput) (*ent.Integration, error) {
	v, err := Authorize(ctx, ManageIntegrations)
	if err != nil {
		return nil, err
	}
	errs := checkIntegrationFields(in)
	plans := make([]slotPlan, len(in.Slots))
	seen := map[string]bool{}
	for i, sl := range in.Slots {
		slotErrs, err := s.planSlot(ctx, in.Key, i, sl, seen, &plans[i])
		if err != nil {
			return nil, err
		}
		errs = append(errs, slotErrs...)
	}
	if len(errs) > 0 {
		return nil, invalid(errs...)
	}
	var created *ent.Integration
	err = s.withTx(ctx, func(tx *ent.Tx) error {
		var err error
		created, err = s.writeIntegration(ctx, tx.Client(), v, in, plans)
		return err
	})
	if err != nil {
		return nil, err
	}
	return created.Unwrap(), nil
}

// checkIntegrationFields checks an integration's own fields.
func checkIntegrationFields(in CreateIntegrationInput) []FieldError {
	var errs []FieldError
	if !stableKeyPattern.MatchString(in.Key) || len(in.Key) > 100 {
		errs = append(errs, fieldErr(CodeInvalidValue,
			"A key is 1 to 100 letters, digits, '.', '_' or '-', starting with a letter or digit.", "key"))
	}
	if strings.TrimSpace(in.Name) == "" || len(in.Name) > 200 {
		errs = append(errs, fieldErr(CodeInvalidValue, "A name is 1 to 200 characters.", "name"))
	}
	if len(in.Description) > 2000 {
		errs = append(errs, fieldErr(CodeTooLong, "The description is longer than 2000 characters.", "description"))
	}
	errs = append(errs, checkChars(in.Name, displayText, "name")...)
	errs = append(errs, checkChars(in.Description, displayText, "description")...)
	if len(in.Slots) > MaxSlots {
		errs = append(errs, fieldErr(CodeTooMany, fmt.Sprintf("At most %d slots.", MaxSlots), "slots"))
	}
	return errs
}

// slotPlan is what a slot of a new integration uses: a reusable connection,
// or a type for its own inline connection.
type slotPlan struct {
	conn *ent.Connection     // reusable
	ct   *ent.ConnectionType // inline
}

// planSlot checks slot i of a new integration and fills its plan; seen
// holds the slot keys so far.
func (s *Service) planSlot(ctx context.Context, integrationKey string, i int, sl SlotInput, seen map[string]bool, p *slotPlan) ([]FieldError, error) {
	at := func(f string) []string { return []string{"slots", strconv.Itoa(i), f} }
	var errs []FieldError
	if !stableKeyPattern.MatchString(sl.Key) || len(sl.Key) > 100 {
		errs = append(errs, FieldError{at("key"), CodeInvalidValue,
			"A slot key is 1 to 100 letters, digits, '.', '_' or '-', starting with a letter or digit."})
	} else if seen[sl.Key] {
		errs = append(errs, FieldError{at("key"), CodeTaken, "Another slot has this key."})
	}
	seen[sl.Key] = true
	if strings.TrimSpace(sl.Label) == "" || len(sl.Label) > 200 {
		errs = append(errs, FieldError{at("label"), CodeInvalidValue, "A label is 1 to 200 characters."})
	}
	errs = append(errs, checkChars(sl.Label, displayText, at("label")...)...)
	var more []FieldError
	var err error
	switch {
	case (sl.ConnectionID != 0) == (sl.TypeKey != ""):
		more = []FieldError{{at("connectionID"), CodeInvalidValue,
			"A slot names either a reusable connection (connectionID) or a type (typeKey)."}}
	case sl.ConnectionID != 0:
		more, err = s.planReusableSlot(ctx, sl, at, p)
	default:
		more, err = s.planInlineSlot(ctx, integrationKey, sl, at, p)
	}
	return append(errs, more...), err
}

// planReusableSlot plans a slot that names an existing connection: any
// but one that belongs to another slot (an inline scope's).
func (s *Service) planReusableSlot(ctx context.Context, sl SlotInput, at func(string) []string, p *slotPlan) ([]FieldError, error) {
	c, err := s.DB.Connection.Query().Where(connection.ID(sl.ConnectionID)).Only(ctx)
	switch {
	case ent.IsNotFound(err):
		return []FieldError{{at("connectionID"), CodeNotFound, "No such connection."}}, nil
	case err != nil:
		return nil, err
	case scopes.Of(c.Scope).Inline:
		return []FieldError{{at("connectionID"), CodeInvalidValue, fmt.Sprintf(
			"Connection %q is %s: it belongs to its own slot; give typeKey for a new one.", c.StableKey, ScopeWords(c.Scope))}}, nil
	}
	p.conn = c
	return nil, nil
}

// planInlineSlot plans a slot that gets its own connection of a declared
// type, optionally preset by a template of that type.
func (s *Service) planInlineSlot(ctx context.Context, integrationKey string, sl SlotInput, at func(string) []string, p *slotPlan) ([]FieldError, error) {
	ct, problem, err := s.declaredType(ctx, sl.TypeKey)
	switch {
	case err != nil:
		return nil, err
	case problem != "":
		return []FieldError{{at("typeKey"), CodeUnknownType, problem}}, nil
	}
	p.ct = ct
	var errs []FieldError
	if sl.TemplateID != 0 {
		for _, fe := range s.checkTemplate(ctx, sl.TemplateID, ct.ID) {
			errs = append(errs, FieldError{at("templateID"), fe.Code, fe.Message})
		}
	}
	if len(integrationKey)+1+len(sl.Key) > 100 {
		errs = append(errs, FieldError{at("key"), CodeTooLong,
			"The integration key and slot key together make a stable key longer than 100 characters."})
	}
	return errs, nil
}

// writeIntegration stores a checked integration, its inline connections
// and its slots, and audits them.
func (s *Service) writeIntegration(ctx context.Context, db *ent.Client, v *auth.Viewer, in CreateIntegrationInput, plans []slotPlan) (*ent.Integration, error) {
	taken, err := db.Integration.Query().Where(integration.Key(in.Key)).Exist(ctx)
	if err != nil {
		return nil, err
	}
	if taken {
		return nil, invalid(fieldErr(CodeTaken, "Another integration has this key.", "key"))
	}
	row, err := db.Integration.Create().SetOrganizationID(v.OrganizationID).
		SetKey(in.Key).SetName(strings.TrimSpace(in.Name)).SetDescription(in.Description).Save(ctx)
	if err != nil {
		return nil, err
	}
	for i, sl := range in.Slots {
		connID := 0
		if p := plans[i]; p.conn != nil {
			connID = p.conn.ID
		} else if connID, err = s.createInlineConnection(ctx, db, v, in.Key, i, sl, p.ct); err != nil {
			return nil, err
		}
		if err := db.ConnectionSlot.Create().SetOrganizationID(v.OrganizationID).
			SetIntegrationID(row.ID).SetKey(sl.Key).SetLabel(strings.TrimSpace(sl.Label)).
			SetPosition(i).SetConnectionID(connID).Exec(ctx); err != nil {
			return nil, err
		}
	}
	err = s.audit(ctx, db, v, auditEntry{action: "integration.created",
		message: fmt.Sprintf("integration %s created with %d slots", in.Key, len(in.Slots))})
	return row, err
}

// createInlineConnection creates slot i's own connection, of the inline
// scope, stable key "<integration key>.<slot key>", and audits it.
func (s *Service) createInlineConnection(ctx context.Context, db *ent.Client, v *auth.Viewer, integrationKey string, i int, sl SlotInput, ct *ent.ConnectionType) (int, error) {
	key := integrationKey + "." + sl.Key
	taken, err := db.Connection.Query().Where(connection.StableKey(key)).Exist(ctx)
	if err != nil {
		return 0, err
	}
	if taken {
		return 0, invalid(FieldError{[]string{"slots", strconv.Itoa(i), "key"}, CodeTaken,
			fmt.Sprintf("Another connection has the stable key %q this slot's connection needs.", key)})
	}
	create := db.Connection.Create().SetOrganizationID(v.OrganizationID).
		SetTypeID(ct.ID).SetStableKey(key).SetName(strings.TrimSpace(sl.Label)).
		SetScope(scopes.Inline())
	if sl.TemplateID != 0 {
		create.SetTemplateID(sl.TemplateID)
	}
	c, err := create.Save(ctx)
	if err != nil {
		return 0, err
	}
	err = s.audit(ctx, db, v, auditEntry{connectionID: c.ID, action: "connection.created",
		message: fmt.Sprintf("connection %s of type %s created with scope %s for integration %s", key, ct.Key, scopes.Inline(), integrationKey),
	})
	return c.ID, err
}

// ConnectionSlots returns an integration's slots in order.
func (s *Service) ConnectionSlots(ctx context.Context, integrationID int) ([]*ent.ConnectionSlot, error) {
	if _, err := Authorize(ctx, ReadSlots); err != nil {
		return nil, err
	}
	return s.DB.ConnectionSlot.Query().Where(connectionslot.IntegrationID(integrationID)).
		Order(ent.Asc(connectionslot.FieldPosition), ent.Asc(connectionslot.FieldID)).All(ctx)
}
