package connection

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/plugboard/plugboard/ent"
	"github.com/plugboard/plugboard/ent/auditevent"
	"github.com/plugboard/plugboard/ent/connection"
	"github.com/plugboard/plugboard/ent/connectiontype"
	"github.com/plugboard/plugboard/ent/credential"
	"github.com/plugboard/plugboard/ent/credentialversion"
	"github.com/plugboard/plugboard/ent/schema/schematype"
	"github.com/plugboard/plugboard/internal/auth"
	"github.com/plugboard/plugboard/internal/connection/scopes"
	"github.com/plugboard/plugboard/internal/events"
	"github.com/plugboard/plugboard/internal/secrets"
	"github.com/plugboard/plugboard/internal/store"
	"github.com/plugboard/plugboard/internal/store/storetest"
	"github.com/plugboard/plugboard/plugins/sdk"
)

// seedSecret is the API key of every seeded credential: no error, audit
// message, status detail or event may quote it.
const seedSecret = "sk-SEED-0123456789"

// fakePlugins is the plugin catalog of the domain tests: Validate answers
// diags, Test answers test or fails with testErr; both keep the values
// they were given.
type fakePlugins struct {
	mu        sync.Mutex
	diags     []sdk.Diagnostic
	test      sdk.TestResponse
	testErr   error
	validated []map[string]string
	tested    []map[string]string
}

func (p *fakePlugins) Validate(_ context.Context, _ string, vals map[string]string) (*sdk.ValidateResponse, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.validated = append(p.validated, maps.Clone(vals))
	return &sdk.ValidateResponse{Diagnostics: p.diags}, nil
}

func (p *fakePlugins) Test(_ context.Context, _ string, vals map[string]string, _ *sdk.Token) (*sdk.TestResponse, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.tested = append(p.tested, maps.Clone(vals))
	if p.testErr != nil {
		return nil, p.testErr
	}
	r := p.test
	return &r, nil
}

// TestsThroughHost: the domain tests' plugins are all given the values.
func (p *fakePlugins) TestsThroughHost(string) bool { return false }

func (p *fakePlugins) TestThroughHost(ctx context.Context, key string, vals map[string]string, tok *sdk.Token, _ http.RoundTripper) (*sdk.TestResponse, error) {
	return p.Test(ctx, key, vals, tok)
}

// answer sets what the plugin's Test answers.
func (p *fakePlugins) answer(ok bool, msg string, err error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.test, p.testErr = sdk.TestResponse{OK: ok, Message: msg}, err
}

// published keeps the status changes the service publishes.
type published struct {
	mu  sync.Mutex
	evs []events.StatusChange
}

func (p *published) Publish(_ context.Context, ev events.StatusChange) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.evs = append(p.evs, ev)
}

func (p *published) transitions() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []string
	for _, ev := range p.evs {
		out = append(out, ev.From+"→"+ev.To)
	}
	return out
}

// saveWorld is one organization on a fresh SQLite store with an API-key
// connection type (host, port, a secret apiKey and a template baseUrl)
// on an organization-wide connection (conn), a customer's connection
// (custConn) and an organization-customer one (orgCustConn), and an
// OAuth 2.0 authorization-code connection (oauthConn).
type saveWorld struct {
	s                                      *Service
	db                                     *ent.Client
	plugins                                *fakePlugins
	events                                 *published
	now                                    time.Time
	org                                    *ent.Organization
	cust                                   *ent.Customer
	conn, custConn, orgCustConn, oauthConn *ent.Connection
	sys, admin, customer                   context.Context
}

var apiKeyInputs = []schematype.Input{
	{Key: "host", Label: "Host", Type: "STRING", Required: true},
	{Key: "port", Label: "Port", Type: "NUMBER"},
	{Key: "apiKey", Label: "API key", Type: "PASSWORD", Required: true, Secret: true},
	{Key: "baseUrl", Label: "Base URL", Type: "TEMPLATE", Template: "https://{{#host}}/api"},
}

func newSaveWorld(t *testing.T) *saveWorld {
	t.Helper()
	st := storetest.SQLite(t)
	auth.InstallTenantFilter(st.Client, scopes.CustomerVisible())
	master, err := secrets.GenerateMasterKey()
	if err != nil {
		t.Fatal(err)
	}
	keys := secrets.NewKeyring(master, &store.KeyStore{DB: st.Client})
	w := &saveWorld{db: st.Client, plugins: &fakePlugins{}, events: &published{},
		now: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC), sys: auth.SystemContext(context.Background())}
	w.plugins.answer(true, "all good", nil)
	w.s = &Service{DB: st.Client, Plugins: w.plugins, Keys: keys, Events: w.events, Now: func() time.Time { return w.now }}
	// The first data key is made now, not inside a save's transaction.
	if _, err := keys.Encrypt(w.sys, []byte("x"), []byte("warm-up")); err != nil {
		t.Fatal(err)
	}
	w.org = w.db.Organization.Create().SetName("Acme").SetSlug("acme").SaveX(w.sys)
	w.cust = w.db.Customer.Create().SetOrganizationID(w.org.ID).SetExternalID("c1").SetName("Customer").SaveX(w.sys)
	pl := w.db.Plugin.Create().SetName("demo").SaveX(w.sys)
	apiKey := w.db.ConnectionType.Create().SetKey("demo.apiKey").SetPluginID(pl.ID).SetLabel("Demo").
		SetAuthKind(connectiontype.AuthKindAPI_KEY).SetInputs(apiKeyInputs).SaveX(w.sys)
	oauthType := w.db.ConnectionType.Create().SetKey("demo.oauth").SetPluginID(pl.ID).SetLabel("Demo OAuth").
		SetAuthKind(connectiontype.AuthKindOAUTH2_AUTHORIZATION_CODE).
		SetInputs([]schematype.Input{{Key: "clientId", Label: "Client ID", Type: "STRING", Required: true}}).SaveX(w.sys)
	w.conn = w.connection(apiKey, connection.ScopeORGANIZATION_GLOBAL)
	w.custConn = w.connection(apiKey, connection.ScopeCUSTOMER)
	w.orgCustConn = w.connection(apiKey, connection.ScopeORGANIZATION_CUSTOMER)
	w.oauthConn = w.connection(oauthType, connection.ScopeORGANIZATION_GLOBAL)
	w.admin = auth.NewContext(t.Context(), &auth.Viewer{Role: auth.RoleOrgAdmin, OrganizationID: w.org.ID, Actor: "token:admin"})
	w.customer = auth.NewContext(t.Context(), &auth.Viewer{Role: auth.RoleCustomerUser,
		OrganizationID: w.org.ID, CustomerID: w.cust.ID, Actor: "customer:c1"})
	t.Cleanup(func() { w.checkNoSecret(t) })
	return w
}

func (w *saveWorld) connection(ct *ent.ConnectionType, scope connection.Scope) *ent.Connection {
	key := "c-" + strings.ToLower(string(scope)) + "-" + ct.Key
	return w.db.Connection.Create().SetOrganizationID(w.org.ID).SetTypeID(ct.ID).
		SetStableKey(key).SetName(key).SetScope(scope).SaveX(w.sys)
}

// value is a save's value of key.
func value(key, v string) ValueInput { return ValueInput{Key: key, Value: &v} }

// seed saves the organization-wide credential with every value set.
func (w *saveWorld) seed(t *testing.T) *ent.Credential {
	t.Helper()
	c, _, err := w.s.SaveCredential(w.admin, SaveCredentialInput{ConnectionID: w.conn.ID, Values: []ValueInput{
		value("host", "api.example.com"), value("port", "443"), value("apiKey", seedSecret),
	}})
	if err != nil {
		t.Fatalf("seeding: %v", err)
	}
	return c
}

// rows describes every stored credential, version and audit entry, to
// compare before and after a refused save. last_errors is left out: a
// refusal records it on purpose.
func (w *saveWorld) rows(t *testing.T) string {
	t.Helper()
	var b strings.Builder
	for _, c := range w.db.Credential.Query().Order(ent.Asc(credential.FieldID)).AllX(w.sys) {
		fmt.Fprintf(&b, "credential %d v%d %s %q inputs=%v secrets=%x meta=%v tested=%v token=%x\n",
			c.ID, c.Version, c.Status, c.StatusDetail, c.Inputs, c.Secrets, c.SecretMeta, c.LastTestedAt, c.Token)
	}
	for _, v := range w.db.CredentialVersion.Query().Order(ent.Asc(credentialversion.FieldID)).AllX(w.sys) {
		fmt.Fprintf(&b, "version %d/%d %s %q\n", v.CredentialID, v.Version, v.State, v.Message)
	}
	for _, a := range w.db.AuditEvent.Query().Order(ent.Asc(auditevent.FieldID)).AllX(w.sys) {
		fmt.Fprintf(&b, "audit %s %s\n", a.Action, a.Message)
	}
	return b.String()
}

// auditsSince lists the actions of the audit entries after the first n.
func (w *saveWorld) auditsSince(n int) []string {
	var out []string
	for _, a := range w.db.AuditEvent.Query().Order(ent.Asc(auditevent.FieldID)).Offset(n).AllX(w.sys) {
		out = append(out, a.Action)
	}
	return out
}

func (w *saveWorld) audits() int { return w.db.AuditEvent.Query().CountX(w.sys) }

// checkNoSecret looks for the seeded secret in what people see.
func (w *saveWorld) checkNoSecret(t *testing.T) {
	var texts []string
	for _, a := range w.db.AuditEvent.Query().AllX(w.sys) {
		texts = append(texts, a.Message)
	}
	for _, c := range w.db.Credential.Query().AllX(w.sys) {
		texts = append(texts, c.StatusDetail, fmt.Sprint(c.Inputs), fmt.Sprint(c.LastErrors))
	}
	w.events.mu.Lock()
	for _, ev := range w.events.evs {
		texts = append(texts, ev.Detail)
	}
	w.events.mu.Unlock()
	for _, s := range texts {
		if strings.Contains(s, seedSecret) {
			t.Errorf("the secret leaked: %q", s)
		}
	}
}

// fieldCodes lists err's field errors as "path:CODE".
func fieldCodes(err error) []string {
	var ve *ValidationError
	if !errors.As(err, &ve) {
		return nil
	}
	var out []string
	for _, f := range ve.Fields {
		out = append(out, strings.Join(f.Field, ".")+":"+f.Code)
	}
	slices.Sort(out)
	return out
}
