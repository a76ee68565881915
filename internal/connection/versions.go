package connection

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"

	"github.com/plugboard/plugboard/ent"
	"github.com/plugboard/plugboard/ent/connectiontype"
	"github.com/plugboard/plugboard/ent/credential"
	"github.com/plugboard/plugboard/ent/credentialversion"
	"github.com/plugboard/plugboard/ent/schema/schematype"
	"github.com/plugboard/plugboard/internal/auth"
	"github.com/plugboard/plugboard/internal/connection/scopes"
	"github.com/plugboard/plugboard/internal/oauth"
	"github.com/plugboard/plugboard/internal/onprem"
	"github.com/plugboard/plugboard/internal/pluginhost"
	"github.com/plugboard/plugboard/internal/secrets/sealed"
)

// KeepVersions is how many versions of a credential are kept. The LIVE
// version and a PENDING one are never pruned; older SUPERSEDED and
// REJECTED versions beyond the last KeepVersions go.
const KeepVersions = 10

// versionValues are the values one version holds.
type versionValues struct {
	plain   map[string]string
	secrets map[string]string
	meta    map[string]schematype.SecretMeta
}

func (s *Service) sealVersionSecrets(ctx context.Context, credID, version int, vals map[string]string) ([]byte, error) {
	if len(vals) == 0 {
		return nil, nil
	}
	b, err := json.Marshal(vals)
	if err != nil {
		return nil, err
	}
	ct, err := s.Keys.Encrypt(ctx, b, sealed.CredentialVersionSecrets.AAD(sealed.VersionKey{CredentialID: credID, Version: version}))
	if err != nil {
		return nil, fmt.Errorf("encrypting version %d of credential %d: %w", version, credID, err)
	}
	return ct, nil
}

func (s *Service) openVersionSecrets(ctx context.Context, cv *ent.CredentialVersion) (map[string]string, error) {
	out := map[string]string{}
	if len(cv.Secrets) == 0 {
		return out, nil
	}
	b, err := s.Keys.Decrypt(ctx, cv.Secrets, sealed.CredentialVersionSecrets.AAD(sealed.VersionKey{CredentialID: cv.CredentialID, Version: cv.Version}))
	if err != nil {
		return nil, fmt.Errorf("decrypting version %d of credential %d: %w", cv.Version, cv.CredentialID, err)
	}
	if err := json.Unmarshal(b, &out); err != nil {
		return nil, fmt.Errorf("decrypting version %d of credential %d: %w", cv.Version, cv.CredentialID, errors.New("malformed secret payload"))
	}
	return out, nil
}

// versionSlot is the number the next version of a credential takes and
// the versions that fall beyond the last KeepVersions once it is added.
type versionSlot struct {
	n     int
	older []int // their ids; pruneVersions deletes the SUPERSEDED and REJECTED ones
}

// firstVersion is the slot of a credential being created.
var firstVersion = versionSlot{n: 1}

// nextVersion is the slot of the next version of credential id: past both
// the credential's version and every stored version (a REJECTED one takes
// its number too). A concurrent save taking the same number fails on the
// unique (credential_id, version) index. One query finds both the number
// and what the new version pushes out.
func nextVersion(ctx context.Context, db *ent.Client, credID, current int) (versionSlot, error) {
	stored, err := db.CredentialVersion.Query().
		Where(credentialversion.CredentialID(credID)).
		Order(ent.Desc(credentialversion.FieldVersion)).
		Select(credentialversion.FieldID, credentialversion.FieldVersion).
		All(ctx)
	if err != nil {
		return versionSlot{}, err
	}
	slot := versionSlot{n: current + 1}
	if len(stored) > 0 && stored[0].Version >= slot.n {
		slot.n = stored[0].Version + 1
	}
	// The new version comes first: those from the KeepVersions-th on fall
	// out.
	for i := KeepVersions - 1; i >= 0 && i < len(stored); i++ {
		slot.older = append(slot.older, stored[i].ID)
	}
	return slot, nil
}

// addVersion stores the version of slot of credential was in state; was
// is the credential as it stood before the change. A LIVE version
// supersedes the one live before it, which keeps the status was had. Old
// versions beyond KeepVersions are pruned. It runs in the caller's
// transaction.
func (s *Service) addVersion(ctx context.Context, db *ent.Client, v *auth.Viewer, was *ent.Credential, slot versionSlot,
	vals versionValues, state credentialversion.State, message string) error {
	orgID, credID, n := was.OrganizationID, was.ID, slot.n
	sealed, err := s.sealVersionSecrets(ctx, credID, n, vals.secrets)
	if err != nil {
		return err
	}
	if state == credentialversion.StateLIVE {
		if err := supersedeLive(ctx, db, was); err != nil {
			return err
		}
	}
	c := db.CredentialVersion.Create().
		SetOrganizationID(orgID).
		SetCredentialID(credID).
		SetVersion(n).
		SetInputs(vals.plain).
		SetSecretMeta(vals.meta).
		SetState(state).
		SetActor(v.Actor).
		SetCreatedAt(s.now())
	if sealed != nil {
		c.SetSecrets(sealed)
	}
	if message != "" {
		c.SetMessage(message)
	}
	if err := c.Exec(ctx); err != nil {
		if ent.IsConstraintError(err) {
			return invalid(fieldErr(CodeTaken, "The credential changed while it was being saved; save again."))
		}
		return err
	}
	return pruneVersions(ctx, db, slot.older)
}

// supersedeLive marks the LIVE version of credential was SUPERSEDED,
// recording the status was had: what those values last earned.
// A credential being created (no status yet) has no live version.
func supersedeLive(ctx context.Context, db *ent.Client, was *ent.Credential) error {
	if was.Status == "" {
		return nil
	}
	return db.CredentialVersion.Update().
		Where(credentialversion.CredentialID(was.ID),
			credentialversion.StateEQ(credentialversion.StateLIVE)).
		SetState(credentialversion.StateSUPERSEDED).
		SetLastStatus(credentialversion.LastStatus(was.Status)).
		SetLastStatusDetail(clip(was.StatusDetail, 1000)).Exec(ctx)
}

// pruneVersions deletes those of the versions older (a slot's: beyond the
// last KeepVersions) that are SUPERSEDED or REJECTED.
func pruneVersions(ctx context.Context, db *ent.Client, older []int) error {
	if len(older) == 0 {
		return nil
	}
	_, err := db.CredentialVersion.Delete().
		Where(credentialversion.IDIn(older...),
			credentialversion.StateIn(credentialversion.StateSUPERSEDED, credentialversion.StateREJECTED)).
		Exec(ctx)
	return err
}

// DeleteVersionsOf deletes every version of the credentials ids, for a
// deletion of the credentials themselves (the versions reference them).
func DeleteVersionsOf(ctx context.Context, db *ent.Client, ids []int) error {
	if len(ids) == 0 {
		return nil
	}
	_, err := db.CredentialVersion.Delete().
		Where(credentialversion.CredentialIDIn(ids...)).
		Exec(ctx)
	return err
}

// pendingSave is a save with verify, stored as a PENDING version while the
// plugin tests it.
type pendingSave struct {
	ct       *ent.ConnectionType
	existing *ent.Credential
	vals     versionValues
	changed  []string
	resolved map[string]string
	secrets  []string
	tok      *oauth.Token // a client-credentials token fetched with the new values
}

// verifySave stores the values of p as a PENDING version, tests them with
// the plugin while the credential's live values stay, then promotes the
// version (test passed) or rejects it (test failed or could not run).
func (s *Service) verifySave(ctx context.Context, v *auth.Viewer, p pendingSave) (*ent.Credential, *TestResult, error) {
	n, err := s.stagePending(ctx, v, p)
	if err != nil {
		return nil, nil, err
	}
	result, err := s.testPending(ctx, v, p, n)
	if err != nil {
		return nil, result, err
	}
	saved, err := s.promotePending(ctx, v, p, n, result)
	if errors.Is(err, errVersionRaced) {
		verr := invalid(fieldErr(CodeTaken, "The credential changed while its new version was tested; save again."))
		return nil, result, s.rejectVersion(ctx, v, p.existing, n, "another save went live while it was tested", verr)
	}
	if err != nil {
		return nil, nil, err
	}
	return saved.Unwrap(), result, nil
}

// stagePending stores the values of p as the PENDING version it returns.
func (s *Service) stagePending(ctx context.Context, v *auth.Viewer, p pendingSave) (n int, err error) {
	ex := p.existing
	err = s.withTx(ctx, func(tx *ent.Tx) error {
		db := tx.Client()
		slot, err := nextVersion(ctx, db, ex.ID, ex.Version)
		if err != nil {
			return err
		}
		n = slot.n
		if err := s.addVersion(ctx, db, v, ex, slot, p.vals, credentialversion.StatePENDING, "waiting for its live test"); err != nil {
			return err
		}
		return s.audit(ctx, db, v, auditEntry{
			credentialID: ex.ID, connectionID: ex.ConnectionID, action: "credential.version_saved",
			message: savedMessage(p.changed, n, false) + "; pending its live test (version " + strconv.Itoa(ex.Version) + " stays live)",
		})
	})
	return n, err
}

// testPending runs the plugin's live test on the PENDING version n of p.
// A test that fails or cannot run rejects the version; a failed test comes
// back with its result.
func (s *Service) testPending(ctx context.Context, v *auth.Viewer, p pendingSave, n int) (*TestResult, error) {
	ex := p.existing
	tok := p.tok
	if tok == nil && isOAuth(p.ct) && s.OAuth != nil && len(ex.Token) > 0 {
		// An authorization-code credential is tested with its stored token.
		var err error
		if tok, err = s.Token(ctx, ex.ID, 0); err != nil {
			return nil, s.rejectVersion(ctx, v, ex, n, "the stored OAuth 2.0 token is not usable", err)
		}
	}
	info := onprem.StreamInfo{Actor: v.Actor, ConnectionID: ex.ConnectionID, CredentialID: ex.ID}
	tr, err := s.testThrough(ctx, p.ct, p.resolved, tok, boundTo(ex), info)
	if err != nil {
		why := "the live test could not run"
		if errors.Is(err, pluginhost.ErrUnavailable) || errors.Is(err, pluginhost.ErrTimeout) {
			why = "plugin unavailable"
		}
		return nil, s.rejectVersion(ctx, v, ex, n, why, err)
	}
	secretList := p.secrets
	if tok != nil {
		secretList = append(secretList, tok.AccessToken, tok.RefreshToken)
	}
	result := &TestResult{OK: tr.OK, Message: redact(tr.Message, secretList)}
	if !tr.OK {
		verr := invalid(fieldErr(CodeTestFailed, fmt.Sprintf("The live test of version %d failed: %s", n, result.Message)))
		return result, s.rejectVersion(ctx, v, ex, n, "live test failed: "+clip(result.Message, 500), verr)
	}
	return result, nil
}

// promotePending makes the PENDING version n of p live after its test
// passed: the credential takes the version's values, and the status
// saveStatus decides for a verified save. errVersionRaced says another
// save went live meanwhile.
func (s *Service) promotePending(ctx context.Context, v *auth.Viewer, p pendingSave, n int, result *TestResult) (*ent.Credential, error) {
	ex := p.existing
	out := saveOutcome{ct: p.ct, hasToken: len(ex.Token) > 0, fetched: p.tok != nil, test: result, verified: true}
	var saved *ent.Credential
	err := s.withTx(ctx, func(tx *ent.Tx) error {
		db := tx.Client()
		if err := s.promoteRow(ctx, db, p, n); err != nil {
			return err
		}
		if err := s.audit(ctx, db, v, auditEntry{
			credentialID: ex.ID, connectionID: ex.ConnectionID, action: "credential.version_promoted",
			message: fmt.Sprintf("version %d passed its live test and is live (was version %d)", n, ex.Version),
		}); err != nil {
			return err
		}
		if err := s.transition(ctx, tx, out.change(ex, v.Actor, len(p.changed) > 0)); err != nil {
			return err
		}
		var err error
		saved, err = db.Credential.Get(ctx, ex.ID)
		return err
	})
	return saved, err
}

// promoteRow writes version n of p as the credential's live values (and
// the client-credentials token it was tested with) and marks the version
// LIVE, the one live before it SUPERSEDED.
func (s *Service) promoteRow(ctx context.Context, db *ent.Client, p pendingSave, n int) error {
	ex := p.existing
	u := db.Credential.Update().
		Where(credential.ID(ex.ID), credential.Version(ex.Version)).
		SetLastTestedAt(s.now())
	if err := s.setLiveValues(ctx, u, ex.ID, n, p.vals); err != nil {
		return err
	}
	cnt, err := u.Save(ctx)
	if err != nil {
		return err
	}
	if cnt == 0 {
		return errVersionRaced
	}
	if p.tok != nil {
		if err := s.storeToken(ctx, db, ex.ID, p.ct, p.tok); err != nil {
			return err
		}
	}
	if err := supersedeLive(ctx, db, ex); err != nil {
		return err
	}
	return db.CredentialVersion.Update().
		Where(credentialversion.CredentialID(ex.ID),
			credentialversion.Version(n), credentialversion.StateEQ(credentialversion.StatePENDING)).
		SetState(credentialversion.StateLIVE).SetMessage("live test passed").Exec(ctx)
}

var errVersionRaced = errors.New("credential changed during verification")

// rejectVersion marks the PENDING version n REJECTED with why (never a
// value) and returns cause. The credential is left as it is.
func (s *Service) rejectVersion(ctx context.Context, v *auth.Viewer, ex *ent.Credential, n int, why string, cause error) error {
	ctx = context.WithoutCancel(ctx)
	err := s.withTx(ctx, func(tx *ent.Tx) error {
		db := tx.Client()
		if err := db.CredentialVersion.Update().
			Where(credentialversion.CredentialID(ex.ID),
				credentialversion.Version(n), credentialversion.StateEQ(credentialversion.StatePENDING)).
			SetState(credentialversion.StateREJECTED).SetMessage(why).Exec(ctx); err != nil {
			return err
		}
		return s.audit(ctx, db, v, auditEntry{
			credentialID: ex.ID, connectionID: ex.ConnectionID, action: "credential.version_rejected",
			message: fmt.Sprintf("version %d rejected: %s; version %d stays live", n, why, ex.Version),
		})
	})
	if err != nil {
		s.log().Error("rejecting a credential version", "credential", ex.ID, "version", n, "err", err)
	}
	return cause
}

func isOAuth(ct *ent.ConnectionType) bool {
	return ct.AuthKind == connectiontype.AuthKindOAUTH2_AUTHORIZATION_CODE ||
		ct.AuthKind == connectiontype.AuthKindOAUTH2_CLIENT_CREDENTIALS
}

// RollbackCredential makes the values of an earlier version of credential
// id live again, as a new version (history stays linear). Only a version
// that was live (LIVE or SUPERSEDED) can be rolled back to.
//
// A rollback never claims more than it knows. OAuth 2.0 credentials keep
// their token and its status. Others take the status the values last
// earned (recorded when that version stopped being live; PENDING when it
// was not recorded), or with verify the plugin tests the values first: a
// failed test refuses the rollback (TEST_FAILED) and changes nothing, a
// passed one makes the credential ACTIVE.
func (s *Service) RollbackCredential(ctx context.Context, id, version int, verify bool) (*ent.Credential, *TestResult, error) {
	v, err := Authorize(ctx, RollbackCredential)
	if err != nil {
		return nil, nil, err
	}
	cred, err := s.credentialWithType(ctx, id)
	if err != nil {
		return nil, nil, err
	}
	target, err := s.rollbackTarget(ctx, cred.ID, version)
	if err != nil {
		return nil, nil, err
	}
	vals, err := s.versionValuesOf(ctx, target)
	if err != nil {
		return nil, nil, err
	}
	conn := cred.Edges.Connection
	orgPart := scopes.Of(conn.Scope).OrgPart(cred.Holder)
	if verify && orgPart {
		return nil, nil, invalid(fieldErr(CodeNotSupported, "The organization's values of "+
			aScopeConnection(conn.Scope, false)+" are tested with a customer's credential.", "verify"))
	}
	rs := rollbackStatusOf(cred, target, isOAuth(conn.Edges.Type) && !orgPart)
	var tr *TestResult
	if verify {
		if tr, err = s.testVersionValues(ctx, cred, vals); err != nil {
			return nil, tr, err
		}
		rs.tested = true
		if !rs.keep {
			rs.status, rs.detail = credential.StatusACTIVE, fmt.Sprintf("rolled back to the values of version %d; verified: %s", version, clip(tr.Message, 500))
		}
	}
	saved, err := s.commitRollback(ctx, v, cred, version, vals, rs)
	return saved, tr, err
}

// versionValuesOf opens the values version cv holds.
func (s *Service) versionValuesOf(ctx context.Context, cv *ent.CredentialVersion) (versionValues, error) {
	secretVals, err := s.openVersionSecrets(ctx, cv)
	if err != nil {
		return versionValues{}, err
	}
	vals := versionValues{plain: cv.Inputs, secrets: secretVals, meta: cv.SecretMeta}
	if vals.plain == nil {
		vals.plain = map[string]string{}
	}
	if vals.meta == nil {
		vals.meta = map[string]schematype.SecretMeta{}
	}
	return vals, nil
}

// rollbackTarget loads version of credential credID, refusing a version
// that was never live.
func (s *Service) rollbackTarget(ctx context.Context, credID, version int) (*ent.CredentialVersion, error) {
	target, err := s.DB.CredentialVersion.Query().
		Where(credentialversion.CredentialID(credID), credentialversion.Version(version)).Only(ctx)
	if ent.IsNotFound(err) {
		return nil, invalid(fieldErr(CodeNotFound,
			fmt.Sprintf("The credential has no version %d (the last %d versions are kept).", version, KeepVersions), "version"))
	}
	if err != nil {
		return nil, err
	}
	switch target.State {
	case credentialversion.StateLIVE:
		return nil, invalid(fieldErr(CodeInvalidValue, fmt.Sprintf("Version %d is already live.", version), "version"))
	case credentialversion.StatePENDING:
		return nil, invalid(fieldErr(CodeInvalidValue,
			fmt.Sprintf("Version %d is still being verified and was never live; it cannot be rolled back to.", version), "version"))
	case credentialversion.StateREJECTED:
		return nil, invalid(fieldErr(CodeInvalidValue,
			fmt.Sprintf("Version %d was rejected by its live test and was never live; it cannot be rolled back to.", version), "version"))
	}
	return target, nil
}

// rollbackStatus is the status a rollback leaves: keep says the
// credential's own (an OAuth 2.0 token's) stays; tested says a live test
// of the values passed just now.
type rollbackStatus struct {
	status credential.Status
	detail string
	keep   bool
	tested bool
}

// rollbackStatusOf is the status a rollback to target leaves without a
// test: the one its values last earned, PENDING if that was not recorded.
func rollbackStatusOf(cred *ent.Credential, target *ent.CredentialVersion, keep bool) rollbackStatus {
	if keep {
		return rollbackStatus{status: cred.Status, detail: cred.StatusDetail, keep: true}
	}
	if target.LastStatus == nil {
		return rollbackStatus{status: credential.StatusPENDING, detail: fmt.Sprintf(
			"rolled back to the values of version %d, whose status was not recorded; test them", target.Version)}
	}
	detail := fmt.Sprintf("rolled back to the values of version %d, %s when last live", target.Version, *target.LastStatus)
	if target.LastStatusDetail != "" {
		detail += " (" + clip(target.LastStatusDetail, 400) + ")"
	}
	return rollbackStatus{status: credential.Status(*target.LastStatus), detail: detail}
}

// testVersionValues runs the plugin's live test on a version's values of
// cred, with the credential's token for OAuth 2.0 types. A failed test is
// a TEST_FAILED field error with the result.
func (s *Service) testVersionValues(ctx context.Context, cred *ent.Credential, vals versionValues) (*TestResult, error) {
	result, err := s.liveTest(ctx, cred, vals.plain, vals.secrets, true)
	if err != nil {
		return nil, err
	}
	if !result.OK {
		return result, invalid(fieldErr(CodeTestFailed, "The live test of the values failed; nothing was rolled back: "+result.Message, "verify"))
	}
	return result, nil
}

// commitRollback stores vals as the new live version of cred with the
// status rs, audits it, and brings the instances up to date.
func (s *Service) commitRollback(ctx context.Context, v *auth.Viewer, cred *ent.Credential, version int,
	vals versionValues, rs rollbackStatus) (*ent.Credential, error) {
	var saved *ent.Credential
	err := s.withTx(ctx, func(tx *ent.Tx) error {
		db := tx.Client()
		slot, err := s.writeRollback(ctx, db, cred, vals, rs.tested)
		if err != nil {
			return err
		}
		n := slot.n
		msg := fmt.Sprintf("rolled back from version %d to the values of version %d", cred.Version, version)
		if err := s.addVersion(ctx, db, v, cred, slot, vals, credentialversion.StateLIVE, msg); err != nil {
			return err
		}
		if err := s.audit(ctx, db, v, auditEntry{
			credentialID: cred.ID, connectionID: cred.ConnectionID, action: "credential.rolled_back",
			message: fmt.Sprintf("version %d made live with the values of version %d (was version %d)", n, version, cred.Version),
		}); err != nil {
			return err
		}
		change := statusChange{cred: cred, to: cred.Status, actor: v.Actor, recompute: true, orgValuesChanged: true}
		if !rs.keep {
			change.to, change.detail = rs.status, rs.detail
		}
		if err := s.transition(ctx, tx, change); err != nil {
			return err
		}
		saved, err = db.Credential.Get(ctx, cred.ID)
		return err
	})
	if err != nil {
		return nil, err
	}
	return saved.Unwrap(), nil
}

// writeRollback makes vals the live values of cred at the next version,
// whose slot it returns, unless another change came first.
func (s *Service) writeRollback(ctx context.Context, db *ent.Client, cred *ent.Credential, vals versionValues, tested bool) (versionSlot, error) {
	slot, err := nextVersion(ctx, db, cred.ID, cred.Version)
	if err != nil {
		return versionSlot{}, err
	}
	u := db.Credential.Update().
		Where(credential.ID(cred.ID), credential.Version(cred.Version))
	if err := s.setLiveValues(ctx, u, cred.ID, slot.n, vals); err != nil {
		return versionSlot{}, err
	}
	if tested {
		u.SetLastTestedAt(s.now())
	}
	if cnt, err := u.Save(ctx); err != nil {
		return versionSlot{}, err
	} else if cnt == 0 {
		return versionSlot{}, invalid(fieldErr(CodeTaken, "The credential changed while it was being rolled back; try again."))
	}
	return slot, nil
}

// setLiveValues makes vals the live values of credential id at version n
// on u: plain inputs, secret metadata, the secrets sealed under the
// credential's own AAD, and no errors of an earlier rejected save. Callers
// add their own conditions and fields.
func (s *Service) setLiveValues(ctx context.Context, u *ent.CredentialUpdate, id, n int, vals versionValues) error {
	sealed, err := s.sealSecrets(ctx, id, vals.secrets)
	if err != nil {
		return err
	}
	u.SetInputs(vals.plain).SetSecretMeta(vals.meta).SetVersion(n).ClearLastErrors()
	if sealed == nil {
		u.ClearSecrets()
	} else {
		u.SetSecrets(sealed)
	}
	return nil
}
