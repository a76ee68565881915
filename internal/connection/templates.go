package connection

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/plugboard/plugboard/ent"
	"github.com/plugboard/plugboard/ent/connectiontemplate"
	"github.com/plugboard/plugboard/internal/auth"
	"github.com/plugboard/plugboard/plugins/sdk"
)

// CreateConnectionTemplateInput is a new template of presets for a type.
type CreateConnectionTemplateInput struct {
	TypeKey string
	Name    string
	// Presets are values; a clear is refused, and a secret preset is
	// sealed like a credential's secrets.
	Presets []ValueInput
}

func templateSecretsAAD(id int) []byte {
	return []byte("plugboard/template/" + strconv.Itoa(id) + "/secrets")
}

// CreateConnectionTemplate stores presets for a type's inputs. Secret
// presets are sealed with the keyring and never returned.
func (s *Service) CreateConnectionTemplate(ctx context.Context, in CreateConnectionTemplateInput) (*ent.ConnectionTemplate, error) {
	v, err := Authorize(ctx, ManageTemplates)
	if err != nil {
		return nil, err
	}
	var errs []FieldError
	// A template may preset a type whose plugin is gone for now: only an
	// undeclared key is refused.
	ct, problem, err := s.declaredType(ctx, in.TypeKey)
	if err != nil {
		return nil, err
	}
	if ct == nil {
		errs = append(errs, fieldErr(CodeUnknownType, problem, "typeKey"))
	}
	if strings.TrimSpace(in.Name) == "" || len(in.Name) > 200 {
		errs = append(errs, fieldErr(CodeInvalidValue, "A name is 1 to 200 characters.", "name"))
	}
	errs = append(errs, checkChars(in.Name, displayText, "name")...)
	plain, secretVals := map[string]string{}, map[string]string{}
	if ct != nil {
		for _, p := range in.Presets {
			if p.Clear || p.Value == nil {
				errs = append(errs, fieldErr(CodeRequired, "A preset needs a value.", "presets", clip(p.Key, 100)))
			}
		}
		_, perrs := applyValues(ct.Inputs, in.Presets, plain, secretVals)
		for _, e := range perrs {
			if len(e.Field) > 0 && e.Field[0] == "values" {
				e.Field[0] = "presets"
			}
			errs = append(errs, e)
		}
		// Each preset must be a valid value of its input; required inputs
		// are a credential's concern.
		merged := mergeValues(plain, secretVals)
		for _, d := range sdk.ValidateValues(&sdk.ConnectionType{Inputs: InputsToSDK(ct.Inputs)}, merged) {
			if _, given := merged[d.Field]; given && merged[d.Field] != "" {
				errs = append(errs, fieldErr(CodeInvalidValue, d.Summary, "presets", d.Field))
			}
		}
	}
	if len(errs) > 0 {
		return nil, invalid(errs...)
	}
	var created *ent.ConnectionTemplate
	err = s.withTx(ctx, func(tx *ent.Tx) error {
		taken, err := tx.ConnectionTemplate.Query().Where(connectiontemplate.Name(strings.TrimSpace(in.Name))).Exist(ctx)
		if err != nil {
			return err
		}
		if taken {
			return invalid(fieldErr(CodeTaken, "Another template has this name.", "name"))
		}
		row, err := tx.ConnectionTemplate.Create().
			SetOrganizationID(v.OrganizationID).
			SetTypeID(ct.ID).
			SetName(strings.TrimSpace(in.Name)).
			SetPresets(plain).
			Save(ctx)
		if err != nil {
			return err
		}
		if len(secretVals) > 0 {
			b, err := json.Marshal(secretVals)
			if err != nil {
				return err
			}
			sealed, err := s.Keys.Encrypt(ctx, b, templateSecretsAAD(row.ID))
			if err != nil {
				return fmt.Errorf("encrypting template %d: %w", row.ID, err)
			}
			if row, err = row.Update().SetSecretPresets(sealed).Save(ctx); err != nil {
				return err
			}
		}
		created = row
		return s.audit(ctx, tx.Client(), v, auditEntry{
			action:  "template.created",
			message: fmt.Sprintf("template %s of type %s created with %d presets", created.Name, ct.Key, len(plain)+len(secretVals)),
		})
	})
	if err != nil {
		return nil, err
	}
	return created.Unwrap(), nil
}

// templatePresets returns a template's presets, secret ones decrypted. The
// caller reached the template through a connection its viewer may use, so
// the template is read as plugboard itself: customers never see templates,
// but their credentials are filled by them.
func (s *Service) templatePresets(ctx context.Context, id int) (map[string]string, error) {
	t, err := s.DB.ConnectionTemplate.Query().Where(connectiontemplate.ID(id)).Only(auth.SystemContext(ctx))
	if ent.IsNotFound(err) {
		return nil, nil // a template deleted under its connection presets nothing
	}
	if err != nil {
		return nil, err
	}
	out := map[string]string{}
	for k, v := range t.Presets {
		out[k] = v
	}
	if len(t.SecretPresets) > 0 {
		b, err := s.Keys.Decrypt(ctx, t.SecretPresets, templateSecretsAAD(t.ID))
		if err != nil {
			return nil, fmt.Errorf("decrypting template %d: %w", t.ID, err)
		}
		sec := map[string]string{}
		if err := json.Unmarshal(b, &sec); err != nil {
			return nil, fmt.Errorf("decrypting template %d: %w", t.ID, errors.New("malformed secret payload"))
		}
		for k, v := range sec {
			out[k] = v
		}
	}
	return out, nil
}

// checkTemplate checks the template of a new connection of type typeID.
func (s *Service) checkTemplate(ctx context.Context, templateID, typeID int) []FieldError {
	t, err := s.DB.ConnectionTemplate.Query().Where(connectiontemplate.ID(templateID)).Only(ctx)
	if err != nil {
		return []FieldError{fieldErr(CodeNotFound, "No such template.", "templateID")}
	}
	if t.TypeID != typeID {
		return []FieldError{fieldErr(CodeInvalidValue, "The template presets another connection type.", "templateID")}
	}
	return nil
}
