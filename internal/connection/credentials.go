package connection

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/plugboard/plugboard/ent"
	"github.com/plugboard/plugboard/ent/credential"
	"github.com/plugboard/plugboard/ent/schema/schematype"
	"github.com/plugboard/plugboard/internal/auth"
	"github.com/plugboard/plugboard/internal/connection/scopes"
	"github.com/plugboard/plugboard/internal/oauth"
	"github.com/plugboard/plugboard/internal/onprem"
	"github.com/plugboard/plugboard/internal/secrets/sealed"
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
	// InstanceID names the instance holding an INTEGRATION credential.
	InstanceID int
	// UserID names the customer's user holding a USER credential.
	UserID int
	IsTest bool
	Values []ValueInput
	// Test runs the plugin's live test first; a failed test stores nothing.
	Test bool
	// Verify stores the values as a PENDING version and tests it while the
	// live values stay; the version is promoted only if the test passes
	// (versions.go). On a credential not saved yet it is Test: there are
	// no live values to keep.
	Verify bool
	// OnPremResourceID binds the credential to an on-prem resource of its
	// customer (onprem.go); 0 keeps the stored binding.
	OnPremResourceID int
}

// TestResult is the outcome of a plugin's live test.
type TestResult struct {
	OK      bool
	Message string
}

// recordLastErrors keeps the field errors of a rejected save of c for a
// config wizard. The values stay as they were: only last_errors changes.
func (s *Service) recordLastErrors(ctx context.Context, c *ent.Credential, ve *ValidationError) {
	out := make([]schematype.FieldError, 0, len(ve.Fields))
	for _, f := range ve.Fields {
		field := f.Field
		if field == nil {
			field = []string{}
		}
		out = append(out, schematype.FieldError{Field: field, Code: f.Code, Message: f.Message})
	}
	err := s.DB.Credential.Update().
		Where(credential.ID(c.ID)).
		SetLastErrors(out).Exec(context.WithoutCancel(ctx))
	if err != nil {
		s.log().Warn("recording the errors of a rejected save", "credential", c.ID, "err", err)
	}
}

// LastErrors returns the field errors of the last rejected save of c.
func LastErrors(c *ent.Credential) []FieldError {
	out := make([]FieldError, 0, len(c.LastErrors))
	for _, f := range c.LastErrors {
		out = append(out, FieldError{Field: f.Field, Code: f.Code, Message: f.Message})
	}
	return out
}

// secretValues lists the values of the secret inputs in vals, to redact
// from what a plugin writes.
func secretValues(inputs []schematype.Input, vals map[string]string) []string {
	var out []string
	for _, in := range inputs {
		if v := vals[in.Key]; in.Secret && v != "" {
			out = append(out, v)
		}
	}
	return out
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
		decl, ferr := settableInput(inputs, in.Key, seen)
		if ferr != nil {
			errs = append(errs, *ferr)
			continue
		}
		seen[in.Key] = true
		target := plain
		if decl.Secret {
			target = secretVals
		}
		did, size, ferr := applyValue(decl, in, target)
		if ferr != nil {
			errs = append(errs, *ferr)
			continue
		}
		total += size
		if did {
			changed = append(changed, in.Key)
		}
	}
	if total > MaxTotalBytes {
		errs = append(errs, fieldErr(CodeTooLong, fmt.Sprintf("The values add up to more than %d bytes.", MaxTotalBytes), "values"))
	}
	sort.Strings(changed)
	return changed, errs
}

// settableInput is the declaration of the input key a save sets, or why
// the save may not set it: undeclared, given twice, or a template's.
func settableInput(inputs []schematype.Input, key string, seen map[string]bool) (*schematype.Input, *FieldError) {
	decl := findInput(inputs, key)
	var f FieldError
	switch {
	case decl == nil:
		f = fieldErr(CodeUnknownInput, "The connection type declares no input "+quote(key)+".", "values", clip(key, 100))
	case seen[key]:
		f = fieldErr(CodeInvalidValue, "The input is given twice.", "values", key)
	case decl.Type == schematype.InputType(sdk.InputTemplate):
		f = fieldErr(CodeReadOnly, "The input is computed from its template; set the inputs it names instead.", "values", key)
	default:
		return decl, nil
	}
	return nil, &f
}

// applyValue applies one value of a save to target (the plain or the
// secret map): whether it changed, and the bytes it sets.
func applyValue(decl *schematype.Input, in ValueInput, target map[string]string) (changed bool, size int, ferr *FieldError) {
	switch {
	case in.Clear || (in.Value == nil && !decl.Secret):
		_, ok := target[in.Key]
		delete(target, in.Key)
		return ok, 0, nil
	case in.Value == nil:
		return false, 0, nil // a secret left out keeps its stored value
	case len(*in.Value) > MaxValueBytes:
		f := fieldErr(CodeTooLong, fmt.Sprintf("The value is longer than %d bytes.", MaxValueBytes), "values", in.Key)
		return false, 0, &f
	}
	old, ok := target[in.Key]
	target[in.Key] = *in.Value
	return !ok || old != *in.Value, len(*in.Value), nil
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
	return staticCheckFor(inputs, merged, nil)
}

// staticCheckFor is staticCheck leaving out the inputs in skip, which
// another holder fills (the customers of an ORGANIZATION_CUSTOMER
// connection).
func staticCheckFor(inputs []schematype.Input, merged map[string]string, skip map[string]bool) []FieldError {
	missing, errs := requiredErrors(inputs, merged, skip)
	ct := &sdk.ConnectionType{Inputs: InputsToSDK(inputs)}
	for _, d := range sdk.ValidateValues(ct, merged) {
		if missing[d.Field] || skip[d.Field] {
			continue
		}
		errs = append(errs, fieldErr(CodeInvalidValue, d.Summary, "values", d.Field))
	}
	return append(errs, templateErrors(inputs, merged, missing)...)
}

// requiredErrors are the required inputs without a value (or a default);
// missing holds them and the inputs in skip, not this holder's to fill.
func requiredErrors(inputs []schematype.Input, merged map[string]string, skip map[string]bool) (missing map[string]bool, errs []FieldError) {
	missing = map[string]bool{}
	for _, in := range inputs {
		if in.Type == schematype.InputType(sdk.InputTemplate) {
			continue
		}
		if skip[in.Key] {
			missing[in.Key] = true // not this holder's to fill or check
			continue
		}
		if in.Required && merged[in.Key] == "" && in.Default == "" {
			missing[in.Key] = true
			errs = append(errs, fieldErr(CodeRequired, label(in)+" is required.", "values", in.Key))
		}
	}
	return missing, errs
}

// templateErrors checks that a template has every input it names; the
// inputs in missing are reported already.
func templateErrors(inputs []schematype.Input, merged map[string]string, missing map[string]bool) []FieldError {
	var errs []FieldError
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

// checkValues runs the static check and the plugin's Validate on merged
// values and returns them resolved (defaults filled, templates rendered).
// The plugin is asked even when the static check fails, so that its words
// reach the user: its ERROR for a field replaces the static check's errors
// for that field (unless it only repeats them), and a field only one of the
// two names keeps its errors. When the static check failed and the plugin
// cannot be asked, the static errors are the answer. Inputs in skip are
// another holder's and not checked.
func (s *Service) checkValues(ctx context.Context, ct *ent.ConnectionType, merged map[string]string, skip map[string]bool, secretList []string) (map[string]string, error) {
	static := staticCheckFor(ct.Inputs, merged, skip)
	resolved, err := resolve(ct, merged)
	if err != nil {
		if len(static) > 0 {
			return nil, invalid(static...)
		}
		return nil, err
	}
	vr, err := s.Plugins.Validate(ctx, ct.Key, resolved)
	if err != nil {
		if len(static) > 0 {
			return nil, invalid(static...)
		}
		return nil, err
	}
	var diags []sdk.Diagnostic
	for _, d := range vr.Diagnostics {
		if !skip[d.Field] {
			diags = append(diags, d)
		}
	}
	if errs := mergeFieldErrors(static, diagnosticErrors(diags, secretList)); len(errs) > 0 {
		return nil, invalid(errs...)
	}
	return resolved, nil
}

// mergeFieldErrors merges the static check's errors with the plugin's, per
// field (its path): the plugin's errors for a field take the place of the
// static ones, except when they say the same, where the static ones stay
// with their more precise codes (REQUIRED, INVALID_VALUE).
func mergeFieldErrors(static, plugin []FieldError) []FieldError {
	key := func(f FieldError) string { return strings.Join(f.Field, "\x00") }
	staticMsgs := map[string]map[string]bool{}
	for _, f := range static {
		if staticMsgs[key(f)] == nil {
			staticMsgs[key(f)] = map[string]bool{}
		}
		staticMsgs[key(f)][f.Message] = true
	}
	// A field's plugin errors replace its static ones if one says more.
	replaced := map[string]bool{}
	for _, f := range plugin {
		if k := key(f); len(f.Field) > 0 && !staticMsgs[k][f.Message] {
			replaced[k] = true
		}
	}
	var out []FieldError
	for _, f := range static {
		if !replaced[key(f)] {
			out = append(out, f)
		}
	}
	for _, f := range plugin {
		k := key(f)
		if len(f.Field) == 0 || replaced[k] || staticMsgs[k] == nil {
			out = append(out, f)
		}
	}
	return out
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

func (s *Service) sealSecrets(ctx context.Context, id int, vals map[string]string) ([]byte, error) {
	if len(vals) == 0 {
		return nil, nil
	}
	b, err := json.Marshal(vals)
	if err != nil {
		return nil, err
	}
	ct, err := s.Keys.Encrypt(ctx, b, sealed.CredentialSecrets.AAD(id))
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
	b, err := s.Keys.Decrypt(ctx, c.Secrets, sealed.CredentialSecrets.AAD(c.ID))
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
	v, err := Authorize(ctx, TestCredential)
	if err != nil {
		return nil, nil, err
	}
	cred, err := s.credentialWithType(ctx, id)
	if err != nil {
		return nil, nil, err
	}
	if sc := cred.Edges.Connection.Scope; scopes.Of(sc).OrgPart(cred.Holder) {
		return nil, nil, invalid(fieldErr(CodeNotSupported,
			"The organization's values of "+aScopeConnection(sc, false)+" are tested with a customer's credential.", "id"))
	}
	secretVals, err := s.openSecrets(ctx, cred)
	if err != nil {
		return nil, nil, err
	}
	result, err := s.liveTest(ctx, cred, cred.Inputs, secretVals, false)
	if err != nil {
		return nil, nil, err
	}
	updated, err := s.recordTest(ctx, v, cred, result)
	if err != nil {
		return nil, nil, err
	}
	return updated.Unwrap(), result, nil
}

// credentialWithType loads credential id with its connection and type.
func (s *Service) credentialWithType(ctx context.Context, id int) (*ent.Credential, error) {
	cred, err := s.DB.Credential.Query().Where(credential.ID(id)).
		WithConnection(func(q *ent.ConnectionQuery) { q.WithType() }).Only(ctx)
	if ent.IsNotFound(err) {
		return nil, notFound("credential", id)
	}
	return cred, err
}

// liveTest runs the plugin's live test of cred (loaded with its connection
// and type) on the values plain and secretVals, its own or a version's,
// layered as the credential works with them. An OAuth 2.0 type is tested
// with the credential's token; with storedOnly, only when it holds one.
// The message comes back with the secrets and the token redacted; a failed
// test is a result, not an error.
func (s *Service) liveTest(ctx context.Context, cred *ent.Credential, plain, secretVals map[string]string, storedOnly bool) (*TestResult, error) {
	conn := cred.Edges.Connection
	ct := conn.Edges.Type
	merged, err := s.layerValues(ctx, conn, ct.Inputs, cred.Holder, cred.IsTest, mergeValues(plain, secretVals))
	if err != nil {
		return nil, err
	}
	resolved, err := resolve(ct, merged)
	if err != nil {
		return nil, err
	}
	var tok *oauth.Token
	if isOAuth(ct) && s.OAuth != nil && (!storedOnly || len(cred.Token) > 0) {
		if tok, err = s.Token(ctx, cred.ID, 0); err != nil {
			return nil, err
		}
	}
	info := onprem.StreamInfo{Actor: actorOf(ctx), ConnectionID: conn.ID, CredentialID: cred.ID}
	tr, err := s.testThrough(ctx, ct, resolved, tok, boundTo(cred), info)
	if err != nil {
		return nil, err
	}
	secretList := secretValues(ct.Inputs, merged)
	if tok != nil {
		secretList = append(secretList, tok.AccessToken, tok.RefreshToken)
	}
	return &TestResult{OK: tr.OK, Message: redact(tr.Message, secretList)}, nil
}

// testedStatus is the status a live test of a stored credential leaves.
func testedStatus(result *TestResult) (credential.Status, string) {
	if !result.OK {
		return credential.StatusERROR, "test failed: " + clip(result.Message, 500)
	}
	return credential.StatusACTIVE, "tested: " + clip(result.Message, 500)
}

// recordTest records the outcome of a live test of cred: when it ran, an
// audit entry, and the status.
func (s *Service) recordTest(ctx context.Context, v *auth.Viewer, cred *ent.Credential, result *TestResult) (*ent.Credential, error) {
	status, detail := testedStatus(result)
	outcome := "passed"
	if !result.OK {
		outcome = "failed"
	}
	var updated *ent.Credential
	err := s.withTx(ctx, func(tx *ent.Tx) error {
		db := tx.Client()
		if err := db.Credential.UpdateOneID(cred.ID).SetLastTestedAt(s.now()).Exec(ctx); err != nil {
			return err
		}
		if err := s.audit(ctx, db, v, auditEntry{
			credentialID: cred.ID, connectionID: cred.ConnectionID, action: "credential.tested",
			message: "live test " + outcome,
		}); err != nil {
			return err
		}
		if err := s.transition(ctx, tx, statusChange{cred: cred, to: status, detail: detail, actor: v.Actor}); err != nil {
			return err
		}
		var err error
		updated, err = db.Credential.Get(ctx, cred.ID)
		return err
	})
	return updated, err
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
	conn, ct, err := s.connectionOf(ctx, c)
	if err != nil {
		return nil, err
	}
	// A customer's user sees only the inputs shown to customers, never the
	// organization's hidden ones (client ids, authorize URLs, ...).
	v := auth.FromContext(ctx)
	customerView := customerBound(v)
	out := make([]Value, 0, len(ct.Inputs))
	for _, in := range ct.Inputs {
		if customerView && !InputShown(conn, in) {
			continue
		}
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
//
// A customer's credential of an ORGANIZATION_CUSTOMER connection works with
// the organization's ORG values merged in at read time, so a change of
// those reaches every customer at once; a connection's template presets
// fill the inputs left empty.
func (s *Service) Resolved(ctx context.Context, c *ent.Credential) (*ent.ConnectionType, map[string]string, error) {
	conn, err := s.credentialConnection(ctx, c)
	if err != nil {
		return nil, nil, err
	}
	ct := conn.Edges.Type
	secretVals, err := s.openSecrets(ctx, c)
	if err != nil {
		return nil, nil, err
	}
	merged, err := s.layerValues(ctx, conn, ct.Inputs, c.Holder, c.IsTest, mergeValues(c.Inputs, secretVals))
	if err != nil {
		return nil, nil, err
	}
	vals, err := resolve(ct, merged)
	if err != nil {
		return nil, nil, err
	}
	return ct, vals, nil
}
