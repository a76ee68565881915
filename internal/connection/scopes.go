package connection

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/plugboard/plugboard/ent"
	"github.com/plugboard/plugboard/ent/connection"
	"github.com/plugboard/plugboard/ent/connectionslot"
	"github.com/plugboard/plugboard/ent/credential"
	"github.com/plugboard/plugboard/ent/customer"
	"github.com/plugboard/plugboard/ent/instance"
	"github.com/plugboard/plugboard/ent/integration"
	"github.com/plugboard/plugboard/ent/schema/schematype"
	"github.com/plugboard/plugboard/ent/user"
	"github.com/plugboard/plugboard/internal/auth"
	"github.com/plugboard/plugboard/internal/connection/scopes"
)

// Field error codes of the scope rules.
const (
	// CodeForbidden: the viewer may not set this input or use this object.
	CodeForbidden = "FORBIDDEN"
	// CodeWrongSource: an ORGANIZATION_CUSTOMER input set by the wrong
	// holder (an ORG input in a customer's save, or the reverse).
	CodeWrongSource = "WRONG_SOURCE"
	// CodeBuildOnly: a build-only connection on a PRODUCTION instance.
	CodeBuildOnly = "BUILD_ONLY"
	// CodeTestCredential: a test credential on a PRODUCTION instance.
	CodeTestCredential = "TEST_CREDENTIAL"
	// CodeNeedsConfiguration: an instance deployed before every slot has
	// an ACTIVE credential.
	CodeNeedsConfiguration = "NEEDS_CONFIGURATION"
	// CodeWrongHolder: a credential that does not belong to the instance's
	// customer, the instance or one of the customer's users.
	CodeWrongHolder = "WRONG_HOLDER"
)

// ScopeWords names a scope in words ("customer-scoped",
// "organization-wide", ...); messages never show the enum name.
func ScopeWords(sc connection.Scope) string {
	return scopes.Of(sc).Words
}

// aScopeConnection is "a customer-scoped connection", "an organization-wide
// connection", ...; upper says it starts a sentence.
func aScopeConnection(sc connection.Scope, upper bool) string {
	w := ScopeWords(sc)
	article := "a"
	if strings.ContainsRune("aeiou", rune(w[0])) {
		article = "an"
	}
	if upper {
		article = strings.ToUpper(article[:1]) + article[1:]
	}
	return article + " " + w + " connection"
}

// InputShown reports whether customers see (and may set) an input of conn:
// the connection's override when it has one, else the declaration.
func InputShown(conn *ent.Connection, in schematype.Input) bool {
	if st, ok := conn.InputSettings[in.Key]; ok && st.Shown != nil {
		return *st.Shown
	}
	return in.Shown
}

// InputSource says who fills an input of an ORGANIZATION_CUSTOMER
// connection: the connection's setting, else ORG for inputs hidden from
// customers and CUSTOMER for shown ones.
func InputSource(conn *ent.Connection, in schematype.Input) schematype.InputSource {
	if st, ok := conn.InputSettings[in.Key]; ok && st.Source != "" {
		return st.Source
	}
	if InputShown(conn, in) {
		return schematype.InputSourceCustomer
	}
	return schematype.InputSourceOrg
}

// sourceKeys returns the keys of conn's inputs filled by src.
func sourceKeys(conn *ent.Connection, inputs []schematype.Input, src schematype.InputSource) map[string]bool {
	out := map[string]bool{}
	for _, in := range inputs {
		if InputSource(conn, in) == src {
			out[in.Key] = true
		}
	}
	return out
}

// holderRef is who holds the credential of a save.
type holderRef struct {
	holder     credential.Holder
	key        string
	customerID int
	userID     int
	instanceID int
}

func orgHolder() holderRef { return holderRef{holder: credential.HolderORGANIZATION, key: "org"} }

func customerHolderKey(id int) string { return "customer:" + strconv.Itoa(id) }
func instanceHolderKey(id int) string { return "instance:" + strconv.Itoa(id) }
func userHolderKey(id int) string     { return "user:" + strconv.Itoa(id) }

// errNoConnection is what a viewer sees of a connection that does not
// exist or that it may not use: the same answer, so neither is told apart.
func errNoConnection() error {
	return invalid(fieldErr(CodeNotFound, "No such connection.", "connectionID"))
}

// holderFor says who holds the credential of a save on conn, for viewer v,
// as the scope's policy names the holder:
//
//	organization  the organization ("org"); no ids
//	customer      the customer (customerID); for a scope that splits its
//	              inputs, the organization without customerID (ORG inputs)
//	instance      the instance (instanceID)
//	user          the customer's user (userID)
//
// A CUSTOMER_USER viewer holds only its own customer's, instances' and
// user's credentials; the ids it leaves out default to its own.
func (s *Service) holderFor(ctx context.Context, v *auth.Viewer, conn *ent.Connection, in SaveCredentialInput) (holderRef, error) {
	p := scopes.Of(conn.Scope)
	if customerBound(v) {
		if !p.CustomerVisible() {
			return holderRef{}, errNoConnection()
		}
		in = viewerDefaults(v, p, in)
	}
	switch p.Holder {
	case credential.HolderORGANIZATION, credential.HolderCUSTOMER:
		return s.orgOrCustomerHolder(ctx, v, conn, in)
	case credential.HolderINSTANCE:
		return s.instanceHolder(ctx, v, conn, in)
	case credential.HolderUSER:
		return s.userHolder(ctx, v, conn, in)
	}
	return holderRef{}, invalid(fieldErr(CodeInvalidValue, "Unknown scope.", "connectionID"))
}

// viewerDefaults fills the customer or user id a customer's user leaves
// out of a save with its own.
func viewerDefaults(v *auth.Viewer, p scopes.Policy, in SaveCredentialInput) SaveCredentialInput {
	switch p.Holder {
	case credential.HolderCUSTOMER:
		if in.CustomerID == 0 {
			in.CustomerID = v.CustomerID
		}
	case credential.HolderUSER:
		if in.UserID == 0 {
			in.UserID = v.UserID
		}
	}
	return in
}

// leaveOut refuses an id that a credential of conn's scope does not take.
func leaveOut(conn *ent.Connection, field, why string) error {
	return invalid(fieldErr(CodeInvalidValue, aScopeConnection(conn.Scope, true)+"'s credential "+why+"; leave "+field+" out.", field))
}

// orgOrCustomerHolder is the holder of a save on a connection held by the
// organization or by each customer: a scope that splits its inputs takes
// the organization's ORG inputs without customerID.
func (s *Service) orgOrCustomerHolder(ctx context.Context, v *auth.Viewer, conn *ent.Connection, in SaveCredentialInput) (holderRef, error) {
	p := scopes.Of(conn.Scope)
	switch {
	case in.InstanceID != 0:
		return holderRef{}, leaveOut(conn, "instanceID", "is not held by an instance")
	case in.UserID != 0:
		return holderRef{}, leaveOut(conn, "userID", "is not held by a user")
	case p.Holder == credential.HolderORGANIZATION && in.CustomerID != 0:
		return holderRef{}, invalid(fieldErr(CodeInvalidValue,
			aScopeConnection(conn.Scope, true)+" has one credential for the whole organization; leave customerID out.", "customerID"))
	case p.Holder == credential.HolderORGANIZATION, in.CustomerID == 0 && p.SplitsInputs():
		// The organization's own values, shared by its customers.
		return orgHolder(), nil
	case in.CustomerID == 0:
		return holderRef{}, invalid(fieldErr(CodeRequired, aScopeConnection(conn.Scope, true)+"'s credential belongs to a customer: give customerID.", "customerID"))
	}
	ok, err := s.customerExists(ctx, in.CustomerID)
	if err != nil {
		return holderRef{}, err
	}
	if !ok || (customerBound(v) && in.CustomerID != v.CustomerID) {
		return holderRef{}, invalid(fieldErr(CodeNotFound, "No such customer.", "customerID"))
	}
	return holderRef{holder: credential.HolderCUSTOMER, key: customerHolderKey(in.CustomerID), customerID: in.CustomerID}, nil
}

// instanceHolder is the holder of a save on a connection held by one
// instance: the instance, whose integration has a slot for conn.
func (s *Service) instanceHolder(ctx context.Context, v *auth.Viewer, conn *ent.Connection, in SaveCredentialInput) (holderRef, error) {
	switch {
	case in.CustomerID != 0:
		return holderRef{}, leaveOut(conn, "customerID", "belongs to an instance")
	case in.UserID != 0:
		return holderRef{}, leaveOut(conn, "userID", "belongs to an instance")
	case in.InstanceID == 0:
		return holderRef{}, invalid(fieldErr(CodeRequired,
			aScopeConnection(conn.Scope, true)+"'s credential is made inside an instance's config wizard: give instanceID.", "instanceID"))
	}
	q := s.DB.Instance.Query().Where(instance.ID(in.InstanceID))
	if customerBound(v) {
		q.Where(instance.CustomerID(v.CustomerID))
	}
	inst, err := q.Only(ctx)
	if ent.IsNotFound(err) {
		return holderRef{}, invalid(fieldErr(CodeNotFound, "No such instance.", "instanceID"))
	}
	if err != nil {
		return holderRef{}, err
	}
	ok, err := s.DB.ConnectionSlot.Query().Where(
		connectionslot.IntegrationID(inst.IntegrationID), connectionslot.ConnectionID(conn.ID)).Exist(ctx)
	if err != nil {
		return holderRef{}, err
	}
	if !ok {
		return holderRef{}, invalid(fieldErr(CodeInvalidValue,
			"The instance's integration has no slot for this connection.", "instanceID"))
	}
	return holderRef{holder: credential.HolderINSTANCE, key: instanceHolderKey(inst.ID), instanceID: inst.ID, customerID: inst.CustomerID}, nil
}

// userHolder is the holder of a save on a connection held by each of a
// customer's users: the user, of the customer when customerID is given.
func (s *Service) userHolder(ctx context.Context, v *auth.Viewer, conn *ent.Connection, in SaveCredentialInput) (holderRef, error) {
	cu := customerBound(v)
	noUser := invalid(fieldErr(CodeNotFound, "No such user.", "userID"))
	switch {
	case in.InstanceID != 0:
		return holderRef{}, leaveOut(conn, "instanceID", "belongs to a user")
	case in.UserID == 0:
		return holderRef{}, invalid(fieldErr(CodeRequired, aScopeConnection(conn.Scope, true)+"'s credential belongs to a customer's user: give userID.", "userID"))
	case cu && in.UserID != v.UserID:
		return holderRef{}, noUser
	}
	u, err := s.DB.User.Query().Where(user.ID(in.UserID)).Only(ctx)
	if ent.IsNotFound(err) {
		return holderRef{}, noUser
	}
	if err != nil {
		return holderRef{}, err
	}
	if in.CustomerID != 0 && in.CustomerID != u.CustomerID {
		return holderRef{}, invalid(fieldErr(CodeInvalidValue, "The user is not one of this customer's users.", "customerID"))
	}
	if cu && u.CustomerID != v.CustomerID {
		return holderRef{}, noUser
	}
	return holderRef{holder: credential.HolderUSER, key: userHolderKey(u.ID), userID: u.ID, customerID: u.CustomerID}, nil
}

// checkWhoSets refuses the values of a save that its holder may not set:
// for ORGANIZATION_CUSTOMER, ORG inputs outside the organization's save and
// CUSTOMER inputs outside a customer's; for CUSTOMER_USER viewers, inputs
// hidden from customers.
func checkWhoSets(v *auth.Viewer, conn *ent.Connection, inputs []schematype.Input, h holderRef, vals []ValueInput) []FieldError {
	var errs []FieldError
	for _, val := range vals {
		decl := findInput(inputs, val.Key)
		if decl == nil {
			continue // applyValues names unknown inputs
		}
		if scopes.Of(conn.Scope).SplitsInputs() {
			src := InputSource(conn, *decl)
			switch {
			case h.holder == credential.HolderORGANIZATION && src == schematype.InputSourceCustomer:
				errs = append(errs, fieldErr(CodeWrongSource,
					label(*decl)+" is set per customer: save it with customerID.", "values", val.Key))
				continue
			case h.holder == credential.HolderCUSTOMER && src == schematype.InputSourceOrg:
				errs = append(errs, fieldErr(CodeWrongSource,
					label(*decl)+" is set by the organization for every customer: save it without customerID.", "values", val.Key))
				continue
			}
		}
		if customerBound(v) && !InputShown(conn, *decl) {
			errs = append(errs, fieldErr(CodeForbidden, label(*decl)+" is managed by the organization.", "values", val.Key))
		}
	}
	return errs
}

// orgCredential returns the organization's credential of conn: the test
// one for test credentials when it exists, else the real one; nil if none.
func (s *Service) orgCredential(ctx context.Context, db *ent.Client, connID int, isTest bool) (*ent.Credential, error) {
	creds, err := db.Credential.Query().
		Where(credential.ConnectionID(connID), credential.HolderKey("org")).All(ctx)
	if err != nil {
		return nil, err
	}
	var real *ent.Credential
	for _, c := range creds {
		if c.IsTest == isTest {
			return c, nil
		}
		if !c.IsTest {
			real = c
		}
	}
	return real, nil
}

// layerValues returns the values a credential works with before defaults
// and templates: its own values; for a customer's credential of an
// ORGANIZATION_CUSTOMER connection, ORG inputs from the organization's
// credential; then the template's presets for inputs still empty.
func (s *Service) layerValues(ctx context.Context, conn *ent.Connection, inputs []schematype.Input, holder credential.Holder, isTest bool, own map[string]string) (map[string]string, error) {
	out := make(map[string]string, len(own))
	for k, v := range own {
		out[k] = v
	}
	if scopes.Of(conn.Scope).SplitsInputs() && holder != credential.HolderORGANIZATION {
		orgKeys := sourceKeys(conn, inputs, schematype.InputSourceOrg)
		for k := range orgKeys {
			delete(out, k)
		}
		oc, err := s.orgCredential(ctx, s.DB, conn.ID, isTest)
		if err != nil {
			return nil, err
		}
		if oc != nil {
			sec, err := s.openSecrets(ctx, oc)
			if err != nil {
				return nil, err
			}
			for k, v := range mergeValues(oc.Inputs, sec) {
				if orgKeys[k] {
					out[k] = v
				}
			}
		}
	}
	if conn.TemplateID != nil {
		presets, err := s.templatePresets(ctx, conn)
		if err != nil {
			return nil, err
		}
		for k, v := range presets {
			if out[k] == "" && findInput(inputs, k) != nil {
				out[k] = v
			}
		}
	}
	return out, nil
}

// credentialConnection loads a credential's connection with its type.
func (s *Service) credentialConnection(ctx context.Context, c *ent.Credential) (*ent.Connection, error) {
	if conn, err := c.Edges.ConnectionOrErr(); err == nil {
		if _, err := conn.Edges.TypeOrErr(); err == nil {
			return conn, nil
		}
	}
	conn, err := s.connectionWithType(ctx, c.ConnectionID)
	if err != nil {
		return nil, fmt.Errorf("connection of credential %d: %w", c.ID, err)
	}
	return conn, nil
}

// customerExists reports whether the customer is the viewer's.
func (s *Service) customerExists(ctx context.Context, id int) (bool, error) {
	return s.DB.Customer.Query().Where(customer.ID(id)).Exist(ctx)
}

// integrationExists reports whether the integration is the viewer's.
func (s *Service) integrationExists(ctx context.Context, id int) (bool, error) {
	return s.DB.Integration.Query().Where(integration.ID(id)).Exist(ctx)
}

// isFieldRejection reports whether err is a rejection of the values
// themselves (not a conflict, not a fault).
func isFieldRejection(err error) (*ValidationError, bool) {
	var ve *ValidationError
	if errors.As(err, &ve) && errors.Is(ve, ErrValidation) {
		return ve, true
	}
	return nil, false
}
