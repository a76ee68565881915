package connection

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/plugboard/plugboard/ent"
	"github.com/plugboard/plugboard/ent/connection"
	"github.com/plugboard/plugboard/ent/connectiontype"
	"github.com/plugboard/plugboard/ent/credential"
	"github.com/plugboard/plugboard/ent/customer"
	"github.com/plugboard/plugboard/ent/schema/schematype"
	"github.com/plugboard/plugboard/internal/auth"
	"github.com/plugboard/plugboard/internal/oauth"
	"github.com/plugboard/plugboard/plugins/sdk"
)

// Limits on what one save may carry.
const (
	MaxValues     = 100
	MaxValueBytes = 16 << 10
	MaxTotalBytes = 256 << 10
)

// ValueInput is one input value of a save. A nil Value with Clear false
// keeps what is stored; Clear erases it.
type ValueInput struct {
	Key   string
	Value *string
	Clear bool
}

// SaveCredentialInput is a save of a credential's values.
type SaveCredentialInput struct {
	ConnectionID int
	CustomerID   int // 0 when the connection's scope holds no customer
	IsTest       bool
	Values       []ValueInput
	// Test runs the plugin's live test first; a failed test stores nothing.
	Test bool
}

// TestResult is the outcome of a plugin's live test.
type TestResult struct {
	OK      bool
	Message string
}

// SaveCredential runs the save pipeline: static checks from the type's
// declaration → the plugin's Validate → an optional live Test → secrets
// encrypted → stored with an audit event. When any step fails nothing is
// stored: field problems come back as a *ValidationError, plugin faults as
// pluginhost errors.
func (s *Service) SaveCredential(ctx context.Context, in SaveCredentialInput) (*ent.Credential, *TestResult, error) {
	v, err := auth.RequireAdmin(ctx)
	if err != nil {
		return nil, nil, err
	}
	conn, err := s.DB.Connection.Query().Where(connection.ID(in.ConnectionID)).WithType().Only(ctx)
	if ent.IsNotFound(err) {
		return nil, nil, invalid(fieldErr(CodeNotFound, "No such connection.", "connectionID"))
	}
	if err != nil {
		return nil, nil, err
	}
	ct := conn.Edges.Type
	holder, holderKey, err := s.holderOf(ctx, conn, in.CustomerID)
	if err != nil {
		return nil, nil, err
	}

	existing, err := s.DB.Credential.Query().
		Where(credential.ConnectionID(conn.ID), credential.HolderKey(holderKey), credential.IsTest(in.IsTest)).
		Only(ctx)
	if err != nil && !ent.IsNotFound(err) {
		return nil, nil, err
	}
	plain, secretVals := map[string]string{}, map[string]string{}
	meta := map[string]schematype.SecretMeta{}
	if existing != nil {
		for k, val := range existing.Inputs {
			plain[k] = val
		}
		if secretVals, err = s.openSecrets(ctx, existing); err != nil {
			return nil, nil, err
		}
		for k, m := range existing.SecretMeta {
			meta[k] = m
		}
	}

	changed, errs := applyValues(ct.Inputs, in.Values, plain, secretVals)
	if len(errs) > 0 {
		return nil, nil, invalid(errs...)
	}
	merged := mergeValues(plain, secretVals)
	if errs := staticCheck(ct.Inputs, merged); len(errs) > 0 {
		return nil, nil, invalid(errs...)
	}
	resolved, err := resolve(ct, merged)
	if err != nil {
		return nil, nil, err
	}
	secretList := values(secretVals)
	vr, err := s.Plugins.Validate(ctx, ct.Key, resolved)
	if err != nil {
		return nil, nil, err
	}
	if errs := diagnosticErrors(vr.Diagnostics, secretList); len(errs) > 0 {
		return nil, nil, invalid(errs...)
	}
	// A client-credentials type gets its token now: a refused request is
	// the caller's to fix, and nothing is stored.
	var tok *oauth.Token
	if ct.AuthKind == connectiontype.AuthKindOAUTH2_CLIENT_CREDENTIALS {
		if s.OAuth == nil {
			return nil, nil, invalid(fieldErr(CodeNotSupported, "OAuth 2.0 is not configured on this server."))
		}
		if tok, err = s.OAuth.FetchClientCredentials(ctx, ct, resolved); err != nil {
			return nil, nil, tokenRequestError(ct, err)
		}
	}
	var result *TestResult
	if in.Test {
		tr, err := s.Plugins.Test(ctx, ct.Key, resolved, sdkToken(tok))
		if err != nil {
			return nil, nil, err
		}
		result = &TestResult{OK: tr.OK, Message: redact(tr.Message, secretList)}
		if !tr.OK {
			return nil, result, invalid(fieldErr(CodeTestFailed, "The live test failed: "+result.Message))
		}
	}

	now := s.now()
	for _, k := range changed {
		if in := findInput(ct.Inputs, k); in != nil && in.Secret {
			if _, set := secretVals[k]; set {
				meta[k] = schematype.SecretMeta{UpdatedAt: now.UnixMilli()}
			} else {
				delete(meta, k)
			}
		}
	}
	status, detail, keepStatus := statusAfterSave(ct, existing, result)
	if tok != nil {
		status, detail, keepStatus = credential.StatusACTIVE, "token fetched with the client credentials", false
	}
	var saved *ent.Credential
	err = s.withTx(ctx, func(tx *ent.Tx) error {
		db := tx.Client()
		var id, version int
		oldStatus := credential.StatusPENDING // a new credential starts PENDING
		if existing == nil {
			c := db.Credential.Create().
				SetOrganizationID(v.OrganizationID).
				SetConnectionID(conn.ID).
				SetHolder(holder).
				SetHolderKey(holderKey).
				SetIsTest(in.IsTest)
			if holder == credential.HolderCUSTOMER {
				c.SetCustomerID(in.CustomerID)
			}
			row, err := c.Save(ctx)
			if err != nil {
				if ent.IsConstraintError(err) {
					return invalid(fieldErr(CodeTaken, "The credential was created concurrently; save again."))
				}
				return err
			}
			id, version = row.ID, 1
		} else {
			id, version, oldStatus = existing.ID, existing.Version+1, existing.Status
		}
		sealed, err := s.sealSecrets(ctx, id, secretVals)
		if err != nil {
			return err
		}
		u := db.Credential.Update().Where(credential.ID(id)).
			SetInputs(plain).
			SetSecretMeta(meta).
			SetVersion(version)
		if !keepStatus {
			u.SetStatus(status).SetStatusDetail(detail)
		} else {
			status = oldStatus
		}
		if existing != nil {
			// Optimistic concurrency: a save that raced with another one
			// fails instead of dropping the other's values.
			u.Where(credential.Version(existing.Version))
		}
		if sealed == nil {
			u.ClearSecrets()
		} else {
			u.SetSecrets(sealed)
		}
		if result != nil {
			u.SetLastTestedAt(now)
		}
		n, err := u.Save(ctx)
		if err != nil {
			return err
		}
		if n == 0 {
			return invalid(fieldErr(CodeTaken, "The credential changed while it was being saved; save again."))
		}
		if tok != nil {
			if err := s.OAuth.StoreToken(ctx, db, id, ct, tok); err != nil {
				return err
			}
		}
		if err := s.audit(ctx, db, v, auditEntry{
			credentialID: id, connectionID: conn.ID, action: "credential.saved",
			message: savedMessage(changed, version, result != nil),
		}); err != nil {
			return err
		}
		if status != oldStatus {
			if err := s.audit(ctx, db, v, auditEntry{
				credentialID: id, connectionID: conn.ID, action: "credential.status_changed",
				message: fmt.Sprintf("status %s → %s", oldStatus, status),
			}); err != nil {
				return err
			}
		}
		saved, err = db.Credential.Get(ctx, id)
		return err
	})
	if err != nil {
		return nil, nil, err
	}
	from := string(credential.StatusPENDING)
	if existing != nil {
		from = string(existing.Status)
	}
	s.publish(ctx, saved, from)
	return saved.Unwrap(), result, nil
}

// holderOf says who holds the credential of a save on conn.
func (s *Service) holderOf(ctx context.Context, conn *ent.Connection, customerID int) (credential.Holder, string, error) {
	switch conn.Scope {
	case connection.ScopeORGANIZATION_GLOBAL:
		if customerID != 0 {
			return "", "", invalid(fieldErr(CodeInvalidValue,
				"An ORGANIZATION_GLOBAL connection has one credential for the whole organization; leave customerID out.", "customerID"))
		}
		return credential.HolderORGANIZATION, "org", nil
	case connection.ScopeCUSTOMER, connection.ScopeORGANIZATION_CUSTOMER:
		if customerID == 0 {
			if conn.Scope == connection.ScopeORGANIZATION_CUSTOMER {
				// The organization's own values, shared by its customers.
				return credential.HolderORGANIZATION, "org", nil
			}
			return "", "", invalid(fieldErr(CodeRequired, "A "+string(conn.Scope)+" connection's credential belongs to a customer: give customerID.", "customerID"))
		}
		ok, err := s.DB.Customer.Query().Where(customer.ID(customerID)).Exist(ctx)
		if err != nil {
			return "", "", err
		}
		if !ok {
			return "", "", invalid(fieldErr(CodeNotFound, "No such customer.", "customerID"))
		}
		return credential.HolderCUSTOMER, "customer:" + strconv.Itoa(customerID), nil
	default:
		return "", "", invalid(fieldErr(CodeNotSupported,
			"Credentials of "+string(conn.Scope)+" connections are saved through an instance or a user, not directly.", "connectionID"))
	}
}

// applyValues applies a save's values to the stored plain and secret maps
// and returns the keys it changed.
func applyValues(inputs []schematype.Input, vals []ValueInput, plain, secretVals map[string]string) ([]string, []FieldError) {
	var errs []FieldError
	if len(vals) > MaxValues {
		return nil, []FieldError{fieldErr(CodeTooMany, fmt.Sprintf("At most %d values per save.", MaxValues), "values")}
	}
	seen := map[string]bool{}
	var changed []string
	total := 0
	for _, in := range vals {
		decl := findInput(inputs, in.Key)
		switch {
		case decl == nil:
			errs = append(errs, fieldErr(CodeUnknownInput, "The connection type declares no input "+quote(in.Key)+".", "values", clip(in.Key, 100)))
			continue
		case seen[in.Key]:
			errs = append(errs, fieldErr(CodeInvalidValue, "The input is given twice.", "values", in.Key))
			continue
		case decl.Type == schematype.InputType(sdk.InputTemplate):
			errs = append(errs, fieldErr(CodeReadOnly, "The input is computed from its template; set the inputs it names instead.", "values", in.Key))
			continue
		}
		seen[in.Key] = true
		target := plain
		if decl.Secret {
			target = secretVals
		}
		switch {
		case in.Clear || (in.Value == nil && !decl.Secret):
			if _, ok := target[in.Key]; ok {
				delete(target, in.Key)
				changed = append(changed, in.Key)
			}
		case in.Value == nil:
			// A secret left out keeps its stored value.
		default:
			if len(*in.Value) > MaxValueBytes {
				errs = append(errs, fieldErr(CodeTooLong, fmt.Sprintf("The value is longer than %d bytes.", MaxValueBytes), "values", in.Key))
				continue
			}
			total += len(*in.Value)
			if old, ok := target[in.Key]; !ok || old != *in.Value {
				changed = append(changed, in.Key)
			}
			target[in.Key] = *in.Value
		}
	}
	if total > MaxTotalBytes {
		errs = append(errs, fieldErr(CodeTooLong, fmt.Sprintf("The values add up to more than %d bytes.", MaxTotalBytes), "values"))
	}
	sort.Strings(changed)
	return changed, errs
}

func mergeValues(plain, secretVals map[string]string) map[string]string {
	out := make(map[string]string, len(plain)+len(secretVals))
	for k, v := range plain {
		out[k] = v
	}
	for k, v := range secretVals {
		out[k] = v
	}
	return out
}

// staticCheck checks merged values against the declaration: required
// inputs, types, patterns, options, collections and template slots.
func staticCheck(inputs []schematype.Input, merged map[string]string) []FieldError {
	var errs []FieldError
	missing := map[string]bool{}
	for _, in := range inputs {
		if in.Type == schematype.InputType(sdk.InputTemplate) {
			continue
		}
		if in.Required && merged[in.Key] == "" && in.Default == "" {
			missing[in.Key] = true
			errs = append(errs, fieldErr(CodeRequired, label(in)+" is required.", "values", in.Key))
		}
	}
	ct := &sdk.ConnectionType{Inputs: InputsToSDK(inputs)}
	for _, d := range sdk.ValidateValues(ct, merged) {
		if missing[d.Field] {
			continue
		}
		errs = append(errs, fieldErr(CodeInvalidValue, d.Summary, "values", d.Field))
	}
	// A template needs every input it names.
	for _, in := range inputs {
		if in.Type != schematype.InputType(sdk.InputTemplate) {
			continue
		}
		slots, err := sdk.TemplateSlots(in.Template)
		if err != nil {
			errs = append(errs, fieldErr(CodeInvalidValue, label(in)+" has a malformed template in its plugin.", "values", in.Key))
			continue
		}
		for _, slot := range slots {
			if missing[slot] {
				continue
			}
			decl := findInput(inputs, slot)
			if merged[slot] == "" && (decl == nil || decl.Default == "") {
				errs = append(errs, fieldErr(CodeRequired,
					label(in)+" needs a value for "+quote(slot)+".", "values", slot))
			}
		}
	}
	return errs
}

func label(in schematype.Input) string {
	if in.Label != "" {
		return in.Label
	}
	return in.Key
}

// resolve returns the values a plugin works with: defaults filled in and
// templates rendered.
func resolve(ct *ent.ConnectionType, merged map[string]string) (map[string]string, error) {
	st := &sdk.ConnectionType{Key: ct.Key, Inputs: InputsToSDK(ct.Inputs)}
	out, err := sdk.ResolveValues(st, merged)
	if err != nil {
		return nil, fmt.Errorf("connection type %s: %w", ct.Key, err)
	}
	return out, nil
}

func diagnosticErrors(ds []sdk.Diagnostic, secretList []string) []FieldError {
	var errs []FieldError
	for _, d := range ds {
		if d.Severity != sdk.SeverityError {
			continue
		}
		msg := redact(d.Summary, secretList)
		if d.Detail != "" {
			msg += " " + redact(d.Detail, secretList)
		}
		var path []string
		if d.Field != "" {
			path = []string{"values", clip(d.Field, 100)}
		}
		errs = append(errs, fieldErr(CodePluginRejected, clip(msg, 1000), path...))
	}
	return errs
}

// redact removes secret values from text a plugin wrote, in case a plugin
// echoes what it was given.
func redact(msg string, secretList []string) string {
	for _, s := range secretList {
		if len(s) >= 4 {
			msg = strings.ReplaceAll(msg, s, "[redacted]")
		}
	}
	return msg
}

func values(m map[string]string) []string {
	out := make([]string, 0, len(m))
	for _, v := range m {
		out = append(out, v)
	}
	return out
}

// statusAfterSave is the status a save leaves the credential in. For OAuth
// 2.0 credentials that hold a token the status belongs to the token's
// lifecycle (refreshes, reconnects): keep is true and the save leaves it.
func statusAfterSave(ct *ent.ConnectionType, existing *ent.Credential, tr *TestResult) (status credential.Status, detail string, keep bool) {
	switch ct.AuthKind {
	case connectiontype.AuthKindOAUTH2_AUTHORIZATION_CODE, connectiontype.AuthKindOAUTH2_CLIENT_CREDENTIALS:
		if existing != nil && len(existing.Token) > 0 {
			return existing.Status, existing.StatusDetail, true
		}
		return credential.StatusPENDING, "waiting for OAuth 2.0 authorization", false
	}
	if tr != nil {
		return credential.StatusACTIVE, "tested: " + clip(tr.Message, 500), false
	}
	return credential.StatusACTIVE, "validated", false
}

// tokenRequestError turns a refused client-credentials request into a field
// error on the client secret (or the whole save).
func tokenRequestError(ct *ent.ConnectionType, err error) error {
	var pe *oauth.ProviderError
	if !errors.As(err, &pe) {
		if errors.Is(err, oauth.ErrMisconfigured) {
			return invalid(fieldErr(CodeInvalidValue, err.Error()))
		}
		return err
	}
	var path []string
	if ct.Oauth2 != nil && ct.Oauth2.ClientSecretInput != "" && (pe.Code == "invalid_client" || pe.Code == "unauthorized_client") {
		path = []string{"values", ct.Oauth2.ClientSecretInput}
	}
	return invalid(fieldErr(CodeTokenRequestFailed, "The token request failed: "+pe.Message, path...))
}

// sdkToken hands a token to a plugin's Test.
func sdkToken(t *oauth.Token) *sdk.Token {
	if t == nil {
		return nil
	}
	extra := map[string]string{}
	for k, v := range t.Extra {
		if s, ok := v.(string); ok {
			extra[k] = s
		}
	}
	return &sdk.Token{AccessToken: t.AccessToken, TokenType: t.TokenType, RefreshToken: t.RefreshToken, Expiry: t.Expiry, Extra: extra}
}

func savedMessage(changed []string, version int, tested bool) string {
	msg := fmt.Sprintf("version %d saved", version)
	if len(changed) > 0 {
		msg += "; changed inputs: " + strings.Join(changed, ", ")
	}
	if tested {
		msg += "; live test passed"
	}
	return msg
}

func secretsAAD(id int) []byte {
	return []byte("plugboard/credential/" + strconv.Itoa(id) + "/secrets")
}

func (s *Service) sealSecrets(ctx context.Context, id int, vals map[string]string) ([]byte, error) {
	if len(vals) == 0 {
		return nil, nil
	}
	b, err := json.Marshal(vals)
	if err != nil {
		return nil, err
	}
	ct, err := s.Keys.Encrypt(ctx, b, secretsAAD(id))
	if err != nil {
		return nil, fmt.Errorf("encrypting credential %d: %w", id, err)
	}
	return ct, nil
}

func (s *Service) openSecrets(ctx context.Context, c *ent.Credential) (map[string]string, error) {
	out := map[string]string{}
	if len(c.Secrets) == 0 {
		return out, nil
	}
	b, err := s.Keys.Decrypt(ctx, c.Secrets, secretsAAD(c.ID))
	if err != nil {
		return nil, fmt.Errorf("decrypting credential %d: %w", c.ID, err)
	}
	if err := json.Unmarshal(b, &out); err != nil {
		return nil, fmt.Errorf("decrypting credential %d: %w", c.ID, errors.New("malformed secret payload"))
	}
	return out, nil
}

// TestCredential runs the plugin's live test on a stored credential and
// records the outcome as its status.
func (s *Service) TestCredential(ctx context.Context, id int) (*ent.Credential, *TestResult, error) {
	v, err := auth.RequireAdmin(ctx)
	if err != nil {
		return nil, nil, err
	}
	cred, err := s.DB.Credential.Query().Where(credential.ID(id)).
		WithConnection(func(q *ent.ConnectionQuery) { q.WithType() }).Only(ctx)
	if ent.IsNotFound(err) {
		return nil, nil, notFound("credential", id)
	}
	if err != nil {
		return nil, nil, err
	}
	ct := cred.Edges.Connection.Edges.Type
	secretVals, err := s.openSecrets(ctx, cred)
	if err != nil {
		return nil, nil, err
	}
	resolved, err := resolve(ct, mergeValues(cred.Inputs, secretVals))
	if err != nil {
		return nil, nil, err
	}
	var tok *oauth.Token
	if (ct.AuthKind == connectiontype.AuthKindOAUTH2_AUTHORIZATION_CODE || ct.AuthKind == connectiontype.AuthKindOAUTH2_CLIENT_CREDENTIALS) && s.OAuth != nil {
		if tok, err = s.OAuth.Token(ctx, cred.ID, 0); err != nil {
			return nil, nil, err
		}
	}
	tr, err := s.Plugins.Test(ctx, ct.Key, resolved, sdkToken(tok))
	if err != nil {
		return nil, nil, err
	}
	secretList := values(secretVals)
	if tok != nil {
		secretList = append(secretList, tok.AccessToken, tok.RefreshToken)
	}
	result := &TestResult{OK: tr.OK, Message: redact(tr.Message, secretList)}
	status, detail := credential.StatusACTIVE, "tested: "+clip(result.Message, 500)
	if !tr.OK {
		status, detail = credential.StatusERROR, "test failed: "+clip(result.Message, 500)
	}
	var updated *ent.Credential
	err = s.withTx(ctx, func(tx *ent.Tx) error {
		db := tx.Client()
		var err error
		updated, err = db.Credential.UpdateOneID(cred.ID).
			SetStatus(status).SetStatusDetail(detail).SetLastTestedAt(s.now()).Save(ctx)
		if err != nil {
			return err
		}
		outcome := "passed"
		if !tr.OK {
			outcome = "failed"
		}
		if err := s.audit(ctx, db, v, auditEntry{
			credentialID: cred.ID, connectionID: cred.ConnectionID, action: "credential.tested",
			message: "live test " + outcome,
		}); err != nil {
			return err
		}
		if status != cred.Status {
			return s.audit(ctx, db, v, auditEntry{
				credentialID: cred.ID, connectionID: cred.ConnectionID, action: "credential.status_changed",
				message: fmt.Sprintf("status %s → %s", cred.Status, status),
			})
		}
		return nil
	})
	if err != nil {
		return nil, nil, err
	}
	s.publish(ctx, updated, string(cred.Status))
	return updated.Unwrap(), result, nil
}

// Value is one input of a credential as the API shows it: secret values
// are never included, only whether they are set and since when.
type Value struct {
	Key       string
	Value     *string
	Secret    bool
	IsSet     bool
	UpdatedAt *time.Time
}

// Values lists a credential's inputs in declaration order without any
// secret value.
func (s *Service) Values(ctx context.Context, c *ent.Credential) ([]Value, error) {
	ct, err := s.typeOf(ctx, c)
	if err != nil {
		return nil, err
	}
	out := make([]Value, 0, len(ct.Inputs))
	for _, in := range ct.Inputs {
		val := Value{Key: in.Key, Secret: in.Secret}
		if in.Secret {
			if m, ok := c.SecretMeta[in.Key]; ok {
				t := time.UnixMilli(m.UpdatedAt).UTC()
				val.IsSet, val.UpdatedAt = true, &t
			}
		} else if in.Type == schematype.InputType(sdk.InputTemplate) {
			if r, err := sdk.RenderTemplate(in.Template, withDefaults(ct.Inputs, c.Inputs)); err == nil {
				val.Value, val.IsSet = &r, true
			}
		} else if v, ok := c.Inputs[in.Key]; ok {
			v := v
			val.Value, val.IsSet = &v, true
		}
		out = append(out, val)
	}
	return out, nil
}

func withDefaults(inputs []schematype.Input, vals map[string]string) map[string]string {
	out := make(map[string]string, len(inputs))
	for _, in := range inputs {
		if v, ok := vals[in.Key]; ok && v != "" {
			out[in.Key] = v
		} else if !in.Secret {
			out[in.Key] = in.Default
		}
	}
	return out
}

// Resolved returns a credential's connection type and the values a plugin
// or an OAuth 2.0 flow works with: plain inputs, decrypted secrets, defaults
// and rendered templates. The values include secrets: never return them to
// an API caller other than an integration runtime.
func (s *Service) Resolved(ctx context.Context, c *ent.Credential) (*ent.ConnectionType, map[string]string, error) {
	ct, err := s.DB.ConnectionType.Query().
		Where(connectiontype.HasConnectionsWith(connection.ID(c.ConnectionID))).
		Only(ctx)
	if err != nil {
		return nil, nil, fmt.Errorf("connection type of credential %d: %w", c.ID, err)
	}
	secretVals, err := s.openSecrets(ctx, c)
	if err != nil {
		return nil, nil, err
	}
	vals, err := resolve(ct, mergeValues(c.Inputs, secretVals))
	if err != nil {
		return nil, nil, err
	}
	return ct, vals, nil
}
