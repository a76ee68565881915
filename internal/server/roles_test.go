package server_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/plugboard/plugboard/ent"
	"github.com/plugboard/plugboard/ent/connectionslot"
	"github.com/plugboard/plugboard/ent/credential"
	"github.com/plugboard/plugboard/ent/user"
	"github.com/plugboard/plugboard/internal/auth"
	"github.com/plugboard/plugboard/internal/globalid"
	"github.com/plugboard/plugboard/internal/server"
	"github.com/plugboard/plugboard/internal/server/servertest"
)

// The roles of the matrix, in the column order of its tables.
type role int

const (
	adminA   role = iota // ORG_ADMIN of organization A ("default")
	adminB               // ORG_ADMIN of organization B
	custA1               // CUSTOMER_USER: user 1 of customer A1
	custA2               // CUSTOMER_USER: the user of customer A2
	userA1b              // CUSTOMER_USER: user 2 of customer A1
	runtimeA             // RUNTIME of organization A
	numRoles
)

var roleNames = [numRoles]string{"adminA", "adminB", "custA1", "custA2", "userA1b", "runtimeA"}

func (r role) String() string { return roleNames[r] }

// expect is one cell of the matrix.
type expect int

const (
	// A: allowed; no error.
	A expect = iota
	// R: reached the operation's own rules: no FORBIDDEN, NOT_FOUND or
	// UNAUTHENTICATED (a VALIDATION_FAILED of the input is fine).
	R
	// D: denied: FORBIDDEN or NOT_FOUND with the field null, or a
	// nullable field answering null.
	D
	// F: filtered: denied, or allowed showing only what the role sees.
	F
	// E: either reached or denied: a customer's self-service that
	// internal/connection is opening up; the target is the role's own.
	E
	// N: not built yet, or denied: NOT_SUPPORTED, FORBIDDEN or NOT_FOUND.
	N
	// NA: not built yet, or reached: an admin on its own organization. The
	// admin column is checked by those operations' own tests.
	NA
)

func (e expect) String() string { return []string{"A", "R", "D", "F", "E", "N", "NA"}[e] }

func row(cells ...expect) [numRoles]expect {
	var out [numRoles]expect
	copy(out[:], cells)
	return out
}

// object is a seeded object: its global id, and the strings that would
// betray it (names, external ids, keys).
type object struct {
	name    string
	id      string
	typ     string
	markers []string
	// seenBy are the roles that see it.
	seenBy []role
}

type matrixEnv struct {
	env     *servertest.Env
	tokens  [numRoles]string
	objects map[string]*object
	// ids by object name, for building requests.
	id map[string]string
	// scratch objects the admin mutations act on.
	scratchConn, victimToken string
	victimKey                string
}

func (m *matrixEnv) sees(r role, o *object) bool {
	for _, s := range o.seenBy {
		if s == r {
			return true
		}
	}
	return false
}

// checkNoLeak fails when raw holds a marker of an object r does not see.
func (m *matrixEnv) checkNoLeak(t *testing.T, r role, what, raw string) {
	t.Helper()
	for _, o := range m.objects {
		if m.sees(r, o) {
			continue
		}
		// An id is matched whole, quoted: one global id may start another.
		for _, mk := range append([]string{`"` + o.id + `"`}, o.markers...) {
			if strings.Contains(raw, mk) {
				t.Errorf("%s %s: the response names %s (%q): %s", r, what, o.name, mk, raw)
			}
		}
	}
}

// seedMatrix seeds organization A (customers A1, A2, their credentials,
// the organization's own credential, an instance of A1 with its inline
// credential, a USER credential of A1's first user) and organization B.
func seedMatrix(t *testing.T, env *servertest.Env) *matrixEnv {
	t.Helper()
	ctx := context.Background()
	sys := auth.SystemContext(ctx)
	db := env.App.Store.Client
	asana, _ := fakeAsana(t)
	m := &matrixEnv{env: env, objects: map[string]*object{}, id: map[string]string{}}
	m.tokens[adminA] = env.AdminToken
	// RUNTIME tokens read values through the runtime endpoint only: they
	// see nothing through GraphQL lists or node lookups.
	all := []role{adminA}
	add := func(name, typ, id string, seenBy []role, markers ...string) {
		if id == "" {
			t.Fatalf("seeding %s: no id", name)
		}
		m.objects[name] = &object{name: name, id: id, typ: typ, markers: markers, seenBy: seenBy}
		m.id[name] = id
	}
	with := func(rs ...role) []role { return append(append([]role{}, all...), rs...) }
	do := func(token, q string, vars map[string]any, path string) string {
		t.Helper()
		r := env.DoAs(t, token, q, vars)
		mustOK(t, r)
		return servertest.Str(r.Data, path)
	}
	createConn := func(token, key, name, scope string) string {
		return do(token, `mutation($k: String!, $n: String!, $s: ConnectionScope!) {
			createConnection(input: {typeKey: "asana.apiKey", stableKey: $k, name: $n, scope: $s}) { connection { id } } }`,
			map[string]any{"k": key, "n": name, "s": scope}, "createConnection.connection.id")
	}
	createCustomer := func(token, ext, name string) string {
		return do(token, `mutation($e: String!, $n: String!) { createCustomer(input: {externalID: $e, name: $n}) { customer { id } } }`,
			map[string]any{"e": ext, "n": name}, "createCustomer.customer.id")
	}
	save := func(token, conn, cust string) string {
		in := map[string]any{"connectionID": conn, "values": []any{
			map[string]any{"key": "apiKey", "value": canary},
			map[string]any{"key": "baseUrl", "value": asana.URL},
		}}
		if cust != "" {
			in["customerID"] = cust
		}
		return do(token, saveMutation, map[string]any{"in": in}, "saveCredential.credential.id")
	}

	// Organization A.
	key := newEmbedKey(t, "alpha-key-1")
	add("signingKeyA", "SigningKey", registerKey(t, env, env.AdminToken, key), all, "alpha-key-1")
	// One for admin A to revoke; the customers' tokens use the other.
	m.victimKey = registerKey(t, env, env.AdminToken, newEmbedKey(t, "alpha-victim"))
	add("connA", "Connection", createConn(env.AdminToken, "asana-alpha", "Asana Alpha", "CUSTOMER"),
		with(custA1, custA2, userA1b), "asana-alpha", "Asana Alpha")
	add("connOrg", "Connection", createConn(env.AdminToken, "vendor-global", "Vendor Global Asana", "ORGANIZATION_GLOBAL"),
		all, "vendor-global", "Vendor Global Asana")
	add("connUser", "Connection", createConn(env.AdminToken, "user-dropbox", "User Level Asana", "USER"),
		with(custA1, custA2, userA1b), "user-dropbox", "User Level Asana")
	add("connInline", "Connection", createConn(env.AdminToken, "wizard-inline", "Inline Asana", "INTEGRATION"),
		with(custA1, custA2, userA1b), "wizard-inline", "Inline Asana")
	add("connOrgCust", "Connection", createConn(env.AdminToken, "vendor-per-customer", "Vendor Per Customer Asana", "ORGANIZATION_CUSTOMER"),
		all, "vendor-per-customer", "Vendor Per Customer Asana")
	m.scratchConn = createConn(env.AdminToken, "scratch", "Scratch", "CUSTOMER")
	add("custA1", "Customer", createCustomer(env.AdminToken, "zz-alpha-one", "Alpha One Ltd"),
		with(custA1, userA1b), "zz-alpha-one", "Alpha One Ltd")
	add("custA2", "Customer", createCustomer(env.AdminToken, "zz-alpha-two", "Alpha Two Ltd"),
		with(custA2), "zz-alpha-two", "Alpha Two Ltd")
	add("credA1", "Credential", save(env.AdminToken, m.id["connA"], m.id["custA1"]), with(custA1, userA1b))
	add("credA2", "Credential", save(env.AdminToken, m.id["connA"], m.id["custA2"]), with(custA2))
	add("credOrg", "Credential", save(env.AdminToken, m.id["connOrg"], ""), all)
	// The organization-managed per-customer connection: the organization's
	// part (its hidden inputs) and customer A1's part (its shown ones).
	saveOC := func(cust string, key, value string) string {
		in := map[string]any{"connectionID": m.id["connOrgCust"], "values": []any{map[string]any{"key": key, "value": value}}}
		if cust != "" {
			in["customerID"] = cust
		}
		return do(env.AdminToken, saveMutation, map[string]any{"in": in}, "saveCredential.credential.id")
	}
	add("credOrgCust", "Credential", saveOC("", "baseUrl", asana.URL), all)
	add("credOrgCustA1", "Credential", saveOC(m.id["custA1"], "apiKey", canary), all)

	// The customers' users come with their first embedding token.
	m.tokens[custA1] = key.token(t, "default", "zz-alpha-one", "u-alpha-one-1")
	m.tokens[userA1b] = key.token(t, "default", "zz-alpha-one", "u-alpha-one-2")
	m.tokens[custA2] = key.token(t, "default", "zz-alpha-two", "u-alpha-two-1")
	users := map[role]string{custA1: "u-alpha-one-1", userA1b: "u-alpha-one-2", custA2: "u-alpha-two-1"}
	userRows := map[role]*ent.User{}
	for r, ext := range users {
		if got := do(m.tokens[r], `{ viewer { role } }`, nil, "viewer.role"); got != "CUSTOMER_USER" {
			t.Fatalf("%s: role %s", r, got)
		}
		u, err := db.User.Query().Where(user.ExternalID(ext)).Only(sys)
		if err != nil {
			t.Fatal(err)
		}
		userRows[r] = u
		add("user-"+r.String(), "User", globalid.Encode(u.ID), with(r), ext)
	}
	orgA, err := server.EnsureOrganization(ctx, db, server.DefaultOrgSlug)
	if err != nil {
		t.Fatal(err)
	}
	// Every role of organization A sees its organization (viewer.organization).
	add("orgA", "Organization", globalid.Encode(orgA.ID), with(custA1, custA2, userA1b, runtimeA))

	// Rows the API cannot make yet: an integration, an instance of A1, its
	// inline credential, and a USER credential of A1's first user.
	custA1ID, _ := globalid.Decode(m.id["custA1"])
	integ, err := db.Integration.Create().SetOrganizationID(orgA.ID).SetKey("alpha-sync").SetName("Alpha Sync").Save(sys)
	if err != nil {
		t.Fatal(err)
	}
	add("integA", "Integration", globalid.Encode(integ.ID), with(custA1, custA2, userA1b), "alpha-sync", "Alpha Sync")
	inst, err := db.Instance.Create().SetOrganizationID(orgA.ID).SetIntegrationID(integ.ID).
		SetCustomerID(custA1ID).SetName("Alpha Sync for One").Save(sys)
	if err != nil {
		t.Fatal(err)
	}
	add("instA1", "Instance", globalid.Encode(inst.ID), with(custA1, userA1b), "Alpha Sync for One")
	connInline, _ := globalid.Decode(m.id["connInline"])
	connUser, _ := globalid.Decode(m.id["connUser"])
	// A slot of every scope.
	for i, sl := range []struct{ key, conn string }{
		{"asana", "connA"}, {"org-wide", "connOrg"}, {"org-per-customer", "connOrgCust"},
		{"inline", "connInline"}, {"dropbox", "connUser"},
	} {
		connID, _ := globalid.Decode(m.id[sl.conn])
		if err := db.ConnectionSlot.Create().SetOrganizationID(orgA.ID).SetIntegrationID(integ.ID).
			SetKey(sl.key).SetLabel("Slot " + sl.key).SetPosition(i).SetConnectionID(connID).Exec(sys); err != nil {
			t.Fatal(err)
		}
	}
	ci, err := db.Credential.Create().SetOrganizationID(orgA.ID).SetConnectionID(connInline).
		SetHolder(credential.HolderINSTANCE).SetInstanceID(inst.ID).
		SetHolderKey(fmt.Sprintf("instance:%d", inst.ID)).Save(sys)
	if err != nil {
		t.Fatal(err)
	}
	add("credInstA1", "Credential", globalid.Encode(ci.ID), with(custA1, userA1b))
	u1 := userRows[custA1]
	cu, err := db.Credential.Create().SetOrganizationID(orgA.ID).SetConnectionID(connUser).
		SetHolder(credential.HolderUSER).SetUserID(u1.ID).SetCustomerID(custA1ID).
		SetHolderKey(fmt.Sprintf("user:%d", u1.ID)).Save(sys)
	if err != nil {
		t.Fatal(err)
	}
	add("credUserA1", "Credential", globalid.Encode(cu.ID), with(custA1))
	// The USER slot of the instance uses the first user's credential: the
	// second user sees the slot's status, not the credential.
	dropbox, err := db.ConnectionSlot.Query().Where(connectionslot.IntegrationID(integ.ID), connectionslot.Key("dropbox")).Only(sys)
	if err != nil {
		t.Fatal(err)
	}
	if err := db.InstanceBinding.Create().SetOrganizationID(orgA.ID).SetInstanceID(inst.ID).
		SetSlotID(dropbox.ID).SetCredentialID(cu.ID).Exec(sys); err != nil {
		t.Fatal(err)
	}

	// Tokens of A: the runtime, one for admin A to revoke.
	rt, _, err := env.App.Tokens.Create(ctx, orgA.ID, auth.RoleRuntime, "alpha-runtime")
	if err != nil {
		t.Fatal(err)
	}
	m.tokens[runtimeA] = rt
	_, victim, err := env.App.Tokens.Create(ctx, orgA.ID, auth.RoleRuntime, "victim")
	if err != nil {
		t.Fatal(err)
	}
	m.victimToken = globalid.Encode(victim.ID)
	r := env.Do(t, `{ apiTokens(first: 1, orderBy: {field: CREATED_AT, direction: ASC}) { edges { node { id } } }
		auditEvents(first: 1) { edges { node { id } } } }`, nil)
	mustOK(t, r)
	add("apiTokenA", "APIToken", servertest.Str(r.Data, "apiTokens.edges.0.node.id"), all)
	add("auditA", "AuditEvent", servertest.Str(r.Data, "auditEvents.edges.0.node.id"), all)

	// Organization B.
	orgB, err := server.EnsureOrganization(ctx, db, "bravo-org")
	if err != nil {
		t.Fatal(err)
	}
	if m.tokens[adminB], _, err = env.App.Tokens.Create(ctx, orgB.ID, auth.RoleOrgAdmin, "bravo-admin"); err != nil {
		t.Fatal(err)
	}
	onlyB := []role{adminB}
	add("orgB", "Organization", globalid.Encode(orgB.ID), onlyB, "bravo-org")
	add("connB", "Connection", createConn(m.tokens[adminB], "bravo-asana", "Bravo Asana", "CUSTOMER"), onlyB, "bravo-asana", "Bravo Asana")
	add("custB1", "Customer", createCustomer(m.tokens[adminB], "zz-bravo-one", "Bravo One Ltd"), onlyB, "zz-bravo-one", "Bravo One Ltd")
	add("credB1", "Credential", save(m.tokens[adminB], m.id["connB"], m.id["custB1"]), onlyB)
	return m
}

// check asserts one cell of the matrix on the response to an operation
// whose result is at data[field].
func (m *matrixEnv) check(t *testing.T, r role, op string, want expect, res *servertest.Response, field string) {
	t.Helper()
	code := res.Code()
	denied := code == "FORBIDDEN" || code == "NOT_FOUND"
	if denied && res.Data != nil && servertest.Get(res.Data, field) != nil {
		t.Errorf("%s %s: denied, yet the field has a value: %s", r, op, res.Raw)
	}
	if code == "VALIDATION_FAILED" && allUserErrors(res, "NOT_FOUND") {
		// A save naming objects outside the viewer's tenant: its payload
		// carries the userErrors, and the leak check below sees that
		// nothing else of them is named.
		denied = true
	}
	if len(res.Errors) == 0 && servertest.Get(res.Data, field) == nil {
		// A nullable field answering null: nothing to see.
		denied = true
	}
	notBuilt := code == "VALIDATION_FAILED" && allUserErrors(res, "NOT_SUPPORTED")
	if code == "INTERNAL" {
		t.Errorf("%s %s: no viewer may get INTERNAL: %s", r, op, res.Raw)
	}
	reached := code != "FORBIDDEN" && code != "NOT_FOUND" && code != "UNAUTHENTICATED" && code != "INTERNAL" && !denied
	ok := false
	switch want {
	case A:
		ok = len(res.Errors) == 0
	case R:
		ok = reached
	case D:
		ok = denied
	case F, E:
		ok = denied || reached
	case N:
		ok = notBuilt || denied
	case NA:
		ok = notBuilt || reached
	}
	if !ok {
		t.Errorf("%s %s: want %s, got %s", r, op, want, res.Raw)
	}
	m.checkNoLeak(t, r, op, res.Raw)
}

func allUserErrors(res *servertest.Response, code string) bool {
	for _, e := range res.Errors {
		ues, _ := e.Extensions["userErrors"].([]any)
		if len(ues) == 0 {
			return false
		}
		for _, u := range ues {
			if c, _ := u.(map[string]any)["code"].(string); c != code {
				return false
			}
		}
	}
	return len(res.Errors) > 0
}

// listIDs returns the ids of a connection's nodes at path.
func listIDs(data map[string]any, path string) map[string]bool {
	out := map[string]bool{}
	edges, _ := servertest.Get(data, path+".edges").([]any)
	for _, e := range edges {
		if id := servertest.Str(e.(map[string]any), "node.id"); id != "" {
			out[id] = true
		}
	}
	return out
}

// queryMatrix: every query; a list query, when allowed, shows every seeded
// object of its type the role sees and none it does not.
var queryMatrix = []struct {
	field string
	typ   string // the seeded type the list holds; "" for no list check
	query string
	//     adminA adminB custA1 custA2 userA1b runtimeA
	want [numRoles]expect
}{
	{"viewer", "", `{ viewer { role organization { id } customer { id } } }`, row(A, A, A, A, A, A)},
	{"connectionTypes", "", `{ connectionTypes { totalCount edges { node { key } } } }`, row(A, A, A, A, A, A)},
	{"connectionType", "", `{ connectionType(key: "asana.apiKey") { key inputs { key } } }`, row(A, A, A, A, A, A)},
	{"plugins", "", `{ plugins { edges { node { name } } } }`, row(A, A, A, A, A, A)},
	{"connections", "Connection", `{ connections(first: 100) { edges { node { id name stableKey } } } }`, row(A, A, F, F, F, D)},
	{"credentials", "Credential", `{ credentials(first: 100) { edges { node { id holder connection { id name } customer { id externalID } } } } }`, row(A, A, F, F, F, D)},
	{"customers", "Customer", `{ customers(first: 100) { edges { node { id externalID name } } } }`, row(A, A, F, F, F, D)},
	{"instances", "Instance", `{ instances(first: 100) { edges { node { id name customer { id } } } } }`, row(A, A, F, F, F, D)},
	{"integrations", "Integration", `{ integrations(first: 100) { edges { node { id key name } } } }`, row(A, A, F, F, F, D)},
	{"auditEvents", "AuditEvent", `{ auditEvents(first: 100) { edges { node { id action actor message } } } }`, row(A, A, D, D, D, D)},
	{"apiTokens", "APIToken", `{ apiTokens(first: 100) { edges { node { id name role } } } }`, row(A, A, D, D, D, D)},
	{"signingKeys", "SigningKey", `{ signingKeys(first: 100) { edges { node { id kid publicKeyPem } } } }`, row(A, A, D, D, D, D)},
	{"connectionUsage", "", `query($connA: ID!) { connectionUsage(connectionID: $connA) { connection { id } } }`, row(A, D, D, D, D, D)},
	{"configWizard", "", `query($instA1: ID!) { configWizard(instanceID: $instA1) { __typename } }`, row(A, D, A, D, A, D)},
	// The instance of A1 has a slot of every scope; each role sees every
	// slot's status and only the credentials it sees elsewhere.
	{"node", "", `query($instA1: ID!) { node(id: $instA1) { ... on Instance { id configState needsDeploy
		slots { slot { key label position } status credential { id holder status } } } } }`, row(A, D, A, D, A, D)},
	// A slot's connection is the viewer's to see only when the connection
	// is: a customer's user asking for an organization-managed one is
	// denied, never answered INTERNAL.
	{"node", "", `query($instA1: ID!) { node(id: $instA1) { ... on Instance { slots { slot { key connection { id scope } } } } } }`,
		row(A, D, F, D, F, D)},
	{"instances", "Instance", `{ instances(first: 100) { edges { node { id configState
		slots { slot { key } status credential { id status } } } } } }`, row(A, A, F, F, F, D)},
	{"integrations", "Integration", `{ integrations(first: 100) { edges { node { id key connectionSlots { key label position } } } } }`,
		row(A, A, F, F, F, D)},
	{"configWizard", "", `query($instA1: ID!) { configWizard(instanceID: $instA1) { instance { id slots { status credential { id } } }
		pages { key elements { slotKey label scope typeKey action status connected connectLabel
			credential { id holder status values { key isSet } } existing { id }
			fields { key value isSet } errors { field code message } } } } }`, row(A, D, A, D, A, D)},
	{"connectionUsage", "", `query($connOrgCust: ID!) { connectionUsage(connectionID: $connOrgCust) {
		connection { id } integrations { id } customers { id }
		instances { instance { id } customer { id } slotKey credential { id } needsDeploy } } }`, row(A, D, D, D, D, D)},
}

// mutationMatrix: every mutation, in the order run. Each names its targets
// by the seeded objects (connA, credA1, ...); <role> makes a key unique to
// the role. Admin A's column runs last, so its changes cannot hide another
// role's denial.
var mutationMatrix = []struct {
	field string
	query string
	//     adminA adminB custA1 custA2 userA1b runtimeA
	want [numRoles]expect
}{
	{"createConnection", `mutation($role: String!) { createConnection(input: {typeKey: "asana.apiKey", stableKey: $role, name: $role, scope: CUSTOMER}) { connection { id } } }`,
		row(A, A, D, D, D, D)},
	{"updateConnection", `mutation($connA: ID!) { updateConnection(input: {id: $connA, name: "Asana Alpha"}) { connection { id name } } }`,
		row(A, D, D, D, D, D)},
	{"saveCredential", `mutation($connA: ID!, $custA1: ID!) { saveCredential(input: {connectionID: $connA, customerID: $custA1,
		values: [{key: "apiKey", value: "1/0000000000000000:abc"}]}) { credential { id } } }`,
		row(A, D, E, D, E, D)},
	{"saveCredential", `mutation($connInline: ID!, $instA1: ID!) { saveCredential(input: {connectionID: $connInline, instanceID: $instA1,
		values: [{key: "apiKey", value: "1/0000000000000000:abc"}]}) { credential { id status } } }`,
		row(A, D, E, D, E, D)},
	{"saveCredential", `mutation($connUser: ID!) { saveCredential(input: {connectionID: $connUser,
		values: [{key: "apiKey", value: "1/0000000000000000:abc"}]}) { credential { id status } } }`,
		row(R, D, E, E, E, D)},
	{"testCredential", `mutation($credA1: ID!) { testCredential(id: $credA1) { credential { id } result { ok } } }`,
		row(A, D, E, D, E, D)},
	{"startOAuth2", `mutation($credA1: ID!) { startOAuth2(input: {credentialID: $credA1}) { authorizeURL } }`,
		row(R, D, E, D, E, D)},
	{"disconnectCredential", `mutation($credA1: ID!) { disconnectCredential(id: $credA1) { credential { id } } }`,
		row(R, D, E, D, E, D)},
	{"createCustomer", `mutation($role: String!) { createCustomer(input: {externalID: $role, name: $role}) { customer { id } } }`,
		row(A, A, D, D, D, D)},
	{"reloadPlugins", `mutation { reloadPlugins { plugins { name } } }`,
		row(A, A, D, D, D, D)},
	{"updateOrganization", `mutation { updateOrganization(input: {autoCreateCustomers: false}) { organization { id } } }`,
		row(A, A, D, D, D, D)},
	{"registerSigningKey", `mutation($role: String!, $pem: String!) { registerSigningKey(input: {kid: $role, algorithm: EdDSA, publicKeyPEM: $pem}) { signingKey { id } } }`,
		row(A, A, D, D, D, D)},
	{"createAPIToken", `mutation($role: String!) { createAPIToken(input: {role: ORG_ADMIN, name: $role}) { token apiToken { id } } }`,
		row(A, A, D, D, D, D)},
	{"revokeAPIToken", `mutation($victim: ID!) { revokeAPIToken(id: $victim) { apiToken { id } } }`,
		row(A, D, D, D, D, D)},
	{"revokeSigningKey", `mutation($victimKey: ID!) { revokeSigningKey(id: $victimKey) { signingKey { id revokedAt } } }`,
		row(A, D, D, D, D, D)},
	{"createIntegration", `mutation($role: String!) { createIntegration(input: {key: $role, name: $role, slots: []}) { integration { id } } }`,
		row(A, A, D, D, D, D)},
	{"createInstance", `mutation($integA: ID!, $custA1: ID!, $role: String!) { createInstance(input: {integrationID: $integA, customerID: $custA1, name: $role}) { instance { id } } }`,
		row(A, D, D, D, D, D)},
	{"bindInstanceConnection", `mutation($instA1: ID!, $credA1: ID!) { bindInstanceConnection(input: {instanceID: $instA1, slotKey: "asana", credentialID: $credA1}) { instance { id } } }`,
		row(R, D, E, D, E, D)},
	{"deployInstance", `mutation($instA1: ID!) { deployInstance(id: $instA1) { instance { id } } }`,
		row(R, D, D, D, D, D)},
	{"createConnectionTemplate", `mutation($role: String!) { createConnectionTemplate(input: {typeKey: "asana.apiKey", name: $role, presets: []}) { template { id } } }`,
		row(A, A, D, D, D, D)},
	{"createUser", `mutation($custA1: ID!, $role: String!) { createUser(input: {customerID: $custA1, externalID: $role}) { user { id } } }`,
		row(A, D, D, D, D, D)},
	{"rollbackCredential", `mutation($credA1: ID!) { rollbackCredential(id: $credA1, version: 1) { credential { id } } }`,
		row(R, D, D, D, D, D)},
	// Data keys are plugboard-wide: any organization's admin may rotate
	// them; nothing of another organization is shown.
	{"rotateEncryptionKey", `mutation { rotateEncryptionKey { keyID remaining } }`,
		row(A, A, D, D, D, D)},
	{"deleteConnection", `mutation($scratch: ID!) { deleteConnection(id: $scratch) { deletedID } }`,
		row(A, D, D, D, D, D)},
	{"deleteInstance", `mutation($instA1: ID!) { deleteInstance(id: $instA1) { __typename } }`,
		row(A, D, D, D, D, D)},
}

// vars gives an operation the variables it declares, out of every seeded
// id and the role's own key.
func (m *matrixEnv) vars(t *testing.T, r role, query string) map[string]any {
	pool := map[string]any{
		"role": "m-" + strings.ToLower(r.String()), "scratch": m.scratchConn, "victim": m.victimToken,
		"victimKey": m.victimKey,
		"pem":       newEmbedKey(t, "x").publicPEM(t),
	}
	for k, v := range m.id {
		pool[k] = v
	}
	out := map[string]any{}
	for k, v := range pool {
		if strings.Contains(query, "$"+k+":") {
			out[k] = v
		}
	}
	return out
}

func TestRoleMatrix(t *testing.T) {
	servertest.EachDB(t, servertest.Config{Plugins: []string{"asana"}}, func(t *testing.T, env *servertest.Env) {
		m := seedMatrix(t, env)
		roles := []role{adminA, adminB, custA1, custA2, userA1b, runtimeA}

		t.Run("queries", func(t *testing.T) {
			for _, q := range queryMatrix {
				for _, r := range roles {
					res := env.DoAs(t, m.tokens[r], q.query, m.vars(t, r, q.query))
					m.check(t, r, q.field, q.want[r], res, q.field)
					if q.typ == "" || len(res.Errors) > 0 {
						continue
					}
					got := listIDs(res.Data, q.field)
					for _, o := range m.objects {
						if o.typ != q.typ {
							continue
						}
						if m.sees(r, o) && !got[o.id] {
							t.Errorf("%s %s: %s is missing: %s", r, q.field, o.name, res.Raw)
						}
						if !m.sees(r, o) && got[o.id] {
							t.Errorf("%s %s: %s is shown: %s", r, q.field, o.name, res.Raw)
						}
					}
				}
			}
		})

		t.Run("slots", func(t *testing.T) {
			// Every slot has a status each member of the customer sees;
			// the credential only where the member sees it elsewhere.
			const q = `query($id: ID!) { node(id: $id) { ... on Instance { slots { slot { key } status credential { id } } } } }`
			want := map[role]map[string]string{
				custA1:  {"asana": "credA1", "org-wide": "", "org-per-customer": "", "inline": "credInstA1", "dropbox": "credUserA1"},
				userA1b: {"asana": "credA1", "org-wide": "", "org-per-customer": "", "inline": "credInstA1", "dropbox": ""},
				adminA:  {"asana": "credA1", "org-wide": "credOrg", "org-per-customer": "credOrgCustA1", "inline": "credInstA1", "dropbox": "credUserA1"},
			}
			for r, creds := range want {
				res := env.DoAs(t, m.tokens[r], q, map[string]any{"id": m.id["instA1"]})
				slots, _ := servertest.Get(res.Data, "node.slots").([]any)
				if len(res.Errors) > 0 || len(slots) != len(creds) {
					t.Fatalf("%s slots: %s", r, res.Raw)
				}
				for i := range slots {
					key := servertest.Str(res.Data, fmt.Sprintf("node.slots.%d.slot.key", i))
					status := servertest.Str(res.Data, fmt.Sprintf("node.slots.%d.status", i))
					got := servertest.Str(res.Data, fmt.Sprintf("node.slots.%d.credential.id", i))
					if wantCred := creds[key]; (wantCred == "" && got != "") || (wantCred != "" && got != m.id[wantCred]) {
						t.Errorf("%s slot %s: credential %q, want %s", r, key, got, wantCred)
					}
					if status == "" {
						t.Errorf("%s slot %s: no status: %s", r, key, res.Raw)
					}
				}
			}
		})

		t.Run("viewer", func(t *testing.T) {
			for _, r := range roles {
				res := env.DoAs(t, m.tokens[r], `{ viewer { role customer { id } } }`, nil)
				wantRole, wantCustomer := "ORG_ADMIN", ""
				switch r {
				case custA1, userA1b:
					wantRole, wantCustomer = "CUSTOMER_USER", m.id["custA1"]
				case custA2:
					wantRole, wantCustomer = "CUSTOMER_USER", m.id["custA2"]
				case runtimeA:
					wantRole = "RUNTIME"
				}
				if servertest.Str(res.Data, "viewer.role") != wantRole || servertest.Str(res.Data, "viewer.customer.id") != wantCustomer {
					t.Errorf("%s viewer: %s", r, res.Raw)
				}
			}
		})

		t.Run("node", func(t *testing.T) {
			allIDs := []string{}
			for _, o := range m.objects {
				allIDs = append(allIDs, o.id)
			}
			for _, r := range roles {
				for _, o := range m.objects {
					res := env.DoAs(t, m.tokens[r], `query($id: ID!) { node(id: $id) { id __typename } }`, map[string]any{"id": o.id})
					op := "node(" + o.name + ")"
					if nodeVisible(m, r, o) {
						m.check(t, r, op, A, res, "node")
						if servertest.Str(res.Data, "node.id") != o.id || servertest.Str(res.Data, "node.__typename") != o.typ {
							t.Errorf("%s %s: %s", r, op, res.Raw)
						}
					} else if r == runtimeA {
						// RUNTIME tokens may not look up nodes at all.
						if res.Code() != "FORBIDDEN" {
							t.Errorf("%s %s: want FORBIDDEN, got %s", r, op, res.Raw)
						}
						m.check(t, r, op, D, res, "node")
					} else {
						if res.Code() != "NOT_FOUND" {
							t.Errorf("%s %s: want NOT_FOUND, got %s", r, op, res.Raw)
						}
						m.check(t, r, op, D, res, "node")
					}
					res = env.DoAs(t, m.tokens[r], `query($ids: [ID!]!) { nodes(ids: $ids) { id } }`, map[string]any{"ids": []string{o.id}})
					op = "nodes(" + o.name + ")"
					if nodeVisible(m, r, o) {
						m.check(t, r, op, A, res, "nodes")
						if servertest.Str(res.Data, "nodes.0.id") != o.id {
							t.Errorf("%s %s: %s", r, op, res.Raw)
						}
					} else {
						if servertest.Get(res.Data, "nodes.0") != nil {
							t.Errorf("%s %s: shown: %s", r, op, res.Raw)
						}
						m.checkNoLeak(t, r, op, res.Raw)
					}
				}
				// All at once: exactly the role's objects come back.
				res := env.DoAs(t, m.tokens[r], `query($ids: [ID!]!) { nodes(ids: $ids) { id } }`, map[string]any{"ids": allIDs})
				m.checkNoLeak(t, r, "nodes(all)", res.Raw)
				nodes, _ := servertest.Get(res.Data, "nodes").([]any)
				for i, id := range allIDs {
					o := m.objects[nameOf(m, id)]
					var got any
					if i < len(nodes) {
						got = nodes[i]
					}
					if nodeVisible(m, r, o) != (got != nil) {
						t.Errorf("%s nodes(all): %s shown=%v", r, o.name, got != nil)
					}
				}
			}
		})

		t.Run("subscription", func(t *testing.T) {
			const sub = `subscription($id: ID) { credentialStatusChanged(credentialID: $id) { to credential { id } } }`
			for _, r := range roles {
				for _, target := range []string{"credA1", "credA2", "credOrg", "credB1"} {
					o := m.objects[target]
					if r == runtimeA {
						// A RUNTIME token may not subscribe: its socket is
						// closed at connection_init.
						if c := closeCode(t, env, m.tokens[r]); c != 4403 {
							t.Errorf("%s subscribe(%s): closed with %d, want 4403", r, target, c)
						}
						continue
					}
					before := env.App.Events.Subscribers()
					conn := subscribe(t, env, m.tokens[r], sub, map[string]any{"id": o.id})
					if m.sees(r, o) {
						// Accepted: the subscription registers with the bus.
						deadline := time.Now().Add(10 * time.Second)
						for env.App.Events.Subscribers() <= before && time.Now().Before(deadline) {
							time.Sleep(10 * time.Millisecond)
						}
						if env.App.Events.Subscribers() <= before {
							t.Errorf("%s subscribe(%s): not registered", r, target)
						}
					} else {
						// Refused: an error message, or a result carrying
						// only errors.
						msg, err := receive(conn)
						var errs []struct {
							Extensions map[string]any `json:"extensions"`
						}
						var result struct {
							Errors []struct {
								Extensions map[string]any `json:"extensions"`
							} `json:"errors"`
							Data map[string]any `json:"data"`
						}
						switch msg.Type {
						case "error":
							_ = json.Unmarshal(msg.Payload, &errs)
						case "next":
							if json.Unmarshal(msg.Payload, &result) == nil && result.Data == nil {
								errs = result.Errors
							}
						}
						if err != nil || len(errs) == 0 ||
							(errs[0].Extensions["code"] != "NOT_FOUND" && errs[0].Extensions["code"] != "FORBIDDEN") {
							t.Errorf("%s subscribe(%s): want NOT_FOUND or FORBIDDEN, got %s %s %v", r, target, msg.Type, msg.Payload, err)
						}
						m.checkNoLeak(t, r, "subscribe("+target+")", string(msg.Payload))
					}
					conn.CloseNow()
					// Wait for the server to drop the subscription, so the
					// next count starts from a settled number.
					deadline := time.Now().Add(10 * time.Second)
					for env.App.Events.Subscribers() > before && time.Now().Before(deadline) {
						time.Sleep(10 * time.Millisecond)
					}
				}
			}
		})

		t.Run("mutations", func(t *testing.T) {
			// Admin A last: its mutations change what the others would act on.
			order := []role{adminB, custA1, custA2, userA1b, runtimeA, adminA}
			for _, r := range order {
				for _, mu := range mutationMatrix {
					res := env.DoAs(t, m.tokens[r], mu.query, m.vars(t, r, mu.query))
					m.check(t, r, mu.field, mu.want[r], res, mu.field)
				}
			}
		})
		assertNoCanary(t, env)
		if logs := env.Logs.String(); strings.Contains(logs, "panic") {
			t.Errorf("the log holds a panic:\n%s", logs)
		}
	})
}

func nameOf(m *matrixEnv, id string) string {
	for n, o := range m.objects {
		if o.id == id {
			return n
		}
	}
	return ""
}

// nodeVisible: what node and nodes show a role; RUNTIME tokens may not
// look up nodes at all.
func nodeVisible(m *matrixEnv, r role, o *object) bool {
	return r != runtimeA && m.sees(r, o)
}

// TestCustomerSeesNoHiddenInputs: a customer user listing its credentials
// gets only the inputs shown to customers; the admin gets them all.
func TestCustomerSeesNoHiddenInputs(t *testing.T) {
	env := servertest.Start(t, servertest.Config{Plugins: []string{"asana"}})
	m := seedMatrix(t, env)
	const q = `{ credentials(first: 100) { edges { node { id values { key isSet } } } } }`
	r := env.DoAs(t, m.tokens[custA1], q, nil)
	mustOK(t, r)
	if !strings.Contains(r.Raw, `"apiKey"`) {
		t.Fatalf("the customer's own credential lacks its shown input: %s", r.Raw)
	}
	if strings.Contains(r.Raw, `"baseUrl"`) {
		t.Fatalf("a hidden input reached a customer: %s", r.Raw)
	}
	r = env.Do(t, q, nil)
	mustOK(t, r)
	if !strings.Contains(r.Raw, `"baseUrl"`) {
		t.Fatalf("the admin does not see the hidden input: %s", r.Raw)
	}
}
