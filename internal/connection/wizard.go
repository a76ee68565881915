package connection

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/plugboard/plugboard/ent"
	"github.com/plugboard/plugboard/ent/connection"
	"github.com/plugboard/plugboard/ent/connectionslot"
	"github.com/plugboard/plugboard/ent/connectiontype"
	"github.com/plugboard/plugboard/ent/credential"
	"github.com/plugboard/plugboard/ent/instance"
	"github.com/plugboard/plugboard/ent/schema/schematype"
	"github.com/plugboard/plugboard/internal/auth"
	"github.com/plugboard/plugboard/plugins/sdk"
)

// WizardAction is what a config wizard shows for one connection slot.
type WizardAction string

// Wizard actions.
const (
	// WizardForm is a form with the fields the viewer may see and fill.
	WizardForm WizardAction = "FORM"
	// WizardOAuthConnect is a Connect button (OAuth 2.0 authorization code).
	WizardOAuthConnect WizardAction = "OAUTH_CONNECT"
	// WizardSelectExisting is a choice among the customer's reusable
	// credentials of the slot's connection type.
	WizardSelectExisting WizardAction = "SELECT_EXISTING"
	// WizardManagedByOrg means the organization fills the values.
	WizardManagedByOrg WizardAction = "MANAGED_BY_ORG"
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
	v, err := Authorize(ctx, ReadWizard)
	if errors.Is(err, auth.ErrForbidden) {
		return nil, notFound("instance", instanceID)
	}
	if err != nil {
		return nil, err
	}
	customerView := customerBound(v)

	q := s.DB.Instance.Query().Where(instance.ID(instanceID), instance.OrganizationID(v.OrganizationID))
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
	if err != nil {
		return nil, err
	}
	slots := inst.Edges.Integration.Edges.Slots
	testEnv := inst.Environment == instance.EnvironmentTEST
	if err := s.loadSlotConnections(ctx, inst, slots, customerView); err != nil {
		return nil, err
	}

	// The slots' connections and types, and who holds what.
	typeIDs := make([]int, 0, len(slots))
	connIDs := make([]int, 0, len(slots))
	var orgConnIDs []int
	for _, sl := range slots {
		c := sl.Edges.Connection
		connIDs = append(connIDs, c.ID)
		typeIDs = append(typeIDs, c.TypeID)
		if managedByOrg(c.Scope) {
			orgConnIDs = append(orgConnIDs, c.ID)
		}
	}
	customerKey := "customer:" + strconv.Itoa(inst.CustomerID)
	instanceKey := "instance:" + strconv.Itoa(inst.ID)
	userKey := ""
	holderKeys := []string{customerKey, instanceKey}
	if customerView && v.UserID != 0 {
		userKey = "user:" + strconv.Itoa(v.UserID)
		holderKeys = append(holderKeys, userKey)
	}
	if !customerView {
		// An admin sees the organization's credentials as they are.
		holderKeys = append(holderKeys, "org")
	}

	// Reusable credentials live on CUSTOMER connections of the slots' types.
	reusable, err := s.DB.Connection.Query().
		Where(connection.TypeIDIn(typeIDs...), connection.ScopeEQ(connection.ScopeCUSTOMER)).
		All(ctx)
	if err != nil {
		return nil, err
	}
	reusableByType := map[int][]*ent.Connection{}
	lookupIDs := append([]int(nil), connIDs...)
	for _, c := range reusable {
		if !testEnv && c.BuildOnly {
			continue // build-only connections bind only to TEST instances
		}
		reusableByType[c.TypeID] = append(reusableByType[c.TypeID], c)
		lookupIDs = append(lookupIDs, c.ID)
	}
	cq := s.DB.Credential.Query().
		Where(credential.ConnectionIDIn(lookupIDs...), credential.HolderKeyIn(holderKeys...))
	if !testEnv {
		cq.Where(credential.IsTest(false))
	}
	held, err := cq.Order(credential.ByID()).All(ctx)
	if err != nil {
		return nil, err
	}
	creds := credIndex{}
	for _, c := range held {
		creds.add(c, testEnv)
	}

	bound := map[int]*ent.Credential{}
	boundID := map[int]int{}
	for _, b := range inst.Edges.Bindings {
		boundID[b.SlotID] = b.CredentialID
		if c := b.Edges.Credential; c != nil {
			bound[b.SlotID] = c
		}
	}

	// A customer sees the status of the organization-managed credentials,
	// never their values: read just their statuses, as plugboard, inside
	// the instance's organization.
	type statusRow struct {
		ID           int               `json:"id"`
		ConnectionID int               `json:"connection_id"`
		HolderKey    string            `json:"holder_key"`
		IsTest       bool              `json:"is_test"`
		Status       credential.Status `json:"status"`
	}
	managedStatus := map[credKey]statusRow{}
	managedByID := map[int]statusRow{}
	if customerView && len(orgConnIDs) > 0 {
		var boundIDs []int
		for _, id := range boundID {
			boundIDs = append(boundIDs, id)
		}
		oq := s.DB.Credential.Query().
			Where(credential.OrganizationID(inst.OrganizationID), credential.ConnectionIDIn(orgConnIDs...),
				credential.Or(credential.HolderKeyIn("org", customerKey), credential.IDIn(boundIDs...)))
		if !testEnv {
			oq.Where(credential.IsTest(false))
		}
		var rows []statusRow
		err := oq.Order(credential.ByID()).
			Select(credential.FieldID, credential.FieldConnectionID, credential.FieldHolderKey, credential.FieldIsTest, credential.FieldStatus).
			Scan(auth.SystemContext(ctx), &rows)
		if err != nil {
			return nil, err
		}
		for _, r := range rows {
			managedByID[r.ID] = r
			k := credKey{r.ConnectionID, r.HolderKey}
			if old, ok := managedStatus[k]; ok && old.IsTest == testEnv {
				continue // the credential of the instance's environment wins
			}
			managedStatus[k] = r
		}
	}

	w := &Wizard{Instance: inst, Slots: make([]*WizardSlot, 0, len(slots))}
	for _, sl := range slots {
		conn := sl.Edges.Connection
		ct := conn.Edges.Type
		ws := &WizardSlot{Slot: sl, Connection: conn, Type: ct}
		w.Slots = append(w.Slots, ws)

		switch conn.Scope {
		case connection.ScopeORGANIZATION_GLOBAL, connection.ScopeORGANIZATION_CUSTOMER:
			ws.Action = WizardManagedByOrg
			if customerView {
				// The status only: no credential, no values, no errors.
				r, ok := managedByID[boundID[sl.ID]]
				if !ok && conn.Scope == connection.ScopeORGANIZATION_CUSTOMER {
					r, ok = managedStatus[credKey{conn.ID, customerKey}]
				}
				if !ok {
					r, ok = managedStatus[credKey{conn.ID, "org"}]
				}
				if ok {
					st := r.Status
					ws.Status = &st
				}
				break
			}
			cur := bound[sl.ID]
			if cur == nil && conn.Scope == connection.ScopeORGANIZATION_CUSTOMER {
				cur = creds.get(conn.ID, customerKey)
			}
			if cur == nil {
				cur = creds.get(conn.ID, "org")
			}
			s.describe(ws, cur, false)
		default:
			var cur *ent.Credential
			switch conn.Scope {
			case connection.ScopeUSER:
				// Each user's own: an admin sees the form without values.
				if userKey != "" {
					cur = creds.get(conn.ID, userKey)
				}
			case connection.ScopeINTEGRATION:
				cur = bound[sl.ID]
				if cur == nil {
					cur = creds.get(conn.ID, instanceKey)
				}
			default: // CUSTOMER
				cur = bound[sl.ID]
				if cur == nil {
					cur = creds.get(conn.ID, customerKey)
				}
			}
			if cur != nil && customerView && !ownedBy(cur, inst, v) {
				cur = nil // never show a customer someone else's credential
			}
			if cur == nil && conn.Scope != connection.ScopeUSER {
				for _, rc := range reusableByType[conn.TypeID] {
					if c := creds.get(rc.ID, customerKey); c != nil {
						ws.Existing = append(ws.Existing, c)
					}
				}
			}
			switch {
			case len(ws.Existing) > 0:
				ws.Action = WizardSelectExisting
			case ct.AuthKind == connectiontype.AuthKindOAUTH2_AUTHORIZATION_CODE:
				ws.Action = WizardOAuthConnect
				ws.ConnectLabel = "Connect " + typeLabel(ct)
			default:
				ws.Action = WizardForm
			}
			s.describe(ws, cur, customerView)
			ws.Fields = wizardFields(ct.Inputs, conn, cur, customerView)
			for i, c := range ws.Existing {
				ec := connectionOf(c, reusableByType[conn.TypeID])
				var visible map[string]bool
				if customerView {
					visible = visibleKeys(ct.Inputs, ec, true)
				}
				ws.Existing[i] = wizardCredential(c, ec, ct, visible, false)
			}
		}
	}
	return w, nil
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
			Where(connection.OrganizationID(inst.OrganizationID), connection.IDIn(missing...),
				connection.ScopeIn(connection.ScopeORGANIZATION_GLOBAL, connection.ScopeORGANIZATION_CUSTOMER)).
			Select(connection.FieldID, connection.FieldTypeID, connection.FieldScope).
			Scan(auth.SystemContext(ctx), &rows)
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

func managedByOrg(scope connection.Scope) bool {
	return scope == connection.ScopeORGANIZATION_GLOBAL || scope == connection.ScopeORGANIZATION_CUSTOMER
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
