package connection

import (
	"context"
	"errors"
	"fmt"
	"runtime/debug"
	"strings"

	"github.com/plugboard/plugboard/ent"
	"github.com/plugboard/plugboard/ent/connectionslot"
	"github.com/plugboard/plugboard/ent/credential"
	"github.com/plugboard/plugboard/ent/instance"
	"github.com/plugboard/plugboard/ent/instancebinding"
	"github.com/plugboard/plugboard/ent/integration"
	"github.com/plugboard/plugboard/ent/schema/schematype"
	"github.com/plugboard/plugboard/internal/auth"
	"github.com/plugboard/plugboard/internal/connection/scopes"
)

// How a slot of an instance finds its credential:
//
//   - an explicit binding (bindInstanceConnection) wins;
//   - otherwise it is resolved at read time, without a binding row:
//     ORGANIZATION_GLOBAL uses the organization's credential,
//     ORGANIZATION_CUSTOMER the instance customer's credential (merged with
//     the organization's ORG values; the organization's own credential
//     when the connection has no CUSTOMER input), INTEGRATION the
//     credential made in the instance's wizard, CUSTOMER the customer's
//     credential of the slot's connection (reusable across its instances);
//   - USER slots need a binding: which user's credential an instance uses
//     is the customer's choice.
//
// A binding may also name a customer's credential of another CUSTOMER
// connection of the same type (the wizard's SELECT_EXISTING).
//
// A TEST instance uses the test credential of the same holder when one
// exists; a PRODUCTION instance never uses a test credential nor a
// build-only connection.

// SlotState is one slot of an instance and the credential it uses.
type SlotState struct {
	Slot       *ent.ConnectionSlot
	Connection *ent.Connection
	// Credential is the credential the slot uses, nil if none.
	Credential *ent.Credential
	// OrgCredential is, for ORGANIZATION_CUSTOMER slots, the organization's
	// credential whose ORG values merge into Credential.
	OrgCredential *ent.Credential
	// Bound says Credential comes from an explicit binding.
	Bound bool
	// Satisfied says the slot is ready: an ACTIVE credential usable in the
	// instance's environment.
	Satisfied bool
	// Problem says why the slot is not satisfied; never a value.
	Problem string
	// BuildOnly is the build-only connection that keeps the slot of a
	// PRODUCTION instance unsatisfied, if any.
	BuildOnly *ent.Connection
	// CustomerStatus is, for a customer's user, the status of the slot's
	// credential when the credential itself is not the user's to see.
	CustomerStatus *credential.Status
}

// Status is the status of the slot's credential, nil without one.
func (st *SlotState) Status() *credential.Status {
	if st.CustomerStatus != nil {
		return st.CustomerStatus
	}
	if st.Credential == nil {
		return nil
	}
	s := st.Credential.Status
	return &s
}

// slotStates resolves every slot of inst, in slot order. It is the truth
// of the instance whoever asks: it reads as plugboard inside the instance's
// organization (the tenant filter holds every read to it), so a slot whose
// connection the viewer may not see (an organization-managed one, for a
// customer's user) still resolves. Callers show a viewer only what it may
// see (InstanceSlots).
func (s *Service) slotStates(ctx context.Context, db *ent.Client, inst *ent.Instance) ([]*SlotState, error) {
	ctx = auth.OrganizationContext(ctx, inst.OrganizationID)
	slots, err := db.ConnectionSlot.Query().
		Where(connectionslot.IntegrationID(inst.IntegrationID)).
		WithConnection().
		Order(ent.Asc(connectionslot.FieldPosition), ent.Asc(connectionslot.FieldID)).
		All(ctx)
	if err != nil {
		return nil, err
	}
	if len(slots) == 0 {
		return nil, nil
	}
	r, err := s.newSlotResolver(ctx, db, inst, slots)
	if err != nil {
		return nil, err
	}
	out := make([]*SlotState, 0, len(slots))
	for _, sl := range slots {
		st, err := r.resolve(ctx, sl)
		if err != nil {
			return nil, err
		}
		judgeSlot(st, r.test)
		out = append(out, st)
	}
	return out, nil
}

// slotResolver finds the credential of each slot of one instance: its
// bindings, and the credentials its slots' holders hold.
type slotResolver struct {
	s     *Service
	db    *ent.Client
	inst  *ent.Instance
	test  bool
	bound map[int]*ent.Credential
	cands []*ent.Credential
}

// newSlotResolver loads the instance's bindings and the credentials of
// the slots' connections held by the organization, the instance's customer
// and the instance.
func (s *Service) newSlotResolver(ctx context.Context, db *ent.Client, inst *ent.Instance, slots []*ent.ConnectionSlot) (*slotResolver, error) {
	bindings, err := db.InstanceBinding.Query().
		Where(instancebinding.InstanceID(inst.ID)).
		WithCredential(func(q *ent.CredentialQuery) { q.WithConnection() }).All(ctx)
	if err != nil {
		return nil, err
	}
	r := &slotResolver{s: s, db: db, inst: inst, test: inst.Environment == instance.EnvironmentTEST, bound: map[int]*ent.Credential{}}
	for _, b := range bindings {
		r.bound[b.SlotID] = b.Edges.Credential
	}
	connIDs := make([]int, 0, len(slots))
	for _, sl := range slots {
		connIDs = append(connIDs, sl.ConnectionID)
	}
	r.cands, err = db.Credential.Query().Where(
		credential.ConnectionIDIn(connIDs...),
		credential.HolderKeyIn("org", customerHolderKey(inst.CustomerID), instanceHolderKey(inst.ID)),
	).All(ctx)
	if err != nil {
		return nil, err
	}
	return r, nil
}

// pick returns the credential of (connection, holder key) the instance's
// environment uses.
func (r *slotResolver) pick(connID int, key string) *ent.Credential {
	var real, tst *ent.Credential
	for _, c := range r.cands {
		if c.ConnectionID != connID || c.HolderKey != key {
			continue
		}
		if c.IsTest {
			tst = c
		} else {
			real = c
		}
	}
	if r.test && tst != nil {
		return tst
	}
	return real
}

// holderKey is the key of the holder of an unbound slot's credential; ""
// for a holder that needs a binding (which user's credential an instance
// uses is the customer's choice).
func (r *slotResolver) holderKey(h credential.Holder) string {
	switch h {
	case credential.HolderORGANIZATION:
		return "org"
	case credential.HolderCUSTOMER:
		return customerHolderKey(r.inst.CustomerID)
	case credential.HolderINSTANCE:
		return instanceHolderKey(r.inst.ID)
	}
	return ""
}

// resolve finds the credential of one slot: its binding, else the one its
// scope's holder holds; for a scope that splits its inputs, also the
// organization's credential whose ORG values merge into it.
func (r *slotResolver) resolve(ctx context.Context, sl *ent.ConnectionSlot) (*SlotState, error) {
	conn := sl.Edges.Connection
	p := scopes.Of(conn.Scope)
	st := &SlotState{Slot: sl, Connection: conn}
	if c, ok := r.bound[sl.ID]; ok && c != nil {
		st.Credential, st.Bound = c, true
		if err := r.useTestCredential(ctx, st); err != nil {
			return nil, err
		}
	} else if key := r.holderKey(p.Holder); key != "" {
		st.Credential = r.pick(conn.ID, key)
		if p.SplitsInputs() {
			st.OrgCredential = r.pick(conn.ID, "org")
			if st.Credential == nil && !r.s.hasCustomerInputs(ctx, conn) {
				st.Credential, st.OrgCredential = st.OrgCredential, nil
			}
		}
	}
	if p.SplitsInputs() && st.Credential != nil && st.Credential.Holder != credential.HolderORGANIZATION && st.OrgCredential == nil {
		st.OrgCredential = r.pick(conn.ID, "org")
	}
	return st, nil
}

// useTestCredential makes a TEST instance's bound slot use the holder's
// test credential when there is one.
func (r *slotResolver) useTestCredential(ctx context.Context, st *SlotState) error {
	c := st.Credential
	if !r.test || c.IsTest {
		return nil
	}
	tc, err := r.db.Credential.Query().Where(credential.ConnectionID(c.ConnectionID),
		credential.HolderKey(c.HolderKey), credential.IsTest(true)).Only(ctx)
	if err != nil && !ent.IsNotFound(err) {
		return err
	}
	if tc != nil {
		st.Credential = tc
	}
	return nil
}

// judgeSlot says whether a resolved slot is satisfied, and if not why.
func judgeSlot(st *SlotState, test bool) {
	sl := st.Slot
	buildOnly := st.Connection
	if st.Credential != nil && st.Credential.ConnectionID != buildOnly.ID {
		if c, err := st.Credential.Edges.ConnectionOrErr(); err == nil && c.BuildOnly {
			buildOnly = c
		}
	}
	switch {
	case buildOnly.BuildOnly && !test:
		st.BuildOnly = buildOnly
		st.Problem = fmt.Sprintf("Connection %q is build-only: it serves only TEST instances.", buildOnly.StableKey)
	case st.Credential == nil:
		st.Problem = fmt.Sprintf("Slot %q has no credential yet.", sl.Key)
	case st.Credential.IsTest && !test:
		st.Problem = fmt.Sprintf("Slot %q is bound to a test credential; PRODUCTION instances use real ones.", sl.Key)
	case st.Credential.Status != credential.StatusACTIVE:
		st.Problem = fmt.Sprintf("The credential of slot %q is %s.", sl.Key, st.Credential.Status)
	case st.OrgCredential != nil && st.OrgCredential.Status != credential.StatusACTIVE:
		st.Problem = fmt.Sprintf("The organization's values of slot %q are %s.", sl.Key, st.OrgCredential.Status)
	default:
		st.Satisfied = true
	}
}

// hasCustomerInputs reports whether an ORGANIZATION_CUSTOMER connection has
// an input its customers fill.
func (s *Service) hasCustomerInputs(ctx context.Context, conn *ent.Connection) bool {
	ct, err := conn.Edges.TypeOrErr()
	if err != nil {
		if ct, err = s.DB.ConnectionType.Get(ctx, conn.TypeID); err != nil {
			return true
		}
	}
	return len(sourceKeys(conn, ct.Inputs, schematype.InputSourceCustomer)) > 0
}

func configStateOf(states []*SlotState) instance.ConfigState {
	for _, st := range states {
		if !st.Satisfied {
			return instance.ConfigStateNEEDS_CONFIGURATION
		}
	}
	return instance.ConfigStateCONFIGURED
}

// viewerInstance loads an instance the viewer may act on: any of its
// organization's for an admin, its customer's for a customer's user.
func (s *Service) viewerInstance(ctx context.Context, v *auth.Viewer, id int) (*ent.Instance, error) {
	q := s.DB.Instance.Query().Where(instance.ID(id))
	if customerBound(v) {
		q.Where(instance.CustomerID(v.CustomerID))
	}
	inst, err := q.Only(ctx)
	if ent.IsNotFound(err) {
		return nil, notFound("instance", id)
	}
	return inst, err
}

// InstanceSlots returns the slots of an instance and what each uses, as
// the viewer may see them. A customer's user sees every slot's status; of
// the credentials, only those it sees elsewhere: never the organization's
// (of an organization-managed slot), nor another user's.
func (s *Service) InstanceSlots(ctx context.Context, inst *ent.Instance) ([]*SlotState, error) {
	v, err := auth.Require(ctx)
	if err != nil {
		return nil, err
	}
	if v.OrganizationID != inst.OrganizationID || (customerBound(v) && inst.CustomerID != v.CustomerID) {
		return nil, notFound("instance", inst.ID)
	}
	if _, err := Authorize(ctx, ReadInstanceSlots); err != nil {
		return nil, err
	}
	states, err := s.slotStates(ctx, s.DB, inst)
	if err != nil || !customerBound(v) {
		return states, err
	}
	out := make([]*SlotState, 0, len(states))
	for _, st := range states {
		cp := *st
		cp.OrgCredential, cp.BuildOnly = nil, nil
		// The slot's edges were read as plugboard: the viewer's own reads
		// load them again, so it sees an organization-managed connection
		// no more than elsewhere.
		sl := *st.Slot
		sl.Edges = ent.ConnectionSlotEdges{}
		cp.Slot = &sl
		if c := st.Credential; c != nil && (!scopes.Of(st.Connection.Scope).CustomerVisible() || !ownedBy(c, inst, v)) {
			// The status stays: the customer sees how its slot stands.
			status := c.Status
			cp.Credential, cp.CustomerStatus = nil, &status
		}
		out = append(out, &cp)
	}
	return out, nil
}

// refreshInstances recomputes the config state of the instances, and
// when orgCred is not 0 marks those of them that are deployed and use that
// organization credential as needing a deploy. The write hook holds each
// update to the organization of ctx's viewer.
func (s *Service) refreshInstances(ctx context.Context, db *ent.Client, insts []*ent.Instance, orgCred int) error {
	for _, inst := range insts {
		states, err := s.slotStates(ctx, db, inst)
		if err != nil {
			return err
		}
		var ch instanceChange
		if cs := configStateOf(states); cs != inst.ConfigState {
			ch.state = &cs
		}
		if orgCred != 0 && inst.DeployedAt != nil && !inst.NeedsDeploy {
			for _, st := range states {
				if (st.Credential != nil && st.Credential.ID == orgCred) || (st.OrgCredential != nil && st.OrgCredential.ID == orgCred) {
					ch.needsDeploy = true
					break
				}
			}
		}
		if err := s.applyInstanceChange(ctx, db, inst, ch); err != nil {
			return err
		}
	}
	return nil
}

// instanceChange is what refreshInstances found to change of an instance.
type instanceChange struct {
	state       *instance.ConfigState
	needsDeploy bool
}

func (c instanceChange) exec(ctx context.Context, db *ent.Client, id int) error {
	u := db.Instance.Update().Where(instance.ID(id))
	if c.state != nil {
		u.SetConfigState(*c.state)
	}
	if c.needsDeploy {
		u.SetNeedsDeploy(true)
	}
	return u.Exec(ctx)
}

// applyInstanceChange writes ch. An instance becoming CONFIGURED gets its
// instance.configured entry in the same transaction: db's own when it is
// a transaction's client, a new one otherwise.
func (s *Service) applyInstanceChange(ctx context.Context, db *ent.Client, inst *ent.Instance, ch instanceChange) error {
	if ch.state == nil && !ch.needsDeploy {
		return nil
	}
	if ch.state == nil || *ch.state != instance.ConfigStateCONFIGURED {
		return ch.exec(ctx, db, inst.ID)
	}
	actor := "system"
	if v := auth.FromContext(ctx); v != nil {
		actor = v.Actor
	}
	e := auditEntry{
		orgID: inst.OrganizationID, actor: actor, action: EventInstanceConfigured, instanceID: inst.ID,
		message: fmt.Sprintf("instance %d configured", inst.ID),
	}
	write := func(db *ent.Client) error {
		if err := ch.exec(ctx, db, inst.ID); err != nil {
			return err
		}
		return s.writeAudit(ctx, db, e)
	}
	tx, err := db.Tx(ctx)
	if errors.Is(err, ent.ErrTxStarted) {
		return write(db)
	}
	if err != nil {
		return fmt.Errorf("starting transaction: %w", err)
	}
	return finishTx(tx, write(tx.Client()))
}

// instancesUsing returns the instances whose integration has a slot of
// the connection; of one customer when customerID is not 0.
func instancesUsing(ctx context.Context, db *ent.Client, connID, customerID int) ([]*ent.Instance, error) {
	q := db.Instance.Query().Where(instance.HasIntegrationWith(
		integration.HasSlotsWith(connectionslot.ConnectionID(connID))))
	if customerID != 0 {
		q.Where(instance.CustomerID(customerID))
	}
	return q.Order(ent.Asc(instance.FieldID)).All(ctx)
}

// afterCredentialChange brings the instances a credential serves up to
// date: their config state, and for a change of the organization's values,
// needsDeploy of the deployed ones.
//
// It runs after the change committed, so the change's answer must not
// depend on it: a fault here is returned (and logged by the caller), a
// panic included, never raised into the answer.
func (s *Service) afterCredentialChange(ctx context.Context, c *ent.Credential, orgValuesChanged bool) (err error) {
	defer func() {
		if p := recover(); p != nil {
			s.log().Error("panic recomputing the instances of a credential", "credential", c.ID, "panic", p, "stack", string(debug.Stack()))
			err = fmt.Errorf("recomputing the instances of credential %d: %v", c.ID, p)
		}
	}()
	customerID := 0
	if c.CustomerID != nil {
		customerID = *c.CustomerID
	}
	insts, err := instancesUsing(ctx, s.DB, c.ConnectionID, customerID)
	if err != nil {
		return err
	}
	orgCred := 0
	if orgValuesChanged && c.Holder == credential.HolderORGANIZATION {
		orgCred = c.ID
	}
	return s.refreshInstances(ctx, s.DB, insts, orgCred)
}

// CreateInstanceInput is a new instance of an integration for a customer.
type CreateInstanceInput struct {
	IntegrationID int
	CustomerID    int
	Name          string
	Environment   instance.Environment
}

// CreateInstance deploys nothing yet: it creates the instance with its
// config state computed from what its slots resolve to.
func (s *Service) CreateInstance(ctx context.Context, in CreateInstanceInput) (*ent.Instance, error) {
	v, err := Authorize(ctx, ManageInstances)
	if err != nil {
		return nil, err
	}
	var errs []FieldError
	if ok, err := s.integrationExists(ctx, in.IntegrationID); err != nil {
		return nil, err
	} else if !ok {
		errs = append(errs, fieldErr(CodeNotFound, "No such integration.", "integrationID"))
	}
	if ok, err := s.customerExists(ctx, in.CustomerID); err != nil {
		return nil, err
	} else if !ok {
		errs = append(errs, fieldErr(CodeNotFound, "No such customer.", "customerID"))
	}
	if strings.TrimSpace(in.Name) == "" || len(in.Name) > 200 {
		errs = append(errs, fieldErr(CodeInvalidValue, "A name is 1 to 200 characters.", "name"))
	}
	errs = append(errs, checkChars(in.Name, displayText, "name")...)
	if in.Environment == "" {
		in.Environment = instance.EnvironmentPRODUCTION
	}
	if err := instance.EnvironmentValidator(in.Environment); err != nil {
		errs = append(errs, fieldErr(CodeInvalidValue, "The environment is PRODUCTION or TEST.", "environment"))
	}
	if len(errs) > 0 {
		return nil, invalid(errs...)
	}
	var created *ent.Instance
	err = s.withTx(ctx, func(tx *ent.Tx) error {
		db := tx.Client()
		row, err := db.Instance.Create().
			SetOrganizationID(v.OrganizationID).
			SetIntegrationID(in.IntegrationID).
			SetCustomerID(in.CustomerID).
			SetName(strings.TrimSpace(in.Name)).
			SetEnvironment(in.Environment).
			Save(ctx)
		if err != nil {
			return err
		}
		if err := s.refreshInstances(ctx, db, []*ent.Instance{row}, 0); err != nil {
			return err
		}
		if created, err = db.Instance.Get(ctx, row.ID); err != nil {
			return err
		}
		return s.audit(ctx, db, v, auditEntry{
			action: "instance.created", message: fmt.Sprintf("instance %d (%s) created", row.ID, row.Environment),
		})
	})
	if err != nil {
		return nil, err
	}
	return created.Unwrap(), nil
}

// BindInput binds one slot of an instance to a credential.
type BindInput struct {
	InstanceID   int
	SlotKey      string
	CredentialID int
}

// BindInstanceConnection binds a slot of an instance to a credential of
// the slot's connection held by the organization, the instance's customer,
// the instance or one of the customer's users. A customer's user binds
// only its own instances to its customer's, its instances' and its own
// credentials. A build-only connection binds only to TEST instances, and a
// test credential never to a PRODUCTION one.
func (s *Service) BindInstanceConnection(ctx context.Context, in BindInput) (*ent.Instance, error) {
	v, err := Authorize(ctx, BindInstance)
	if err != nil {
		return nil, err
	}
	b, err := s.bindTarget(ctx, v, in)
	if err != nil {
		return nil, err
	}
	if err := s.bindConnection(ctx, b); err != nil {
		return nil, err
	}
	if err := checkBindHolder(v, b); err != nil {
		return nil, err
	}
	if err := checkBindEnvironment(b); err != nil {
		return nil, err
	}
	return s.writeBinding(ctx, v, b)
}

// binding is a slot of an instance and the credential a bind gives it.
type binding struct {
	inst *ent.Instance
	slot *ent.ConnectionSlot
	// conn is the slot's connection, credConn the credential's (another
	// connection for a customer's reusable credential).
	conn, credConn *ent.Connection
	cred           *ent.Credential
}

// bindTarget loads the instance, slot and credential a bind names, as the
// viewer may see them.
func (s *Service) bindTarget(ctx context.Context, v *auth.Viewer, in BindInput) (*binding, error) {
	inst, err := s.viewerInstance(ctx, v, in.InstanceID)
	if err != nil {
		return nil, invalid(fieldErr(CodeNotFound, "No such instance.", "instanceID"))
	}
	sl, err := s.DB.ConnectionSlot.Query().Where(connectionslot.IntegrationID(inst.IntegrationID),
		connectionslot.Key(in.SlotKey)).WithConnection().Only(ctx)
	if ent.IsNotFound(err) {
		return nil, invalid(fieldErr(CodeInvalidValue, "The instance's integration has no slot "+quote(in.SlotKey)+".", "slotKey"))
	}
	if err != nil {
		return nil, err
	}
	cred, err := s.DB.Credential.Get(ctx, in.CredentialID)
	if ent.IsNotFound(err) || (err == nil && customerBound(v) && cred.Holder == credential.HolderORGANIZATION) {
		return nil, invalid(fieldErr(CodeNotFound, "No such credential.", "credentialID"))
	}
	if err != nil {
		return nil, err
	}
	conn := sl.Edges.Connection
	return &binding{inst: inst, slot: sl, conn: conn, credConn: conn, cred: cred}, nil
}

// bindConnection accepts a credential of the slot's connection, or, for a
// slot whose scope offers existing credentials, a customer's reusable
// credential of the same type.
func (s *Service) bindConnection(ctx context.Context, b *binding) error {
	if b.cred.ConnectionID == b.conn.ID {
		return nil
	}
	c, err := s.DB.Connection.Get(ctx, b.cred.ConnectionID)
	if err != nil {
		return err
	}
	if !scopes.Of(b.conn.Scope).OffersExisting || !scopes.Of(c.Scope).Reusable || c.TypeID != b.conn.TypeID {
		return invalid(fieldErr(CodeInvalidValue, fmt.Sprintf(
			"Slot %q takes a credential of connection %q, or a customer's credential of %s of the same type.",
			b.slot.Key, b.conn.StableKey, aScopeConnection(scopes.ReusableScope(), false)), "credentialID"))
	}
	b.credConn = c
	return nil
}

// checkBindHolder refuses a credential held by another customer, instance
// or user than the instance's (a customer's user: than its own).
func checkBindHolder(v *auth.Viewer, b *binding) error {
	cred, inst := b.cred, b.inst
	cu := customerBound(v)
	credCustomer := 0
	if cred.CustomerID != nil {
		credCustomer = *cred.CustomerID
	}
	switch {
	case cred.Holder == credential.HolderINSTANCE && (cred.InstanceID == nil || *cred.InstanceID != inst.ID),
		cred.Holder != credential.HolderORGANIZATION && cred.Holder != credential.HolderINSTANCE && credCustomer != inst.CustomerID,
		cu && cred.Holder == credential.HolderUSER && (cred.UserID == nil || *cred.UserID != v.UserID):
		if cu {
			return invalid(fieldErr(CodeNotFound, "No such credential.", "credentialID"))
		}
		return invalid(fieldErr(CodeWrongHolder,
			"The credential belongs to another customer, instance or user than this instance's.", "credentialID"))
	}
	return nil
}

// checkBindEnvironment refuses a build-only connection or a test
// credential on a PRODUCTION instance.
func checkBindEnvironment(b *binding) error {
	if b.inst.Environment != instance.EnvironmentPRODUCTION {
		return nil
	}
	for _, c := range []*ent.Connection{b.conn, b.credConn} {
		if c.BuildOnly {
			return invalid(fieldErr(CodeBuildOnly, fmt.Sprintf(
				"Connection %q is build-only: it binds only to TEST instances, and instance %q is PRODUCTION.",
				c.StableKey, b.inst.Name), "credentialID"))
		}
	}
	if b.cred.IsTest {
		return invalid(fieldErr(CodeTestCredential, fmt.Sprintf(
			"The credential is a test credential of connection %q: it serves only TEST instances, and instance %q is PRODUCTION.",
			b.conn.StableKey, b.inst.Name), "credentialID"))
	}
	return nil
}

// writeBinding stores the binding, recomputes the instance's config state
// and audits the bind, in one transaction.
func (s *Service) writeBinding(ctx context.Context, v *auth.Viewer, bd *binding) (*ent.Instance, error) {
	inst, sl, conn, cred := bd.inst, bd.slot, bd.conn, bd.cred
	var out *ent.Instance
	err := s.withTx(ctx, func(tx *ent.Tx) error {
		db := tx.Client()
		b, err := db.InstanceBinding.Query().Where(instancebinding.InstanceID(inst.ID), instancebinding.SlotID(sl.ID)).Only(ctx)
		switch {
		case ent.IsNotFound(err):
			err = db.InstanceBinding.Create().SetOrganizationID(inst.OrganizationID).
				SetInstanceID(inst.ID).SetSlotID(sl.ID).SetCredentialID(cred.ID).Exec(ctx)
		case err == nil:
			err = db.InstanceBinding.Update().
				Where(instancebinding.ID(b.ID)).
				SetCredentialID(cred.ID).Exec(ctx)
		}
		if err != nil {
			return err
		}
		if err := s.refreshInstances(ctx, db, []*ent.Instance{inst}, 0); err != nil {
			return err
		}
		if out, err = db.Instance.Get(ctx, inst.ID); err != nil {
			return err
		}
		return s.audit(ctx, db, v, auditEntry{
			credentialID: cred.ID, connectionID: conn.ID, action: "instance.bound",
			message: fmt.Sprintf("slot %s of instance %d bound to credential %d", sl.Key, inst.ID, cred.ID),
		})
	})
	if err != nil {
		return nil, err
	}
	return out.Unwrap(), nil
}

// DeployInstance deploys an instance whose every slot has an ACTIVE
// credential usable in its environment, and clears needsDeploy. A
// build-only connection on a PRODUCTION instance is refused, naming it.
func (s *Service) DeployInstance(ctx context.Context, id int) (*ent.Instance, error) {
	v, err := Authorize(ctx, DeployInstance)
	if err != nil {
		return nil, err
	}
	inst, err := s.viewerInstance(ctx, v, id)
	if err != nil {
		return nil, err
	}
	states, err := s.slotStates(ctx, s.DB, inst)
	if err != nil {
		return nil, err
	}
	var errs []FieldError
	for _, st := range states {
		switch {
		case st.Satisfied:
		case st.BuildOnly != nil:
			errs = append(errs, fieldErr(CodeBuildOnly, fmt.Sprintf(
				"Connection %q is build-only: it deploys only on TEST instances, and instance %q is PRODUCTION.",
				st.BuildOnly.StableKey, inst.Name), "slots", st.Slot.Key))
		case st.Credential != nil && st.Credential.IsTest && inst.Environment == instance.EnvironmentPRODUCTION:
			errs = append(errs, fieldErr(CodeTestCredential, st.Problem, "slots", st.Slot.Key))
		default:
			errs = append(errs, fieldErr(CodeNeedsConfiguration, st.Problem, "slots", st.Slot.Key))
		}
	}
	if len(errs) > 0 {
		return nil, invalid(errs...)
	}
	var out *ent.Instance
	err = s.withTx(ctx, func(tx *ent.Tx) error {
		db := tx.Client()
		if err := db.Instance.Update().Where(instance.ID(inst.ID)).
			SetDeployedAt(s.now()).SetNeedsDeploy(false).
			SetConfigState(instance.ConfigStateCONFIGURED).Exec(ctx); err != nil {
			return err
		}
		var err error
		if out, err = db.Instance.Get(ctx, inst.ID); err != nil {
			return err
		}
		return s.audit(ctx, db, v, auditEntry{
			action: EventInstanceDeployed, message: fmt.Sprintf("instance %d deployed", inst.ID), instanceID: inst.ID,
		})
	})
	if err != nil {
		return nil, err
	}
	return out.Unwrap(), nil
}

// DeleteInstance deletes an instance, its bindings and the INTEGRATION
// credentials made in its wizard.
func (s *Service) DeleteInstance(ctx context.Context, id int) error {
	v, err := Authorize(ctx, ManageInstances)
	if err != nil {
		return err
	}
	return s.withTx(ctx, func(tx *ent.Tx) error {
		db := tx.Client()
		_, err := db.Instance.Query().Where(instance.ID(id)).Only(ctx)
		if ent.IsNotFound(err) {
			return notFound("instance", id)
		}
		if err != nil {
			return err
		}
		credIDs, err := db.Credential.Query().Where(credential.InstanceID(id)).IDs(ctx)
		if err != nil {
			return err
		}
		bq := db.InstanceBinding.Delete()
		if len(credIDs) > 0 {
			bq.Where(instancebinding.Or(instancebinding.InstanceID(id), instancebinding.CredentialIDIn(credIDs...)))
		} else {
			bq.Where(instancebinding.InstanceID(id))
		}
		if _, err := bq.Exec(ctx); err != nil {
			return err
		}
		if len(credIDs) > 0 {
			if err := s.auditDeleted(ctx, db, v, credIDs); err != nil {
				return err
			}
			if err := DeleteVersionsOf(ctx, db, credIDs); err != nil {
				return err
			}
			s.closeRuntimeForwarders(credIDs)
			if _, err := db.Credential.Delete().Where(credential.IDIn(credIDs...)).Exec(ctx); err != nil {
				return err
			}
		}
		if _, err := db.Instance.Delete().Where(instance.ID(id)).Exec(ctx); err != nil {
			return err
		}
		return s.audit(ctx, db, v, auditEntry{
			action:  "instance.deleted",
			message: fmt.Sprintf("instance %d deleted with %d integration-scoped credentials", id, len(credIDs)),
		})
	})
}
