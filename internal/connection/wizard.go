package connection

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/plugboard/plugboard/ent"
	"github.com/plugboard/plugboard/ent/connection"
	"github.com/plugboard/plugboard/ent/connectionslot"
	"github.com/plugboard/plugboard/ent/connectiontype"
	"github.com/plugboard/plugboard/ent/credential"
	"github.com/plugboard/plugboard/ent/instance"
	"github.com/plugboard/plugboard/ent/schema/schematype"
	"github.com/plugboard/plugboard/internal/auth"
	"github.com/plugboard/plugboard/internal/connection/scopes"
	"github.com/plugboard/plugboard/plugins/sdk"
)

// WizardAction is what a config wizard shows for one connection slot; a
// scope's policy names the action of its slots.
type WizardAction = scopes.WizardAction

// Wizard actions.
const (
	// WizardForm is a form with the fields the viewer may see and fill.
	WizardForm = scopes.WizardForm
	// WizardOAuthConnect is a Connect button (OAuth 2.0 authorization code).
	WizardOAuthConnect = scopes.WizardOAuthConnect
	// WizardSelectExisting is a choice among the customer's reusable
	// credentials of the slot's connection type.
	WizardSelectExisting = scopes.WizardSelectExisting
	// WizardManagedByOrg means the organization fills the values.
	WizardManagedByOrg = scopes.WizardManagedByOrg
)

// Wizard is the config wizard of an instance as its viewer sees it.
type Wizard struct {
	Instance *ent.Instance
	// Slots are the instance's connection slots in position order.
	Slots []*WizardSlot
}

// WizardSlot is one connection slot of an instance in the wizard.
type WizardSlot struct {
	Slot       *ent.ConnectionSlot
	Connection *ent.Connection
	Type       *ent.ConnectionType
	Action     WizardAction
	// Credential is the credential the slot uses now, as far as the viewer
	// may see it: nil for a customer viewer of an organization-managed
	// slot. For a customer viewer it is a copy stripped of everything the
	// customer may not see (hidden inputs, secrets, token).
	Credential *ent.Credential
	// Status is the status of the slot's credential, nil when there is none.
	Status *credential.Status
	// Connected is, for OAUTH_CONNECT, whether the credential holds a
	// usable authorization.
	Connected bool
	// ConnectLabel is the Connect button's label, for OAUTH_CONNECT.
	ConnectLabel string
	// Fields are the inputs the viewer may see and fill, in declaration
	// order; empty for MANAGED_BY_ORG.
	Fields []WizardField
	// Existing are, for SELECT_EXISTING, the customer's reusable
	// credentials of the type, without any value.
	Existing []*ent.Credential
	// Errors are the field errors of the last rejected save of the slot's
	// credential that the viewer may see.
	Errors []FieldError
	// OnPrem is the on-prem resource the slot's credential goes through,
	// nil for none; Fields then leave out its onPremControlled inputs.
	OnPrem *ent.OnPremResource
}

// WizardField is one input of a wizard form with its current value.
type WizardField struct {
	Input schematype.Input
	// Value is the current value of a non-secret input; nil for secrets.
	Value     *string
	IsSet     bool
	UpdatedAt *time.Time
}

// ConfigWizard returns the config wizard of an instance for the viewer of
// ctx: an organization admin of the instance's organization, or a customer
// user of the instance's customer. Anyone else gets ErrNotFound.
//
// Everything is loaded in a constant number of statements whatever the
// number of slots: the instance with its integration, slots, connections,
// types, bindings and bound credentials (eager loading), the candidate
// connections of reusable credentials, the holders' credentials, and for a
// customer viewer the statuses of the organization's credentials.
func (s *Service) ConfigWizard(ctx context.Context, instanceID int) (*Wizard, error) {
	v, customerView, err := wizardViewer(ctx, instanceID)
	if err != nil {
		return nil, err
	}
	inst, err := s.wizardInstance(ctx, v, instanceID, customerView)
	if err != nil {
		return nil, err
	}
	slots := inst.Edges.Integration.Edges.Slots
	if err := s.loadSlotConnections(ctx, inst, slots, customerView); err != nil {
		return nil, err
	}
	ws, err := s.newWizardState(ctx, v, inst, slots, customerView)
	if err != nil {
		return nil, err
	}
	w := &Wizard{Instance: inst, Slots: make([]*WizardSlot, 0, len(slots))}
	for _, sl := range slots {
		w.Slots = append(w.Slots, ws.slot(sl))
	}
	if err := s.wizardOnPrem(ctx, w); err != nil {
		return nil, err
	}
	return w, nil
}

// wizardViewer returns the viewer of a wizard, and whether it is a
// customer's user; anyone but an admin or a customer's user is told the
// instance does not exist.
func wizardViewer(ctx context.Context, instanceID int) (*auth.Viewer, bool, error) {
	v, err := Authorize(ctx, ReadWizard)
	if errors.Is(err, auth.ErrForbidden) {
		return nil, false, notFound("instance", instanceID)
	}
	if err != nil {
		return nil, false, err
	}
	return v, customerBound(v), nil
}

// wizardInstance loads the instance with its integration's slots in
// position order and its bindings with their credentials.
func (s *Service) wizardInstance(ctx context.Context, v *auth.Viewer, instanceID int, customerView bool) (*ent.Instance, error) {
	q := s.DB.Instance.Query().Where(instance.ID(instanceID))
	if customerView {
		q.Where(instance.CustomerID(v.CustomerID))
	}
	inst, err := q.
		WithIntegration(func(iq *ent.IntegrationQuery) {
			iq.WithSlots(func(sq *ent.ConnectionSlotQuery) {
				sq.Order(connectionslot.ByPosition(), connectionslot.ByID())
			})
		}).
		WithBindings(func(bq *ent.InstanceBindingQuery) { bq.WithCredential() }).
		Only(ctx)
	if ent.IsNotFound(err) {
		return nil, notFound("instance", instanceID)
	}
	return inst, err
}

// wizardState is what a wizard knows of its instance's credentials while
// it describes the slots.
type wizardState struct {
	s            *Service
	v            *auth.Viewer
	inst         *ent.Instance
	customerView bool
	testEnv      bool
	// customerKey, instanceKey and userKey name the instance's holders;
	// userKey is the viewer's, "" for an admin.
	customerKey, instanceKey, userKey string
	// visibleKeys are the holders whose credentials the viewer may see:
	// the organization's for an admin, the user's for a user.
	visibleKeys []string
	// reusableByType are the customer's reusable connections per type.
	reusableByType map[int][]*ent.Connection
	creds          credIndex
	// bound and boundID are the bound credential (id) of each slot.
	bound   map[int]*ent.Credential
	boundID map[int]int
	// managedStatus and managedByID are, for a customer viewer, the
	// statuses of the organization-managed credentials.
	managedStatus map[credKey]statusRow
	managedByID   map[int]statusRow
}

// statusRow is the status of an organization-managed credential, the only
// thing a customer sees of it.
type statusRow struct {
	ID           int               `json:"id"`
	ConnectionID int               `json:"connection_id"`
	HolderKey    string            `json:"holder_key"`
	IsTest       bool              `json:"is_test"`
	Status       credential.Status `json:"status"`
}

// newWizardState loads the credentials the wizard of inst shows.
func (s *Service) newWizardState(ctx context.Context, v *auth.Viewer, inst *ent.Instance, slots []*ent.ConnectionSlot, customerView bool) (*wizardState, error) {
	ws := &wizardState{
		s: s, v: v, inst: inst, customerView: customerView, testEnv: inst.Environment == instance.EnvironmentTEST,
		customerKey: customerHolderKey(inst.CustomerID), instanceKey: instanceHolderKey(inst.ID),
		bound: map[int]*ent.Credential{}, boundID: map[int]int{},
	}
	ws.visibleKeys = []string{ws.customerKey, ws.instanceKey}
	if customerView && v.UserID != 0 {
		ws.userKey = userHolderKey(v.UserID)
		ws.visibleKeys = append(ws.visibleKeys, ws.userKey)
	}
	if !customerView {
		// An admin sees the organization's credentials as they are.
		ws.visibleKeys = append(ws.visibleKeys, "org")
	}
	for _, b := range inst.Edges.Bindings {
		ws.boundID[b.SlotID] = b.CredentialID
		if c := b.Edges.Credential; c != nil {
			ws.bound[b.SlotID] = c
		}
	}
	if err := ws.loadHeld(ctx, slots); err != nil {
		return nil, err
	}
	if err := ws.loadManagedStatuses(ctx, slots); err != nil {
		return nil, err
	}
	return ws, nil
}

// loadHeld loads the customer's reusable connections of the slots' types,
// and the credentials the viewer may see of the slots' and those
// connections.
func (ws *wizardState) loadHeld(ctx context.Context, slots []*ent.ConnectionSlot) error {
	typeIDs := make([]int, 0, len(slots))
	lookupIDs := make([]int, 0, len(slots))
	for _, sl := range slots {
		lookupIDs = append(lookupIDs, sl.Edges.Connection.ID)
		typeIDs = append(typeIDs, sl.Edges.Connection.TypeID)
	}
	reusable, err := ws.s.DB.Connection.Query().
		Where(connection.TypeIDIn(typeIDs...), connection.ScopeIn(scopes.Reusable()...)).
		All(ctx)
	if err != nil {
		return err
	}
	ws.reusableByType = map[int][]*ent.Connection{}
	for _, c := range reusable {
		if !ws.testEnv && c.BuildOnly {
			continue // build-only connections bind only to TEST instances
		}
		ws.reusableByType[c.TypeID] = append(ws.reusableByType[c.TypeID], c)
		lookupIDs = append(lookupIDs, c.ID)
	}
	cq := ws.s.DB.Credential.Query().
		Where(credential.ConnectionIDIn(lookupIDs...), credential.HolderKeyIn(ws.visibleKeys...))
	if !ws.testEnv {
		cq.Where(credential.IsTest(false))
	}
	held, err := cq.Order(credential.ByID()).All(ctx)
	if err != nil {
		return err
	}
	ws.creds = credIndex{}
	for _, c := range held {
		ws.creds.add(c, ws.testEnv)
	}
	return nil
}

// loadManagedStatuses reads, for a customer viewer, the statuses of the
// organization-managed credentials, never their values: read just their
// statuses, as plugboard, inside the instance's organization.
func (ws *wizardState) loadManagedStatuses(ctx context.Context, slots []*ent.ConnectionSlot) error {
	ws.managedStatus, ws.managedByID = map[credKey]statusRow{}, map[int]statusRow{}
	var orgConnIDs []int
	for _, sl := range slots {
		if c := sl.Edges.Connection; scopes.Of(c.Scope).ManagedByOrg() {
			orgConnIDs = append(orgConnIDs, c.ID)
		}
	}
	if !ws.customerView || len(orgConnIDs) == 0 {
		return nil
	}
	var boundIDs []int
	for _, id := range ws.boundID {
		boundIDs = append(boundIDs, id)
	}
	inst := ws.inst
	oq := ws.s.DB.Credential.Query().
		Where(credential.ConnectionIDIn(orgConnIDs...),
			credential.Or(credential.HolderKeyIn("org", ws.customerKey), credential.IDIn(boundIDs...)))
	if !ws.testEnv {
		oq.Where(credential.IsTest(false))
	}
	var rows []statusRow
	err := oq.Order(credential.ByID()).
		Select(credential.FieldID, credential.FieldConnectionID, credential.FieldHolderKey, credential.FieldIsTest, credential.FieldStatus).
		Scan(auth.OrganizationContext(ctx, inst.OrganizationID), &rows)
	if err != nil {
		return err
	}
	for _, r := range rows {
		ws.managedByID[r.ID] = r
		k := credKey{r.ConnectionID, r.HolderKey}
		if old, ok := ws.managedStatus[k]; ok && old.IsTest == ws.testEnv {
			continue // the credential of the instance's environment wins
		}
		ws.managedStatus[k] = r
	}
	return nil
}

// slot describes one slot of the wizard as its scope's policy says:
// managed by the organization, or filled by the customer.
func (ws *wizardState) slot(sl *ent.ConnectionSlot) *WizardSlot {
	conn := sl.Edges.Connection
	p := scopes.Of(conn.Scope)
	w := &WizardSlot{Slot: sl, Connection: conn, Type: conn.Edges.Type, Action: p.Wizard}
	if p.ManagedByOrg() {
		ws.managedSlot(w, p)
	} else {
		ws.customerSlot(w, p)
	}
	return w
}

// managedSlot describes an organization-managed slot: to a customer its
// status only (no credential, no values, no errors), to an admin the
// credential it uses.
func (ws *wizardState) managedSlot(w *WizardSlot, p scopes.Policy) {
	connID := w.Connection.ID
	if !ws.customerView {
		ws.s.describe(w, ws.current(w.Slot, p), false)
		return
	}
	r, ok := ws.managedByID[ws.boundID[w.Slot.ID]]
	for _, k := range ws.lookupKeys(p) {
		if ok {
			break
		}
		r, ok = ws.managedStatus[credKey{connID, k}]
	}
	if ok {
		st := r.Status
		w.Status = &st
	}
}

// current is the credential a slot uses now, among those the viewer may
// see: its binding (a user's credential is each user's own: an admin sees
// the form without values), else the one its scope's holder holds, else
// for a scope that splits its inputs the organization's.
func (ws *wizardState) current(sl *ent.ConnectionSlot, p scopes.Policy) *ent.Credential {
	connID := sl.Edges.Connection.ID
	if p.Holder != credential.HolderUSER {
		if c := ws.bound[sl.ID]; c != nil {
			return c
		}
	}
	for _, k := range ws.lookupKeys(p) {
		if c := ws.creds.get(connID, k); c != nil {
			return c
		}
	}
	return nil
}

// lookupKeys are the holders whose credential an unbound slot of policy p
// uses, in order: its scope's holder, then for a scope that splits its
// inputs the organization (whose values then serve alone).
func (ws *wizardState) lookupKeys(p scopes.Policy) []string {
	var out []string
	if k := ws.holderKey(p.Holder); k != "" {
		out = append(out, k)
	}
	if p.SplitsInputs() {
		out = append(out, "org")
	}
	return out
}

// holderKey is the key of the instance's holder h; "" for a user when the
// viewer is not one.
func (ws *wizardState) holderKey(h credential.Holder) string {
	switch h {
	case credential.HolderORGANIZATION:
		return "org"
	case credential.HolderCUSTOMER:
		return ws.customerKey
	case credential.HolderINSTANCE:
		return ws.instanceKey
	case credential.HolderUSER:
		return ws.userKey
	}
	return ""
}

// customerSlot describes a slot the customer fills: a form, a Connect
// button, or a choice among its reusable credentials.
func (ws *wizardState) customerSlot(w *WizardSlot, p scopes.Policy) {
	conn, ct := w.Connection, w.Type
	cur := ws.current(w.Slot, p)
	if cur != nil && ws.customerView && !ownedBy(cur, ws.inst, ws.v) {
		cur = nil // never show a customer someone else's credential
	}
	if cur == nil && p.OffersExisting {
		for _, rc := range ws.reusableByType[conn.TypeID] {
			if c := ws.creds.get(rc.ID, ws.customerKey); c != nil {
				w.Existing = append(w.Existing, c)
			}
		}
	}
	switch {
	case len(w.Existing) > 0:
		w.Action = WizardSelectExisting
	case ct.AuthKind == connectiontype.AuthKindOAUTH2_AUTHORIZATION_CODE:
		w.Action = WizardOAuthConnect
		w.ConnectLabel = "Connect " + typeLabel(ct)
	}
	ws.s.describe(w, cur, ws.customerView)
	w.Fields = wizardFields(ct.Inputs, conn, cur, ws.customerView)
	for i, c := range w.Existing {
		ec := connectionOf(c, ws.reusableByType[conn.TypeID])
		var visible map[string]bool
		if ws.customerView {
			visible = visibleKeys(ct.Inputs, ec, true)
		}
		w.Existing[i] = wizardCredential(c, ec, ct, visible, false)
	}
}

// loadSlotConnections loads the connections of the slots and their types
// in the viewer's context. A customer's user does not see the
// organization-managed connections; for those the wizard needs only their
// scope and type, read as plugboard and nothing more.
func (s *Service) loadSlotConnections(ctx context.Context, inst *ent.Instance, slots []*ent.ConnectionSlot, customerView bool) error {
	ids := make([]int, 0, len(slots))
	for _, sl := range slots {
		ids = append(ids, sl.ConnectionID)
	}
	conns, err := s.DB.Connection.Query().Where(connection.IDIn(ids...)).All(ctx)
	if err != nil {
		return err
	}
	byID := make(map[int]*ent.Connection, len(conns))
	for _, c := range conns {
		byID[c.ID] = c
	}
	var missing []int
	for _, id := range ids {
		if byID[id] == nil {
			missing = append(missing, id)
		}
	}
	if len(missing) > 0 && customerView {
		var rows []struct {
			ID     int              `json:"id"`
			TypeID int              `json:"type_id"`
			Scope  connection.Scope `json:"scope"`
		}
		err := s.DB.Connection.Query().
			Where(connection.IDIn(missing...),
				connection.ScopeIn(scopes.ManagedByOrg()...)).
			Select(connection.FieldID, connection.FieldTypeID, connection.FieldScope).
			Scan(auth.OrganizationContext(ctx, inst.OrganizationID), &rows)
		if err != nil {
			return err
		}
		for _, r := range rows {
			byID[r.ID] = &ent.Connection{ID: r.ID, TypeID: r.TypeID, Scope: r.Scope, OrganizationID: inst.OrganizationID}
		}
	}
	typeIDs := make([]int, 0, len(byID))
	for _, c := range byID {
		typeIDs = append(typeIDs, c.TypeID)
	}
	types, err := s.DB.ConnectionType.Query().Where(connectiontype.IDIn(typeIDs...)).All(ctx)
	if err != nil {
		return err
	}
	typeByID := make(map[int]*ent.ConnectionType, len(types))
	for _, t := range types {
		typeByID[t.ID] = t
	}
	for _, sl := range slots {
		c := byID[sl.ConnectionID]
		if c == nil || typeByID[c.TypeID] == nil {
			return fmt.Errorf("connection %d of slot %d: %w", sl.ConnectionID, sl.ID, ErrNotFound)
		}
		c.Edges.Type = typeByID[c.TypeID]
		sl.Edges.Connection = c
	}
	return nil
}

// describe fills the slot's credential, status, connection state and
// errors from cur.
func (s *Service) describe(ws *WizardSlot, cur *ent.Credential, customerView bool) {
	if cur == nil {
		return
	}
	st := cur.Status
	ws.Status = &st
	if ws.Action == WizardOAuthConnect {
		ws.Connected = cur.Status == credential.StatusACTIVE ||
			(cur.Status == credential.StatusERROR && (len(cur.Token) > 0 || cur.TokenExpiresAt != nil))
	}
	var visible map[string]bool
	if customerView {
		visible = visibleKeys(ws.Type.Inputs, ws.Connection, true)
	}
	ws.Credential = wizardCredential(cur, ws.Connection, ws.Type, visible, true)
	for _, e := range cur.LastErrors {
		if visible != nil && len(e.Field) >= 2 && e.Field[0] == "values" && !visible[e.Field[1]] {
			continue // about an input the customer never sees
		}
		ws.Errors = append(ws.Errors, FieldError{Field: e.Field, Code: e.Code, Message: e.Message})
	}
}

// ownedBy reports whether a customer viewer may see c as its own: the
// instance's customer's, the instance's, or the viewer's.
func ownedBy(c *ent.Credential, inst *ent.Instance, v *auth.Viewer) bool {
	switch c.Holder {
	case credential.HolderCUSTOMER:
		return c.CustomerID != nil && *c.CustomerID == inst.CustomerID
	case credential.HolderINSTANCE:
		return c.InstanceID != nil && *c.InstanceID == inst.ID
	case credential.HolderUSER:
		return c.UserID != nil && *c.UserID == v.UserID && v.UserID != 0
	}
	return false
}

// visibleKeys returns the inputs a viewer may see and fill: for a customer
// those shown to customers (the declaration, overridden by the
// connection's input settings), for an admin every input; never a TEMPLATE
// input, which is computed.
func visibleKeys(inputs []schematype.Input, conn *ent.Connection, customerView bool) map[string]bool {
	out := make(map[string]bool, len(inputs))
	for _, in := range inputs {
		if fillable(in, conn, customerView) {
			out[in.Key] = true
		}
	}
	return out
}

func fillable(in schematype.Input, conn *ent.Connection, customerView bool) bool {
	if in.Type == schematype.InputType(sdk.InputTemplate) {
		return false
	}
	if !customerView {
		return true
	}
	shown := in.Shown
	if st, ok := conn.InputSettings[in.Key]; ok && st.Shown != nil {
		shown = *st.Shown
	}
	return shown
}

// wizardFields lists the inputs the viewer may fill with cur's values.
func wizardFields(inputs []schematype.Input, conn *ent.Connection, cur *ent.Credential, customerView bool) []WizardField {
	out := []WizardField{}
	for _, in := range inputs {
		if !fillable(in, conn, customerView) {
			continue
		}
		f := WizardField{Input: in}
		if cur != nil {
			if in.Secret {
				if m, ok := cur.SecretMeta[in.Key]; ok {
					t := time.UnixMilli(m.UpdatedAt).UTC()
					f.IsSet, f.UpdatedAt = true, &t
				}
			} else if val, ok := cur.Inputs[in.Key]; ok {
				f.Value, f.IsSet = &val, true
			}
		}
		out = append(out, f)
	}
	return out
}

// wizardCredential returns a copy of c safe to hand to the viewer: no
// secrets or token, and when visible is set only the visible inputs (the
// copy's connection type declares only those, so Credential.values lists
// nothing else). Without withValues the copy carries no value at all.
func wizardCredential(c *ent.Credential, conn *ent.Connection, ct *ent.ConnectionType, visible map[string]bool, withValues bool) *ent.Credential {
	cp := *c
	cp.Secrets, cp.Token = nil, nil
	cp.Inputs, cp.SecretMeta = map[string]string{}, map[string]schematype.SecretMeta{}
	if withValues {
		for k, val := range c.Inputs {
			if visible == nil || visible[k] {
				cp.Inputs[k] = val
			}
		}
		for k, m := range c.SecretMeta {
			if visible == nil || visible[k] {
				cp.SecretMeta[k] = m
			}
		}
	}
	cp.LastErrors = nil
	cp.Edges.Connection = viewConnection(conn, ct, visible)
	return &cp
}

// viewConnection returns conn with its type, restricted to the visible
// inputs when visible is set.
func viewConnection(conn *ent.Connection, ct *ent.ConnectionType, visible map[string]bool) *ent.Connection {
	if visible == nil {
		cp := *conn
		cp.Edges.Type = ct
		return &cp
	}
	t := *ct
	t.Inputs = make([]schematype.Input, 0, len(visible))
	for _, in := range ct.Inputs {
		if visible[in.Key] {
			t.Inputs = append(t.Inputs, in)
		}
	}
	cp := *conn
	cp.Edges.Type = &t
	return &cp
}

// connectionOf returns the connection of c among conns.
func connectionOf(c *ent.Credential, conns []*ent.Connection) *ent.Connection {
	for _, rc := range conns {
		if rc.ID == c.ConnectionID {
			return rc
		}
	}
	return nil
}

func typeLabel(ct *ent.ConnectionType) string {
	if ct.Label != "" {
		return ct.Label
	}
	return ct.Key
}

// credIndex finds a holder's credential of a connection, preferring the
// credential of the instance's environment.
type credIndex map[credKey]*ent.Credential

type credKey struct {
	conn   int
	holder string
}

func (x credIndex) add(c *ent.Credential, testEnv bool) {
	k := credKey{c.ConnectionID, c.HolderKey}
	if old, ok := x[k]; ok && old.IsTest == testEnv {
		return
	}
	x[k] = c
}

func (x credIndex) get(connID int, holderKey string) *ent.Credential {
	return x[credKey{connID, holderKey}]
}
