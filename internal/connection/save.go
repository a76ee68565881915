package connection

import (
	"context"
	"fmt"
	"maps"
	"time"

	"github.com/plugboard/plugboard/ent"
	"github.com/plugboard/plugboard/ent/connectiontype"
	"github.com/plugboard/plugboard/ent/credential"
	"github.com/plugboard/plugboard/ent/credentialversion"
	"github.com/plugboard/plugboard/ent/schema/schematype"
	"github.com/plugboard/plugboard/internal/auth"
	"github.com/plugboard/plugboard/internal/connection/scopes"
	"github.com/plugboard/plugboard/internal/oauth"
	"github.com/plugboard/plugboard/internal/onprem"
)

// SaveCredential runs the save pipeline: the connection → its holder →
// the save's values merged over the stored ones → the static checks from
// the type's declaration and the plugin's Validate (checkValues: both run,
// their field errors merged) → a client-credentials token → an optional
// live Test → secrets encrypted → stored with an audit event. When any
// step fails nothing is stored: field problems come back as a
// *ValidationError, plugin faults as pluginhost errors. When the
// credential already exists, the field errors of a rejected save are kept
// in its last_errors (never the values) for a config wizard; a successful
// save clears them.
//
// The checks and the plugin see the values the credential works with: its
// own, for a customer's ORGANIZATION_CUSTOMER credential the organization's
// ORG values, then the connection template's presets, then the declared
// defaults. Only the holder's own values are stored.
//
// Admins save every scope. A CUSTOMER_USER viewer saves only its own
// customer's CUSTOMER credentials, INTEGRATION credentials of its
// customer's instances and its own USER credentials, and only inputs shown
// to customers; ORGANIZATION_* connections do not exist for it.
func (s *Service) SaveCredential(ctx context.Context, in SaveCredentialInput) (saved *ent.Credential, result *TestResult, err error) {
	sv := &save{svc: s, in: in}
	// The wizard shows why the last save of a stored credential was refused.
	defer func() { sv.recordRefusal(ctx, err) }()
	for _, step := range []func(context.Context) error{
		sv.loadConnection, // the connection and its type
		sv.holder,         // who holds the credential; its stored row
		sv.merge,          // the save's values over the stored ones
		sv.mode,           // whether the save may test or verify
		sv.onPrem,         // the on-prem resource it goes through
		sv.check,          // static check and the plugin's Validate
		sv.token,          // a client-credentials token
		sv.test,           // the optional live test
	} {
		if err := step(ctx); err != nil {
			return nil, sv.result, err
		}
	}
	sv.stampSecrets()
	if sv.verify {
		return s.verifySave(ctx, sv.v, sv.pending())
	}
	return sv.persist(ctx)
}

// save is one run of the save pipeline: what each step found, for the
// steps after it.
type save struct {
	svc      *Service
	in       SaveCredentialInput
	v        *auth.Viewer
	conn     *ent.Connection
	ct       *ent.ConnectionType
	h        holderRef
	existing *ent.Credential // nil when the credential is not saved yet
	// vals are the holder's own values: the stored ones with the save's.
	vals    versionValues
	changed []string // the keys the save changes
	// orgPart is the organization's part of an ORGANIZATION_CUSTOMER
	// connection; skip its inputs that each customer fills.
	orgPart  bool
	skip     map[string]bool
	verify   bool // test as a PENDING version while the live values stay
	resolved map[string]string
	secrets  []string     // secret values, redacted from what a plugin writes
	tok      *oauth.Token // a client-credentials token fetched by the save
	result   *TestResult  // the live test's outcome, when one ran
	now      time.Time
	bind     int // the on-prem resource the credential goes through, 0 for none
}

// recordRefusal keeps the field errors of a refused save of a stored
// credential in its last_errors.
func (sv *save) recordRefusal(ctx context.Context, err error) {
	if ve, ok := isFieldRejection(err); ok && sv.existing != nil {
		sv.svc.recordLastErrors(ctx, sv.existing, ve)
	}
}

// loadConnection authorizes the save and loads its connection and type.
func (sv *save) loadConnection(ctx context.Context) (err error) {
	if sv.v, err = Authorize(ctx, SaveCredential); err != nil {
		return err
	}
	conn, err := sv.svc.connectionWithType(ctx, sv.in.ConnectionID)
	if ent.IsNotFound(err) {
		return errNoConnection()
	}
	if err != nil {
		return err
	}
	sv.conn, sv.ct = conn, conn.Edges.Type
	return nil
}

// holder decides who holds the credential and loads its stored row.
func (sv *save) holder(ctx context.Context) (err error) {
	if sv.h, err = sv.svc.holderFor(ctx, sv.v, sv.conn, sv.in); err != nil {
		return err
	}
	if sv.in.IsTest && !Permits(sv.v, SaveTestCredential) {
		return invalid(fieldErr(CodeForbidden, "Test credentials are the organization's.", "isTest"))
	}
	existing, err := sv.svc.DB.Credential.Query().
		Where(credential.ConnectionID(sv.conn.ID), credential.HolderKey(sv.h.key), credential.IsTest(sv.in.IsTest)).
		Only(ctx)
	if err != nil && !ent.IsNotFound(err) {
		return err
	}
	sv.existing = existing
	return nil
}

// merge applies the save's values over the stored ones: a value the save
// leaves out keeps what is stored, secrets included.
func (sv *save) merge(ctx context.Context) error {
	sv.vals = versionValues{plain: map[string]string{}, secrets: map[string]string{}, meta: map[string]schematype.SecretMeta{}}
	if ex := sv.existing; ex != nil {
		maps.Copy(sv.vals.plain, ex.Inputs)
		secretVals, err := sv.svc.openSecrets(ctx, ex)
		if err != nil {
			return err
		}
		sv.vals.secrets = secretVals
		maps.Copy(sv.vals.meta, ex.SecretMeta)
	}
	if errs := checkWhoSets(sv.v, sv.conn, sv.ct.Inputs, sv.h, sv.in.Values); len(errs) > 0 {
		return invalid(errs...)
	}
	changed, errs := applyValues(sv.ct.Inputs, sv.in.Values, sv.vals.plain, sv.vals.secrets)
	if len(errs) > 0 {
		return invalid(errs...)
	}
	sv.changed = changed
	return nil
}

// mode decides whether the save tests, verifies, or neither.
func (sv *save) mode(context.Context) error {
	// The organization's save of an ORGANIZATION_CUSTOMER connection holds
	// only ORG inputs: the CUSTOMER ones are checked in each customer's.
	if sv.orgPart = scopes.Of(sv.conn.Scope).OrgPart(sv.h.holder); sv.orgPart {
		sv.skip = sourceKeys(sv.conn, sv.ct.Inputs, schematype.InputSourceCustomer)
		if sv.in.Test || sv.in.Verify {
			field := "test"
			if sv.in.Verify {
				field = "verify"
			}
			return invalid(fieldErr(CodeNotSupported,
				"The organization's values of "+aScopeConnection(sv.conn.Scope, false)+" are tested with a customer's credential.", field))
		}
	}
	sv.verify = sv.in.Verify && sv.existing != nil
	if sv.in.Verify && sv.existing == nil {
		sv.in.Test = true // nothing is live yet: a failed test stores nothing
	}
	if sv.verify && sv.ct.AuthKind == connectiontype.AuthKindOAUTH2_AUTHORIZATION_CODE && len(sv.existing.Token) == 0 {
		return invalid(fieldErr(CodeNotSupported,
			"The credential has no OAuth 2.0 token to verify new values with yet; save without verify and connect.", "verify"))
	}
	return nil
}

// check layers the values the credential works with, then runs the static
// check and the plugin's Validate on them (checkValues).
func (sv *save) check(ctx context.Context) error {
	merged, err := sv.svc.layerValues(ctx, sv.conn, sv.ct.Inputs, sv.h.holder, sv.in.IsTest,
		mergeValues(sv.vals.plain, sv.vals.secrets))
	if err != nil {
		return err
	}
	sv.secrets = secretValues(sv.ct.Inputs, merged)
	sv.resolved, err = sv.svc.checkValues(ctx, sv.ct, merged, sv.skip, sv.secrets)
	return err
}

// token gets a client-credentials type its token now: a refused request
// is the caller's to fix, and nothing is stored.
func (sv *save) token(ctx context.Context) (err error) {
	if sv.ct.AuthKind != connectiontype.AuthKindOAUTH2_CLIENT_CREDENTIALS || sv.orgPart {
		return nil
	}
	if sv.svc.OAuth == nil {
		return invalid(fieldErr(CodeNotSupported, "OAuth 2.0 is not configured on this server."))
	}
	if sv.tok, err = sv.svc.OAuth.FetchClientCredentials(ctx, sv.ct, sv.resolved); err != nil {
		return tokenRequestError(sv.ct, err)
	}
	return nil
}

// test runs the plugin's live test when the save asks for one (a verify
// tests later, as a PENDING version); a failed test stores nothing.
func (sv *save) test(ctx context.Context) error {
	if !sv.in.Test || sv.verify {
		return nil
	}
	info := onprem.StreamInfo{Actor: sv.v.Actor, ConnectionID: sv.conn.ID}
	if sv.existing != nil {
		info.CredentialID = sv.existing.ID
	}
	tr, err := sv.svc.testThrough(ctx, sv.ct, sv.resolved, sv.tok, sv.bind, info)
	if err != nil {
		return err
	}
	sv.result = &TestResult{OK: tr.OK, Message: redact(tr.Message, sv.secrets)}
	if !tr.OK {
		return invalid(fieldErr(CodeTestFailed, "The live test failed: "+sv.result.Message))
	}
	return nil
}

// stampSecrets dates the secrets the save sets and forgets the ones it
// clears.
func (sv *save) stampSecrets() {
	sv.now = sv.svc.now()
	for _, k := range sv.changed {
		if in := findInput(sv.ct.Inputs, k); in != nil && in.Secret {
			if _, set := sv.vals.secrets[k]; set {
				sv.vals.meta[k] = schematype.SecretMeta{UpdatedAt: sv.now.UnixMilli()}
			} else {
				delete(sv.vals.meta, k)
			}
		}
	}
}

// pending is the save as a PENDING version to verify.
func (sv *save) pending() pendingSave {
	return pendingSave{
		ct: sv.ct, existing: sv.existing, changed: sv.changed, resolved: sv.resolved, secrets: sv.secrets, tok: sv.tok,
		vals: sv.vals,
	}
}

// persist stores the save in one transaction: the row, its live values,
// the token, the audit entries and the version, then the status.
func (sv *save) persist(ctx context.Context) (*ent.Credential, *TestResult, error) {
	var saved *ent.Credential
	err := sv.svc.withTx(ctx, func(tx *ent.Tx) error {
		db := tx.Client()
		was, slot, err := sv.row(ctx, db)
		if err != nil {
			return err
		}
		if err := sv.writeLive(ctx, db, was.ID, slot.n); err != nil {
			return err
		}
		if sv.tok != nil {
			if err := sv.svc.storeToken(ctx, db, was.ID, sv.ct, sv.tok); err != nil {
				return err
			}
		}
		if err := sv.record(ctx, db, was, slot); err != nil {
			return err
		}
		// The instances it serves see the new values at run time; their
		// config state and, for the organization's values, needsDeploy
		// follow.
		if err := sv.svc.transition(ctx, tx, sv.outcome().change(was, sv.v.Actor, len(sv.changed) > 0)); err != nil {
			return err
		}
		saved, err = db.Credential.Get(ctx, was.ID)
		return err
	})
	if err != nil {
		return nil, nil, err
	}
	// What the caller shows of it (its values' inputs) needs no query.
	saved.Edges.Connection = sv.conn
	return saved.Unwrap(), sv.result, nil
}

// row is the credential the save writes, as it stood before the save, and
// the slot of the version the save makes: a credential not saved yet is
// created, at version 1.
func (sv *save) row(ctx context.Context, db *ent.Client) (*ent.Credential, versionSlot, error) {
	if ex := sv.existing; ex != nil {
		slot, err := nextVersion(ctx, db, ex.ID, ex.Version)
		return ex, slot, err
	}
	c := db.Credential.Create().
		SetOrganizationID(sv.v.OrganizationID).
		SetConnectionID(sv.conn.ID).
		SetHolder(sv.h.holder).
		SetHolderKey(sv.h.key).
		SetIsTest(sv.in.IsTest)
	// Every credential but the organization's names its customer, so the
	// customer's own are found in one place.
	if sv.h.customerID != 0 {
		c.SetCustomerID(sv.h.customerID)
	}
	if sv.h.instanceID != 0 {
		c.SetInstanceID(sv.h.instanceID)
	}
	if sv.h.userID != 0 {
		c.SetUserID(sv.h.userID)
	}
	if sv.bind != 0 {
		c.SetOnPremResourceID(sv.bind)
	}
	created, err := c.Save(ctx)
	if ent.IsConstraintError(err) {
		return nil, versionSlot{}, invalid(fieldErr(CodeTaken, "The credential was created concurrently; save again."))
	}
	if err != nil {
		return nil, versionSlot{}, err
	}
	return created, firstVersion, nil
}

// writeLive makes the save's values the live values of credential id at
// version.
func (sv *save) writeLive(ctx context.Context, db *ent.Client, id, version int) error {
	u := db.Credential.Update().Where(credential.ID(id))
	if err := sv.svc.setLiveValues(ctx, u, id, version, sv.vals); err != nil {
		return err
	}
	if sv.existing != nil {
		// Optimistic concurrency: a save that raced with another one
		// fails instead of dropping the other's values.
		u.Where(credential.Version(sv.existing.Version))
	}
	if sv.result != nil {
		u.SetLastTestedAt(sv.now)
	}
	if sv.bind != boundTo(sv.existing) {
		u.SetOnPremResourceID(sv.bind)
	}
	n, err := u.Save(ctx)
	if err != nil {
		return err
	}
	if n == 0 {
		return invalid(fieldErr(CodeTaken, "The credential changed while it was being saved; save again."))
	}
	return nil
}

// record writes the save's audit entries and its immutable version: only
// the inputs and secrets are versioned, never an OAuth 2.0 token.
func (sv *save) record(ctx context.Context, db *ent.Client, was *ent.Credential, slot versionSlot) error {
	s, v := sv.svc, sv.v
	if err := s.audit(ctx, db, v, auditEntry{
		credentialID: was.ID, connectionID: sv.conn.ID, action: "credential.saved",
		message: savedMessage(sv.changed, slot.n, sv.result != nil), created: sv.existing == nil,
	}); err != nil {
		return err
	}
	if err := s.addVersion(ctx, db, v, was, slot, sv.vals, credentialversion.StateLIVE, ""); err != nil {
		return err
	}
	return s.audit(ctx, db, v, auditEntry{
		credentialID: was.ID, connectionID: sv.conn.ID, action: "credential.version_saved",
		message: fmt.Sprintf("version %d saved and live", slot.n),
	})
}

// outcome is what the steps of the save found that decides its status.
func (sv *save) outcome() saveOutcome {
	return saveOutcome{
		ct: sv.ct, hasToken: sv.existing != nil && len(sv.existing.Token) > 0,
		orgPart: sv.orgPart, fetched: sv.tok != nil, test: sv.result,
	}
}

// saveOutcome is what the steps of a save (plain, or verified as a
// PENDING version) found that decides the status it leaves.
type saveOutcome struct {
	ct       *ent.ConnectionType
	hasToken bool // the stored credential holds an OAuth 2.0 token
	orgPart  bool // the organization's part of an ORGANIZATION_CUSTOMER connection
	fetched  bool // the save fetched a client-credentials token
	test     *TestResult
	verified bool // test is the passed test of a PENDING version
}

// saveStatus is the one decision of the status a save leaves. For OAuth
// 2.0 credentials that hold a token the status belongs to the token's
// lifecycle (refreshes, reconnects): keep is true and the save leaves it.
func saveStatus(o saveOutcome) (status credential.Status, detail string, keep bool) {
	switch {
	case o.fetched:
		return credential.StatusACTIVE, "token obtained with the client credentials", false
	case o.orgPart:
		// The organization's part holds no token: each customer's does.
		return credential.StatusACTIVE, "organization values validated", false
	case isOAuth(o.ct) && o.hasToken:
		return "", "", true
	case isOAuth(o.ct):
		return credential.StatusPENDING, "waiting for OAuth 2.0 authorization", false
	case o.test != nil && o.verified:
		return credential.StatusACTIVE, "verified: " + clip(o.test.Message, 500), false
	case o.test != nil:
		return credential.StatusACTIVE, "tested: " + clip(o.test.Message, 500), false
	}
	return credential.StatusACTIVE, "validated", false
}

// change is the transition a save of was makes: the status saveStatus
// decides, and the instances the credential serves recomputed.
func (o saveOutcome) change(was *ent.Credential, actor string, valuesChanged bool) statusChange {
	c := statusChange{cred: was, to: was.Status, actor: actor, recompute: true, orgValuesChanged: valuesChanged}
	if to, detail, keep := saveStatus(o); !keep {
		c.to, c.detail = to, detail
	}
	return c
}
