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
	type plan struct {
		conn *ent.Connection     // reusable
		ct   *ent.ConnectionType // inline
	}
	plans := make([]plan, len(in.Slots))
	seen := map[string]bool{}
	for i, sl := range in.Slots {
		at := func(f string) []string { return []string{"slots", strconv.Itoa(i), f} }
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
		switch {
		case (sl.ConnectionID != 0) == (sl.TypeKey != ""):
			errs = append(errs, FieldError{at("connectionID"), CodeInvalidValue,
				"A slot names either a reusable connection (connectionID) or a type (typeKey)."})
		case sl.ConnectionID != 0:
			c, err := s.DB.Connection.Query().Where(connection.ID(sl.ConnectionID)).Only(ctx)
			switch {
			case ent.IsNotFound(err):
				errs = append(errs, FieldError{at("connectionID"), CodeNotFound, "No such connection."})
			case err != nil:
				return nil, err
			case c.Scope == connection.ScopeINTEGRATION:
				errs = append(errs, FieldError{at("connectionID"), CodeInvalidValue, fmt.Sprintf(
					"Connection %q is %s: it belongs to its own slot; give typeKey for a new one.", c.StableKey, ScopeWords(c.Scope))})
			default:
				plans[i].conn = c
			}
		default:
			ct, problem, err := s.declaredType(ctx, sl.TypeKey)
			switch {
			case err != nil:
				return nil, err
			case problem != "":
				errs = append(errs, FieldError{at("typeKey"), CodeUnknownType, problem})
			default:
				plans[i].ct = ct
				if sl.TemplateID != 0 {
					for _, fe := range s.checkTemplate(ctx, sl.TemplateID, ct.ID) {
						errs = append(errs, FieldError{at("templateID"), fe.Code, fe.Message})
					}
				}
				if len(in.Key)+1+len(sl.Key) > 100 {
					errs = append(errs, FieldError{at("key"), CodeTooLong,
						"The integration key and slot key together make a stable key longer than 100 characters."})
				}
			}
		}
	}
	if len(errs) > 0 {
		return nil, invalid(errs...)
	}
	var created *ent.Integration
	err = s.withTx(ctx, func(tx *ent.Tx) error {
		db := tx.Client()
		taken, err := db.Integration.Query().Where(integration.Key(in.Key)).Exist(ctx)
		if err != nil {
			return err
		}
		if taken {
			return invalid(fieldErr(CodeTaken, "Another integration has this key.", "key"))
		}
		row, err := db.Integration.Create().SetOrganizationID(v.OrganizationID).
			SetKey(in.Key).SetName(strings.TrimSpace(in.Name)).SetDescription(in.Description).Save(ctx)
		if err != nil {
			return err
		}
		for i, sl := range in.Slots {
			connID := 0
			if p := plans[i]; p.conn != nil {
				connID = p.conn.ID
			} else {
				key := in.Key + "." + sl.Key
				taken, err := db.Connection.Query().Where(connection.StableKey(key)).Exist(ctx)
				if err != nil {
					return err
				}
				if taken {
					return invalid(FieldError{[]string{"slots", strconv.Itoa(i), "key"}, CodeTaken,
						fmt.Sprintf("Another connection has the stable key %q this slot's connection needs.", key)})
				}
				create := db.Connection.Create().SetOrganizationID(v.OrganizationID).
					SetTypeID(p.ct.ID).SetStableKey(key).SetName(strings.TrimSpace(sl.Label)).
					SetScope(connection.ScopeINTEGRATION)
				if sl.TemplateID != 0 {
					create.SetTemplateID(sl.TemplateID)
				}
				c, err := create.Save(ctx)
				if err != nil {
					return err
				}
				connID = c.ID
				if err := s.audit(ctx, db, v, auditEntry{connectionID: c.ID, action: "connection.created",
					message: fmt.Sprintf("connection %s of type %s created with scope INTEGRATION for integration %s", key, p.ct.Key, in.Key),
				}); err != nil {
					return err
				}
			}
			if err := db.ConnectionSlot.Create().SetOrganizationID(v.OrganizationID).
				SetIntegrationID(row.ID).SetKey(sl.Key).SetLabel(strings.TrimSpace(sl.Label)).
				SetPosition(i).SetConnectionID(connID).Exec(ctx); err != nil {
				return err
			}
		}
		created = row
		return s.audit(ctx, db, v, auditEntry{action: "integration.created",
			message: fmt.Sprintf("integration %s created with %d slots", in.Key, len(in.Slots))})
	})
	if err != nil {
		return nil, err
	}
	return created.Unwrap(), nil
}

// ConnectionSlots returns an integration's slots in order.
func (s *Service) ConnectionSlots(ctx context.Context, integrationID int) ([]*ent.ConnectionSlot, error) {
	if _, err := Authorize(ctx, ReadSlots); err != nil {
		return nil, err
	}
	return s.DB.ConnectionSlot.Query().Where(connectionslot.IntegrationID(integrationID)).
		Order(ent.Asc(connectionslot.FieldPosition), ent.Asc(connectionslot.FieldID)).All(ctx)
}
