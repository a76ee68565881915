package connection

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/plugboard/plugboard/ent"
	"github.com/plugboard/plugboard/ent/connectiontemplate"
	"github.com/plugboard/plugboard/internal/auth"
	"github.com/plugboard/plugboard/internal/secrets/sealed"
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
		errs = append(errs, checkPresets(ct, in.Presets, plain, secretVals)...)
	}
	if len(errs) > 0 {
		return nil, invalid(errs...)
	}
	var created *ent.ConnectionTemplate
	err = s.withTx(ctx, func(tx *ent.Tx) error {
		created, err = s.writeTemplate(ctx, tx, v, in.Name, ct, plain, secretVals)
		return err
	})
	if err != nil {
		return nil, err
	}
	return created.Unwrap(), nil
}

// checkPresets applies a template's presets to plain and secretVals and
// returns what is wrong with them: each needs a value, and each must be a
// valid value of its input; required inputs are a credential's concern.
func checkPresets(ct *ent.ConnectionType, presets []ValueInput, plain, secretVals map[string]string) []FieldError {
	var errs []FieldError
	for _, p := range presets {
		if p.Clear || p.Value == nil {
			errs = append(errs, fieldErr(CodeRequired, "A preset needs a value.", "presets", clip(p.Key, 100)))
		}
	}
	_, perrs := applyValues(ct.Inputs, presets, plain, secretVals)
	for _, e := range perrs {
		if len(e.Field) > 0 && e.Field[0] == "values" {
			e.Field[0] = "presets"
		}
		errs = append(errs, e)
	}
	merged := mergeValues(plain, secretVals)
	for _, d := range sdk.ValidateValues(&sdk.ConnectionType{Inputs: InputsToSDK(ct.Inputs)}, merged) {
		if _, given := merged[d.Field]; given && merged[d.Field] != "" {
			errs = append(errs, fieldErr(CodeInvalidValue, d.Summary, "presets", d.Field))
		}
	}
	return errs
}

// writeTemplate stores a checked template under a free name, its secret
// presets sealed, and audits it.
func (s *Service) writeTemplate(ctx context.Context, tx *ent.Tx, v *auth.Viewer, name string, ct *ent.ConnectionType, plain, secretVals map[string]string) (*ent.ConnectionTemplate, error) {
	taken, err := tx.ConnectionTemplate.Query().Where(connectiontemplate.Name(strings.TrimSpace(name))).Exist(ctx)
	if err != nil {
		return nil, err
	}
	if taken {
		return nil, invalid(fieldErr(CodeTaken, "Another template has this name.", "name"))
	}
	row, err := tx.ConnectionTemplate.Create().
		SetOrganizationID(v.OrganizationID).
		SetTypeID(ct.ID).
		SetName(strings.TrimSpace(name)).
		SetPresets(plain).
		Save(ctx)
	if err != nil {
		return nil, err
	}
	if len(secretVals) > 0 {
		b, err := json.Marshal(secretVals)
		if err != nil {
			return nil, err
		}
		box, err := s.Keys.Encrypt(ctx, b, sealed.TemplateSecretPresets.AAD(row.ID))
		if err != nil {
			return nil, fmt.Errorf("encrypting template %d: %w", row.ID, err)
		}
		if row, err = row.Update().SetSecretPresets(box).Save(ctx); err != nil {
			return nil, err
		}
	}
	return row, s.audit(ctx, tx.Client(), v, auditEntry{
		action:  "template.created",
		message: fmt.Sprintf("template %s of type %s created with %d presets", row.Name, ct.Key, len(plain)+len(secretVals)),
	})
}

// templatePresets returns the presets of conn's template, secret ones
// decrypted. The caller reached conn as a connection its viewer may use, so
// the template is read as plugboard itself inside conn's organization:
// customers never see templates, but their credentials are filled by them.
func (s *Service) templatePresets(ctx context.Context, conn *ent.Connection) (map[string]string, error) {
	id := *conn.TemplateID
	t, err := s.DB.ConnectionTemplate.Query().Where(connectiontemplate.ID(id)).Only(auth.OrganizationContext(ctx, conn.OrganizationID))
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
		b, err := s.Keys.Decrypt(ctx, t.SecretPresets, sealed.TemplateSecretPresets.AAD(t.ID))
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
