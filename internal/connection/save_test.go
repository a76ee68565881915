package connection

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/plugboard/plugboard/ent"
	"github.com/plugboard/plugboard/ent/auditevent"
	"github.com/plugboard/plugboard/ent/connectiontype"
	"github.com/plugboard/plugboard/ent/credential"
	"github.com/plugboard/plugboard/ent/credentialversion"
	"github.com/plugboard/plugboard/internal/pluginhost"
	"github.com/plugboard/plugboard/plugins/sdk"
)

// refusal is a save the pipeline refuses at one step, after the
// organization-wide credential was seeded.
type refusal struct {
	name     string
	customer bool // a customer's user saves, else an admin
	in       func(w *saveWorld) SaveCredentialInput
	plugins  func(p *fakePlugins)
	// fields are the refusal's field errors as "path:CODE"; none for a
	// fault, which is err instead.
	fields []string
	err    error
	// recorded says the refusal is kept in the seeded credential's
	// last_errors (a field rejection of a stored credential's save).
	recorded bool
	result   string // the live test's message the refusal returns
}

// onConn is a save of vals on the organization-wide connection.
func onConn(vals ...ValueInput) func(w *saveWorld) SaveCredentialInput {
	return func(w *saveWorld) SaveCredentialInput {
		return SaveCredentialInput{ConnectionID: w.conn.ID, Values: vals}
	}
}

var refusals = []refusal{
	{name: "unknown connection", fields: []string{"connectionID:NOT_FOUND"},
		in: func(w *saveWorld) SaveCredentialInput { return SaveCredentialInput{ConnectionID: w.oauthConn.ID + 100} }},
	{name: "holder: organization's connection, by a customer's user", customer: true,
		in: onConn(value("host", "x.example.com")), fields: []string{"connectionID:NOT_FOUND"}},
	{name: "holder: customer's connection without a customer", fields: []string{"customerID:REQUIRED"},
		in: func(w *saveWorld) SaveCredentialInput { return SaveCredentialInput{ConnectionID: w.custConn.ID} }},
	{name: "holder: test credential by a customer's user", customer: true, fields: []string{"isTest:FORBIDDEN"},
		in: func(w *saveWorld) SaveCredentialInput {
			return SaveCredentialInput{ConnectionID: w.custConn.ID, IsTest: true}
		}},
	{name: "merge: undeclared input", in: onConn(value("nope", "x")),
		fields: []string{"values.nope:UNKNOWN_INPUT"}, recorded: true},
	{name: "merge: template input", in: onConn(value("baseUrl", "https://x")),
		fields: []string{"values.baseUrl:READ_ONLY"}, recorded: true},
	{name: "merge: input given twice", in: onConn(value("host", "a.example.com"), value("host", "b.example.com")),
		fields: []string{"values.host:INVALID_VALUE"}, recorded: true},
	{name: "merge: value too long", in: onConn(value("host", strings.Repeat("h", MaxValueBytes+1))),
		fields: []string{"values.host:TOO_LONG"}, recorded: true},
	{name: "static check: required input cleared", in: onConn(ValueInput{Key: "host", Clear: true}),
		fields: []string{"values.host:REQUIRED"}, recorded: true},
	{name: "static check: required secret cleared", in: onConn(ValueInput{Key: "apiKey", Clear: true}),
		fields: []string{"values.apiKey:REQUIRED"}, recorded: true},
	{name: "static check: not a number", in: onConn(value("port", "many")),
		fields: []string{"values.port:INVALID_VALUE"}, recorded: true},
	{name: "plugin Validate: diagnostic on a field", in: onConn(value("host", "x.example.com")),
		plugins: func(p *fakePlugins) {
			p.diags = []sdk.Diagnostic{{Field: "host", Severity: sdk.SeverityError, Summary: "Unknown host " + seedSecret}}
		},
		fields: []string{"values.host:PLUGIN_REJECTED"}, recorded: true},
	{name: "plugin Validate: a warning is no refusal, an error is", in: onConn(value("host", "x.example.com")),
		plugins: func(p *fakePlugins) {
			p.diags = []sdk.Diagnostic{{Severity: sdk.SeverityWarning, Summary: "slow"},
				{Severity: sdk.SeverityError, Summary: "The account is locked."}}
		},
		fields: []string{":PLUGIN_REJECTED"}, recorded: true},
	{name: "mode: the organization's part is not tested",
		in: func(w *saveWorld) SaveCredentialInput {
			return SaveCredentialInput{ConnectionID: w.orgCustConn.ID, Test: true}
		},
		fields: []string{"test:NOT_SUPPORTED"}},
	{name: "test: failed", in: func(w *saveWorld) SaveCredentialInput {
		return SaveCredentialInput{ConnectionID: w.conn.ID, Test: true, Values: []ValueInput{value("host", "x.example.com")}}
	},
		plugins: func(p *fakePlugins) { p.answer(false, "401 for key "+seedSecret, nil) },
		fields:  []string{":TEST_FAILED"}, recorded: true, result: "401 for key [redacted]"},
	{name: "test: plugin unavailable", in: func(w *saveWorld) SaveCredentialInput {
		return SaveCredentialInput{ConnectionID: w.conn.ID, Test: true}
	},
		plugins: func(p *fakePlugins) { p.answer(false, "", pluginhost.ErrUnavailable) },
		err:     pluginhost.ErrUnavailable},
}

// TestSaveRefusals runs each refused save and checks its answer, that it
// stored nothing, and that a stored credential keeps the refusal for the
// config wizard.
func TestSaveRefusals(t *testing.T) {
	for _, tc := range refusals {
		t.Run(tc.name, func(t *testing.T) {
			w := newSaveWorld(t)
			seeded := w.seed(t)
			before := w.rows(t)
			if tc.plugins != nil {
				tc.plugins(w.plugins)
			}
			ctx := w.admin
			if tc.customer {
				ctx = w.customer
			}
			saved, result, err := w.s.SaveCredential(ctx, tc.in(w))
			if saved != nil || err == nil {
				t.Fatalf("saved %v, err %v; want a refusal", saved, err)
			}
			checkRefusal(t, tc, err, result)
			if after := w.rows(t); after != before {
				t.Errorf("a refused save changed the store:\nbefore:\n%s\nafter:\n%s", before, after)
			}
			last := LastErrors(w.db.Credential.GetX(w.sys, seeded.ID))
			if got := fieldCodes(invalid(last...)); tc.recorded != (len(got) > 0) || (tc.recorded && !slices.Equal(got, tc.fields)) {
				t.Errorf("last_errors = %v, want recorded %v", got, tc.recorded)
			}
		})
	}
}

func checkRefusal(t *testing.T, tc refusal, err error, result *TestResult) {
	t.Helper()
	if strings.Contains(err.Error(), seedSecret) {
		t.Errorf("the refusal quotes the secret: %v", err)
	}
	if tc.err != nil {
		if !errors.Is(err, tc.err) {
			t.Errorf("err = %v, want %v", err, tc.err)
		}
		return
	}
	if got := fieldCodes(err); !slices.Equal(got, tc.fields) {
		t.Errorf("field errors = %v (%v), want %v", got, err, tc.fields)
	}
	switch {
	case tc.result == "" && result != nil:
		t.Errorf("result = %+v, want none", result)
	case tc.result != "" && (result == nil || result.OK || result.Message != tc.result):
		t.Errorf("result = %+v, want a failed test %q", result, tc.result)
	}
}

// TestSaveMergeKeepsStoredSecrets saves one plain value over a stored
// credential: the stored secret stays, the checks and the plugin see every
// value, and only the changed input is recorded as changed.
func TestSaveMergeKeepsStoredSecrets(t *testing.T) {
	w := newSaveWorld(t)
	seeded := w.seed(t)
	n := w.audits()
	w.now = w.now.Add(time.Hour)
	saved, _, err := w.s.SaveCredential(w.admin, SaveCredentialInput{ConnectionID: w.conn.ID,
		Values: []ValueInput{value("host", "api2.example.com"), {Key: "apiKey"}}})
	if err != nil {
		t.Fatal(err)
	}
	secretVals, err := w.s.openSecrets(w.sys, saved)
	if err != nil {
		t.Fatal(err)
	}
	if secretVals["apiKey"] != seedSecret {
		t.Errorf("the stored secret was not kept")
	}
	if saved.SecretMeta["apiKey"] != seeded.SecretMeta["apiKey"] {
		t.Errorf("secret meta = %v, want %v: the secret did not change", saved.SecretMeta, seeded.SecretMeta)
	}
	want := map[string]string{"host": "api2.example.com", "port": "443"}
	if saved.Version != 2 || !mapsEqual(saved.Inputs, want) {
		t.Errorf("version %d inputs %v, want 2 and %v", saved.Version, saved.Inputs, want)
	}
	last := w.plugins.validated[len(w.plugins.validated)-1]
	if last["apiKey"] != seedSecret || last["port"] != "443" || last["baseUrl"] != "https://api2.example.com/api" {
		t.Errorf("Validate saw %v, want the merged and resolved values", redactedKeys(last))
	}
	msgs := w.db.AuditEvent.Query().Order(ent.Asc(auditevent.FieldID)).Offset(n).AllX(w.sys)
	if len(msgs) == 0 || msgs[0].Message != "version 2 saved; changed inputs: host" {
		t.Errorf("audit entries %v, want the save naming only host", msgs)
	}
}

// TestSaveSecretMeta dates a secret the save sets and forgets one it
// clears.
func TestSaveSecretMeta(t *testing.T) {
	w := newSaveWorld(t)
	seeded := w.seed(t)
	if got := seeded.SecretMeta["apiKey"].UpdatedAt; got != w.now.UnixMilli() {
		t.Errorf("apiKey updated at %d, want %d", got, w.now.UnixMilli())
	}
	w.now = w.now.Add(time.Hour)
	saved, _, err := w.s.SaveCredential(w.admin, SaveCredentialInput{ConnectionID: w.conn.ID,
		Values: []ValueInput{value("apiKey", "sk-other-secret")}})
	if err != nil {
		t.Fatal(err)
	}
	if got := saved.SecretMeta["apiKey"].UpdatedAt; got != w.now.UnixMilli() {
		t.Errorf("apiKey updated at %d, want %d", got, w.now.UnixMilli())
	}
}

func mapsEqual(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if bv, ok := b[k]; !ok || bv != v {
			return false
		}
	}
	return true
}

// redactedKeys shows the keys of vals, never their values.
func redactedKeys(vals map[string]string) []string {
	var out []string
	for k := range vals {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// saveStatusCases are the outcomes of a save and the status each decides.
var saveStatusCases = []struct {
	name   string
	o      saveOutcome
	status credential.Status
	detail string
	keep   bool
}{
	{"validated", saveOutcome{ct: apiKeyType}, credential.StatusACTIVE, "validated", false},
	{"tested", saveOutcome{ct: apiKeyType, test: &TestResult{OK: true, Message: "fine"}},
		credential.StatusACTIVE, "tested: fine", false},
	{"verified", saveOutcome{ct: apiKeyType, test: &TestResult{OK: true, Message: "fine"}, verified: true},
		credential.StatusACTIVE, "verified: fine", false},
	{"organization's part", saveOutcome{ct: apiKeyType, orgPart: true}, credential.StatusACTIVE, "organization values validated", false},
	{"client-credentials token fetched", saveOutcome{ct: clientCredentialsType, fetched: true, hasToken: true},
		credential.StatusACTIVE, "token obtained with the client credentials", false},
	{"OAuth 2.0 without a token", saveOutcome{ct: authCodeType, test: &TestResult{OK: true}},
		credential.StatusPENDING, "waiting for OAuth 2.0 authorization", false},
	{"OAuth 2.0 holding a token", saveOutcome{ct: authCodeType, hasToken: true, verified: true}, "", "", true},
	{"client credentials holding a token", saveOutcome{ct: clientCredentialsType, hasToken: true}, "", "", true},
}

var (
	apiKeyType            = &ent.ConnectionType{AuthKind: connectiontype.AuthKindAPI_KEY}
	authCodeType          = &ent.ConnectionType{AuthKind: connectiontype.AuthKindOAUTH2_AUTHORIZATION_CODE}
	clientCredentialsType = &ent.ConnectionType{AuthKind: connectiontype.AuthKindOAUTH2_CLIENT_CREDENTIALS}
)

func TestSaveStatus(t *testing.T) {
	for _, tc := range saveStatusCases {
		t.Run(tc.name, func(t *testing.T) {
			status, detail, keep := saveStatus(tc.o)
			if status != tc.status || detail != tc.detail || keep != tc.keep {
				t.Errorf("saveStatus = %s %q keep %v, want %s %q keep %v", status, detail, keep, tc.status, tc.detail, tc.keep)
			}
			was := &ent.Credential{Status: credential.StatusERROR}
			c := tc.o.change(was, "token:admin", true)
			wantTo := tc.status
			if tc.keep {
				wantTo = credential.StatusERROR
			}
			if c.to != wantTo || c.detail != tc.detail || !c.recompute || !c.orgValuesChanged {
				t.Errorf("change = %+v, want to %s, detail %q, recomputed", c, wantTo, tc.detail)
			}
		})
	}
}

// transitionCase is a flow run after setup, and what it leaves: the
// status and detail, the audit actions it writes, the status changes
// published once it commits, and the states of the credential's versions.
type transitionCase struct {
	name      string
	setup     func(t *testing.T, w *saveWorld)
	run       func(w *saveWorld) (*ent.Credential, error)
	code      string // the refusal's field code, if refused
	status    credential.Status
	detail    string
	audits    []string
	published []string
	versions  []credentialversion.State
}

func saveOn(conn func(w *saveWorld) *ent.Connection, in SaveCredentialInput, vals ...ValueInput) func(w *saveWorld) (*ent.Credential, error) {
	return func(w *saveWorld) (*ent.Credential, error) {
		in.ConnectionID, in.Values = conn(w).ID, vals
		c, _, err := w.s.SaveCredential(w.admin, in)
		return c, err
	}
}

func orgConn(w *saveWorld) *ent.Connection   { return w.conn }
func oauthConn(w *saveWorld) *ent.Connection { return w.oauthConn }

func testStored(w *saveWorld) (*ent.Credential, error) {
	c := w.db.Credential.Query().Where(credential.ConnectionID(w.conn.ID)).OnlyX(w.sys)
	c, _, err := w.s.TestCredential(w.admin, c.ID)
	return c, err
}

func rollbackTo(version int, verify bool) func(w *saveWorld) (*ent.Credential, error) {
	return func(w *saveWorld) (*ent.Credential, error) {
		c := w.db.Credential.Query().Where(credential.ConnectionID(w.conn.ID)).OnlyX(w.sys)
		c, _, err := w.s.RollbackCredential(w.admin, c.ID, version, verify)
		return c, err
	}
}

func seeded(t *testing.T, w *saveWorld) { w.seed(t) }

func failingTest(msg string) func(t *testing.T, w *saveWorld) {
	return func(t *testing.T, w *saveWorld) {
		w.seed(t)
		w.plugins.answer(false, msg, nil)
	}
}

var allValues = []ValueInput{value("host", "api.example.com"), value("apiKey", seedSecret)}

var transitionCases = []transitionCase{
	{name: "first save", run: saveOn(orgConn, SaveCredentialInput{}, allValues...),
		status: credential.StatusACTIVE, detail: "validated",
		audits:    []string{"credential.saved", "credential.version_saved", "credential.status_changed"},
		published: []string{"PENDING→ACTIVE"}, versions: []credentialversion.State{"LIVE"}},
	{name: "first save with verify is a test", run: saveOn(orgConn, SaveCredentialInput{Verify: true}, allValues...),
		status: credential.StatusACTIVE, detail: "tested: all good",
		audits:    []string{"credential.saved", "credential.version_saved", "credential.status_changed"},
		published: []string{"PENDING→ACTIVE"}, versions: []credentialversion.State{"LIVE"}},
	{name: "save with a passed test", setup: seeded,
		run:    saveOn(orgConn, SaveCredentialInput{Test: true}, value("host", "api2.example.com")),
		status: credential.StatusACTIVE, detail: "tested: all good",
		audits: []string{"credential.saved", "credential.version_saved"}, versions: []credentialversion.State{"SUPERSEDED", "LIVE"}},
	{name: "verify passed", setup: seeded,
		run:    saveOn(orgConn, SaveCredentialInput{Verify: true}, value("host", "api2.example.com")),
		status: credential.StatusACTIVE, detail: "verified: all good",
		audits: []string{"credential.version_saved", "credential.version_promoted"}, versions: []credentialversion.State{"SUPERSEDED", "LIVE"}},
	{name: "verify failed", setup: failingTest("denied"),
		run:  saveOn(orgConn, SaveCredentialInput{Verify: true}, value("host", "api2.example.com")),
		code: CodeTestFailed, status: credential.StatusACTIVE, detail: "validated",
		audits: []string{"credential.version_saved", "credential.version_rejected"}, versions: []credentialversion.State{"LIVE", "REJECTED"}},
	{name: "live test of a stored credential failed", setup: failingTest("denied for " + seedSecret), run: testStored,
		status: credential.StatusERROR, detail: "test failed: denied for [redacted]",
		audits: []string{"credential.tested", "credential.status_changed"}, published: []string{"ACTIVE→ERROR"},
		versions: []credentialversion.State{"LIVE"}},
	{name: "live test passed", setup: seeded, run: testStored,
		status: credential.StatusACTIVE, detail: "tested: all good",
		audits: []string{"credential.tested"}, versions: []credentialversion.State{"LIVE"}},
	{name: "rollback to a version that was live",
		setup: func(t *testing.T, w *saveWorld) {
			w.seed(t)
			if _, err := saveOn(orgConn, SaveCredentialInput{}, value("host", "api2.example.com"))(w); err != nil {
				t.Fatal(err)
			}
		},
		run:    rollbackTo(1, false),
		status: credential.StatusACTIVE, detail: "rolled back to the values of version 1, ACTIVE when last live (validated)",
		audits: []string{"credential.rolled_back"}, versions: []credentialversion.State{"SUPERSEDED", "SUPERSEDED", "LIVE"}},
	{name: "rollback with a failed test", setup: func(t *testing.T, w *saveWorld) {
		w.seed(t)
		if _, err := saveOn(orgConn, SaveCredentialInput{}, value("host", "api2.example.com"))(w); err != nil {
			t.Fatal(err)
		}
		w.plugins.answer(false, "denied", nil)
	},
		run: rollbackTo(1, true), code: CodeTestFailed, status: credential.StatusACTIVE, detail: "validated",
		versions: []credentialversion.State{"SUPERSEDED", "LIVE"}},
	{name: "OAuth 2.0 authorization code, first save",
		run:    saveOn(oauthConn, SaveCredentialInput{}, value("clientId", "client-1")),
		status: credential.StatusPENDING, detail: "waiting for OAuth 2.0 authorization",
		audits: []string{"credential.saved", "credential.version_saved"}, versions: []credentialversion.State{"LIVE"}},
}

// TestStatusTransitions runs each flow and checks the status it leaves,
// the audit entries it writes and what it publishes.
func TestStatusTransitions(t *testing.T) {
	for _, tc := range transitionCases {
		t.Run(tc.name, func(t *testing.T) {
			w := newSaveWorld(t)
			if tc.setup != nil {
				tc.setup(t, w)
			}
			n, pub := w.audits(), len(w.events.transitions())
			_, err := tc.run(w)
			checkFlowErr(t, tc.code, err)
			c := w.db.Credential.Query().Where(credential.Or(credential.ConnectionID(w.conn.ID),
				credential.ConnectionID(w.oauthConn.ID))).OnlyX(w.sys)
			if c.Status != tc.status || c.StatusDetail != tc.detail {
				t.Errorf("status %s %q, want %s %q", c.Status, c.StatusDetail, tc.status, tc.detail)
			}
			if got := w.auditsSince(n); !slices.Equal(got, tc.audits) {
				t.Errorf("audit actions %v, want %v", got, tc.audits)
			}
			if got := w.events.transitions()[pub:]; !slices.Equal(got, tc.published) {
				t.Errorf("published %v, want %v", got, tc.published)
			}
			if got := versionStates(w, c); !slices.Equal(got, tc.versions) {
				t.Errorf("versions %v, want %v", got, tc.versions)
			}
		})
	}
}

func checkFlowErr(t *testing.T, code string, err error) {
	t.Helper()
	var ve *ValidationError
	switch {
	case code == "" && err != nil:
		t.Fatalf("err = %v", err)
	case code != "" && (!errors.As(err, &ve) || ve.Fields[0].Code != code):
		t.Fatalf("err = %v, want %s", err, code)
	}
}

func versionStates(w *saveWorld, c *ent.Credential) []credentialversion.State {
	var out []credentialversion.State
	for _, v := range w.db.CredentialVersion.Query().Where(credentialversion.CredentialID(c.ID)).
		Order(ent.Asc(credentialversion.FieldVersion)).AllX(w.sys) {
		out = append(out, v.State)
	}
	return out
}

// TestTransitionOnlyAfterCommit checks that a status change of a save that
// fails to commit is neither published nor audited.
func TestTransitionOnlyAfterCommit(t *testing.T) {
	w := newSaveWorld(t)
	n := w.audits()
	err := w.s.withTx(w.admin, func(tx *ent.Tx) error {
		c := tx.Credential.Create().SetOrganizationID(w.org.ID).SetConnectionID(w.conn.ID).
			SetHolder(credential.HolderORGANIZATION).SetHolderKey("org").SaveX(w.admin)
		if err := w.s.transition(w.admin, tx, statusChange{cred: c, to: credential.StatusACTIVE, detail: "x", actor: "a"}); err != nil {
			return err
		}
		return errors.New("rolled back")
	})
	if err == nil {
		t.Fatal("the transaction committed")
	}
	if got := w.events.transitions(); len(got) != 0 {
		t.Errorf("published %v of a rolled-back change", got)
	}
	if got := w.auditsSince(n); len(got) != 0 {
		t.Errorf("audited %v of a rolled-back change", got)
	}
}
