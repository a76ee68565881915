package connection_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/plugboard/plugboard/ent"
	"github.com/plugboard/plugboard/ent/auditevent"
	entconn "github.com/plugboard/plugboard/ent/connection"
	"github.com/plugboard/plugboard/ent/connectiontype"
	"github.com/plugboard/plugboard/ent/credential"
	"github.com/plugboard/plugboard/ent/schema/schematype"
	"github.com/plugboard/plugboard/internal/auth"
	"github.com/plugboard/plugboard/internal/connection"
	"github.com/plugboard/plugboard/internal/connection/scopes"
	"github.com/plugboard/plugboard/internal/events"
	"github.com/plugboard/plugboard/internal/oauth"
	"github.com/plugboard/plugboard/internal/secrets"
	"github.com/plugboard/plugboard/internal/store"
	"github.com/plugboard/plugboard/plugins/sdk"
)

// canary marks every secret the test providers issue or are given: tokens,
// refresh tokens, codes, client secrets. No log line, error, page, audit
// message or status detail may ever contain it.
const canary = "CANARY"

// clock is a settable clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Now().UTC()} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// syncBuffer collects log output from many goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) Reset() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.b.Reset()
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// recorder is an events.Publisher that keeps what it gets.
type recorder struct {
	mu  sync.Mutex
	evs []events.StatusChange
}

func (r *recorder) Publish(_ context.Context, ev events.StatusChange) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.evs = append(r.evs, ev)
}

func (r *recorder) list() []events.StatusChange {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]events.StatusChange(nil), r.evs...)
}

// noPlugins stands in for the plugin host: every value is valid.
type noPlugins struct{}

func (noPlugins) Validate(context.Context, string, map[string]string) (*sdk.ValidateResponse, error) {
	return &sdk.ValidateResponse{}, nil
}

func (noPlugins) Test(context.Context, string, map[string]string, *sdk.Token) (*sdk.TestResponse, error) {
	return &sdk.TestResponse{OK: true, Message: "ok"}, nil
}

func (noPlugins) TestsThroughHost(string) bool { return false }

func (noPlugins) TestThroughHost(context.Context, string, map[string]string, *sdk.Token, http.RoundTripper) (*sdk.TestResponse, error) {
	return &sdk.TestResponse{OK: true, Message: "ok"}, nil
}

// env is one plugboard with an organization, on one database.
type env struct {
	st     *store.Store
	db     *ent.Client
	master secrets.MasterKey
	keys   *secrets.Keyring
	// svc owns the credentials; conns is the same service, for the save
	// pipeline's calls.
	conns  *connection.Service
	svc    *connection.Service
	clock  *clock
	logs   *syncBuffer
	events *recorder
	org    *ent.Organization
	admin  context.Context
	sys    context.Context
	// cb serves the callback handler at /oauth2/callback.
	cb *httptest.Server

	mu sync.Mutex
	// texts are errors and pages shown to someone, checked for secrets.
	texts []string
	// secrets are exact values to look for besides the canary.
	secrets []string
}

type envOptions struct {
	tokenTimeout time.Duration
	maxFailures  int
	concurrency  int
	// realClock uses time.Now (mockoidc checks tokens against it).
	realClock bool
	// quiet logs at INFO instead of DEBUG (benchmarks).
	quiet bool
}

const allowedRedirect = "https://app.example.com/oauth"

func newEnv(t testing.TB, st *store.Store, o envOptions) *env {
	t.Helper()
	auth.InstallTenantFilter(st.Client, scopes.CustomerVisible())
	master, err := secrets.GenerateMasterKey()
	if err != nil {
		t.Fatal(err)
	}
	e := &env{
		st: st, db: st.Client, clock: newClock(), logs: &syncBuffer{}, events: &recorder{},
		master: master, keys: secrets.NewKeyring(master, &store.KeyStore{DB: st.Client}),
		sys: auth.SystemContext(t.Context()),
	}
	// Make the first data key now, not inside a test's transaction.
	if _, err := e.keys.Encrypt(t.Context(), []byte("x"), []byte("warm-up")); err != nil {
		t.Fatal(err)
	}
	var handler atomic.Value
	e.cb = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/oauth2/callback" {
			http.NotFound(w, r)
			return
		}
		handler.Load().(http.Handler).ServeHTTP(w, r)
	}))
	t.Cleanup(e.cb.Close)
	e.svc = e.newService(o)
	e.conns = e.svc
	handler.Store(e.svc.OAuth.CallbackHandler(e.svc.CompleteAuthorization))

	e.org, err = e.db.Organization.Create().
		SetName("Acme").SetSlug("acme-" + randHex(4)).
		SetRedirectAllowlist([]string{allowedRedirect, "https://wizard.example.com/"}).
		Save(e.sys)
	if err != nil {
		t.Fatal(err)
	}
	e.admin = e.adminOf(t, e.org.ID)
	t.Cleanup(func() { e.checkNoSecrets(t) })
	return e
}

// newService returns a connection service and its token engine over e's
// store; a second one stands for a second replica.
func (e *env) newService(o envOptions) *connection.Service {
	return e.newServiceOn(o, e.st, e.keys)
}

// newServiceOn returns a connection service and its token engine over st.
func (e *env) newServiceOn(o envOptions, st *store.Store, keys *secrets.Keyring) *connection.Service {
	level := slog.LevelDebug
	if o.quiet {
		level = slog.LevelInfo
	}
	log := slog.New(slog.NewTextHandler(e.logs, &slog.HandlerOptions{Level: level}))
	cfg := oauth.Config{
		DB: st.Client, Keys: keys, Logger: log,
		CallbackURL:  e.cb.URL + "/oauth2/callback",
		TokenTimeout: o.tokenTimeout,
	}
	svc := &connection.Service{
		DB: st.Client, Plugins: noPlugins{}, Keys: keys, Log: log, Events: e.events,
		Refresh: connection.RefreshOptions{
			Dialect: st.Dialect, SQL: st.DB, MaxFailures: o.maxFailures, Concurrency: o.concurrency,
		},
	}
	if !o.realClock {
		cfg.Now = e.clock.Now
		svc.Now = e.clock.Now
	}
	svc.OAuth = oauth.New(cfg)
	return svc
}

func (e *env) adminOf(t testing.TB, orgID int) context.Context {
	return auth.NewContext(t.Context(), &auth.Viewer{Role: auth.RoleOrgAdmin, OrganizationID: orgID, Actor: "token:test"})
}

func (e *env) runtimeCtx(t testing.TB) context.Context {
	return auth.NewContext(t.Context(), &auth.Viewer{Role: auth.RoleRuntime, OrganizationID: e.org.ID, Actor: "token:runtime"})
}

// note keeps a text someone would see (an error, a page) for the secret
// scan.
func (e *env) note(s string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.texts = append(e.texts, s)
}

func (e *env) noteErr(err error) error {
	if err != nil {
		e.note(err.Error())
	}
	return err
}

func (e *env) addSecret(s ...string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, v := range s {
		if len(v) >= 6 {
			e.secrets = append(e.secrets, v)
		}
	}
}

// checkNoSecrets looks for the canary and every known secret in the logs,
// the errors and pages noted, the audit log, the status details and the
// published events.
func (e *env) checkNoSecrets(t testing.TB) {
	ctx := auth.SystemContext(context.Background())
	var texts []string
	texts = append(texts, e.logs.String())
	e.mu.Lock()
	texts = append(texts, e.texts...)
	known := append([]string(nil), e.secrets...)
	e.mu.Unlock()
	audits, err := e.db.AuditEvent.Query().All(ctx)
	if err != nil {
		t.Errorf("reading the audit log: %v", err)
	}
	for _, a := range audits {
		texts = append(texts, a.Action+" "+a.Message)
	}
	creds, err := e.db.Credential.Query().All(ctx)
	if err != nil {
		t.Errorf("reading credentials: %v", err)
	}
	for _, c := range creds {
		texts = append(texts, c.StatusDetail, c.GrantedScopes, fmt.Sprint(c.Inputs))
	}
	for _, ev := range e.events.list() {
		texts = append(texts, fmt.Sprintf("%+v", ev))
	}
	if os.Getenv("OAUTH_TEST_SHOW") != "" {
		t.Logf("texts scanned for secrets:\n%s", strings.Join(texts, "\n---\n"))
	}
	for i, s := range texts {
		if strings.Contains(s, canary) {
			t.Errorf("a secret leaked (text %d): %s", i, excerpt(s, canary))
		}
		for _, k := range known {
			if strings.Contains(s, k) {
				t.Errorf("a secret leaked (text %d): %s", i, excerpt(s, k))
			}
		}
	}
}

func excerpt(s, k string) string {
	i := strings.Index(s, k)
	lo, hi := max(0, i-200), min(len(s), i+len(k)+50)
	return s[lo:hi]
}

func randHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// slackLike is a connection type shaped like the bundled Slack plugin's:
// its URLs and scopes are inputs with defaults, the spec names them.
func (e *env) slackLike(t testing.TB, kind connectiontype.AuthKind, base string, spec func(*schematype.OAuth2Spec)) *ent.ConnectionType {
	t.Helper()
	key := "test" + randHex(3)
	p, err := e.db.Plugin.Create().SetName(key).SetKey(key).Save(e.sys)
	if err != nil {
		t.Fatal(err)
	}
	inputs := []schematype.Input{
		{Key: "authorizeUrl", Label: "Authorize URL", Type: "URL", Default: base + "/authorize"},
		{Key: "tokenUrl", Label: "Token URL", Type: "URL", Default: base + "/token"},
		{Key: "revokeUrl", Label: "Revoke URL", Type: "URL", Default: base + "/revoke"},
		{Key: "scopes", Label: "Scopes", Type: "STRING", Default: "chat:write,channels:read"},
		{Key: "clientId", Label: "Client ID", Type: "STRING", Required: true},
		{Key: "clientSecret", Label: "Client secret", Type: "PASSWORD", Secret: true, Required: true},
	}
	sp := &schematype.OAuth2Spec{
		AuthorizeURL: "{{#authorizeUrl}}", TokenURL: "{{#tokenUrl}}", RevokeURL: "{{#revokeUrl}}",
		Scopes: "{{#scopes}}", ScopeSeparator: ",", PKCEMethod: "S256", AuthStyle: "BODY",
		ClientIDInput: "clientId", ClientSecretInput: "clientSecret",
	}
	if kind == connectiontype.AuthKindOAUTH2_CLIENT_CREDENTIALS {
		sp.AuthorizeURL, sp.PKCEMethod = "", "NONE"
	}
	if spec != nil {
		spec(sp)
	}
	ct, err := e.db.ConnectionType.Create().
		SetKey(key + ".oauth2").SetPluginID(p.ID).SetLabel("Test " + key).
		SetAuthKind(kind).SetInputs(inputs).SetOauth2(sp).
		Save(e.sys)
	if err != nil {
		t.Fatal(err)
	}
	return ct
}

// connection makes an organization-wide connection of ct in org.
func (e *env) connection(t testing.TB, orgID int, ct *ent.ConnectionType, scope entconn.Scope) *ent.Connection {
	t.Helper()
	c, err := e.db.Connection.Create().
		SetOrganizationID(orgID).SetTypeID(ct.ID).
		SetStableKey("c" + randHex(4)).SetName("Connection").
		SetScope(scope).
		Save(e.sys)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// credential saves an organization-wide credential of a new connection of
// ct through the real save pipeline.
func (e *env) credential(t testing.TB, ct *ent.ConnectionType, values map[string]string) *ent.Credential {
	t.Helper()
	conn := e.connection(t, e.org.ID, ct, entconn.ScopeORGANIZATION_GLOBAL)
	var in []connection.ValueInput
	for k, v := range values {
		in = append(in, connection.ValueInput{Key: k, Value: &v})
	}
	cred, _, err := e.conns.SaveCredential(e.admin, connection.SaveCredentialInput{ConnectionID: conn.ID, Values: in})
	if err != nil {
		t.Fatal(err)
	}
	return cred
}

// get reads a credential.
func (e *env) get(t testing.TB, id int) *ent.Credential {
	t.Helper()
	c, err := e.db.Credential.Get(e.sys, id)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// audits lists the credential's audit entries as "action: message".
func (e *env) audits(t testing.TB, id int) []string {
	t.Helper()
	as, err := e.db.AuditEvent.Query().Where(auditevent.CredentialID(id)).
		Order(ent.Asc(auditevent.FieldID)).All(e.sys)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, a := range as {
		out = append(out, a.Action+": "+a.Message)
	}
	return out
}

func hasAudit(list []string, prefix string) bool {
	for _, a := range list {
		if strings.HasPrefix(a, prefix) {
			return true
		}
	}
	return false
}

// expire makes the credential's token expired and due.
func (e *env) expire(t testing.TB, id int) {
	t.Helper()
	past := e.clock.Now().Add(-time.Minute)
	if err := e.db.Credential.UpdateOneID(id).SetTokenExpiresAt(past).SetNextRefreshAt(past).Exec(e.sys); err != nil {
		t.Fatal(err)
	}
}

// noRedirect is a browser that stops at every redirect.
var noRedirect = &http.Client{
	CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	Timeout:       30 * time.Second,
}

// page is an HTTP answer to the browser.
type page struct {
	status   int
	location string
	header   http.Header
	body     string
}

func (e *env) browse(t testing.TB, u string) page {
	t.Helper()
	resp, err := noRedirect.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	p := page{status: resp.StatusCode, location: resp.Header.Get("Location"), header: resp.Header, body: string(b)}
	if strings.HasPrefix(u, e.cb.URL) {
		// plugboard's own answers; the provider's carry the code by design.
		e.note(p.location + "\n" + p.body)
	}
	return p
}

// connect runs Start and the browser's trip through the provider and
// returns the callback URL the provider sent the browser to.
func (e *env) connect(t testing.TB, in oauth.StartInput) string {
	t.Helper()
	authURL, err := e.svc.Authorize(e.admin, in)
	if err != nil {
		t.Fatalf("Start: %v", e.noteErr(err))
	}
	p := e.browse(t, authURL)
	if p.status != http.StatusFound || !strings.HasPrefix(p.location, e.cb.URL+"/oauth2/callback?") {
		t.Fatalf("the provider answered %d, location %q: %s", p.status, p.location, p.body)
	}
	return p.location
}

// provider is a local OAuth 2.0 provider: authorize (auto-approving), token
// (authorization code with PKCE, refresh, client credentials) and revoke.
type provider struct {
	srv          *httptest.Server
	clientID     string
	clientSecret string

	tokenCalls   atomic.Int64
	refreshCalls atomic.Int64
	ccCalls      atomic.Int64

	mu        sync.Mutex
	n         int
	codes     map[string]*issuedCode
	refresh   map[string]bool
	verifiers []string
	revokes   []url.Values

	// Knobs, set before use.
	expiresIn int
	// noRefreshOnRefresh answers refreshes without a new refresh token.
	noRefreshOnRefresh bool
	// onToken may answer a token request itself (returns true).
	onToken func(w http.ResponseWriter, r *http.Request, form url.Values) bool
	// revokeStatus is the revoke endpoint's status (default 200).
	revokeStatus int
}

type issuedCode struct {
	challenge, method, redirectURI string
}

func newProvider(t testing.TB) *provider {
	p := &provider{
		clientID:     "client-" + randHex(4),
		clientSecret: "cs_" + canary + "_" + randHex(8),
		codes:        map[string]*issuedCode{},
		refresh:      map[string]bool{},
		expiresIn:    3600,
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /authorize", p.authorize)
	mux.HandleFunc("POST /token", p.token)
	mux.HandleFunc("POST /revoke", p.revoke)
	p.srv = httptest.NewServer(mux)
	t.Cleanup(p.srv.Close)
	return p
}

func (p *provider) URL() string { return p.srv.URL }

func (p *provider) authorize(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	if q.Get("client_id") != p.clientID || q.Get("response_type") != "code" || q.Get("state") == "" {
		http.Error(w, "bad authorize request", http.StatusBadRequest)
		return
	}
	p.mu.Lock()
	p.n++
	code := fmt.Sprintf("code_%s_%d_%s", canary, p.n, randHex(4))
	p.codes[code] = &issuedCode{challenge: q.Get("code_challenge"), method: q.Get("code_challenge_method"), redirectURI: q.Get("redirect_uri")}
	p.mu.Unlock()
	http.Redirect(w, r, withParams(q.Get("redirect_uri"), url.Values{"code": {code}, "state": {q.Get("state")}}), http.StatusFound)
}

// tamperChallenges makes every pending code expect another PKCE verifier.
func (p *provider) tamperChallenges() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range p.codes {
		c.challenge = "tampered-" + c.challenge
	}
}

func withParams(raw string, params url.Values) string {
	u, _ := url.Parse(raw)
	q := u.Query()
	for k, v := range params {
		q[k] = v
	}
	u.RawQuery = q.Encode()
	return u.String()
}

func oauthError(w http.ResponseWriter, status int, code, desc string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]string{"error": code, "error_description": desc})
}

func (p *provider) clientOK(r *http.Request, form url.Values) bool {
	id, secret, ok := r.BasicAuth()
	if ok {
		id, _ = url.QueryUnescape(id)
		secret, _ = url.QueryUnescape(secret)
	} else {
		id, secret = form.Get("client_id"), form.Get("client_secret")
	}
	return id == p.clientID && secret == p.clientSecret
}

func (p *provider) token(w http.ResponseWriter, r *http.Request) {
	p.tokenCalls.Add(1)
	if err := r.ParseForm(); err != nil {
		oauthError(w, 400, "invalid_request", "unreadable form")
		return
	}
	form := r.PostForm
	switch form.Get("grant_type") {
	case "refresh_token":
		p.refreshCalls.Add(1)
	case "client_credentials":
		p.ccCalls.Add(1)
	}
	if p.onToken != nil && p.onToken(w, r, form) {
		return
	}
	if !p.clientOK(r, form) {
		oauthError(w, 401, "invalid_client", "unknown client "+form.Get("client_secret"))
		return
	}
	switch form.Get("grant_type") {
	case "authorization_code":
		p.mu.Lock()
		c := p.codes[form.Get("code")]
		delete(p.codes, form.Get("code"))
		p.verifiers = append(p.verifiers, form.Get("code_verifier"))
		p.mu.Unlock()
		if c == nil {
			oauthError(w, 400, "invalid_grant", "unknown code "+form.Get("code"))
			return
		}
		if c.redirectURI != form.Get("redirect_uri") {
			oauthError(w, 400, "invalid_grant", "redirect_uri mismatch")
			return
		}
		if c.challenge != "" {
			v := form.Get("code_verifier")
			want := v
			if c.method == "S256" {
				sum := sha256.Sum256([]byte(v))
				want = base64.RawURLEncoding.EncodeToString(sum[:])
			}
			if v == "" || want != c.challenge {
				oauthError(w, 400, "invalid_grant", "PKCE verification failed for verifier "+v+" and code "+form.Get("code"))
				return
			}
		}
		p.issue(w, true)
	case "refresh_token":
		rt := form.Get("refresh_token")
		p.mu.Lock()
		ok := p.refresh[rt]
		if ok && !p.noRefreshOnRefresh {
			delete(p.refresh, rt)
		}
		p.mu.Unlock()
		if !ok {
			oauthError(w, 400, "invalid_grant", "refresh token "+rt+" is not valid")
			return
		}
		p.issue(w, !p.noRefreshOnRefresh)
	case "client_credentials":
		p.issue(w, false)
	default:
		oauthError(w, 400, "unsupported_grant_type", "")
	}
}

func (p *provider) issue(w http.ResponseWriter, withRefresh bool) {
	p.mu.Lock()
	p.n++
	n := p.n
	body := map[string]any{
		"access_token": fmt.Sprintf("at_%s_%d_%s", canary, n, randHex(6)),
		"token_type":   "Bearer",
		"expires_in":   p.expiresIn,
		"team":         map[string]any{"id": "T123", "name": "Acme"},
		"bot_user_id":  "U42",
	}
	if withRefresh {
		rt := fmt.Sprintf("rt_%s_%d_%s", canary, n, randHex(6))
		p.refresh[rt] = true
		body["refresh_token"] = rt
	}
	p.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(body)
}

func (p *provider) revoke(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil || !p.clientOK(r, r.PostForm) {
		oauthError(w, 401, "invalid_client", "")
		return
	}
	p.mu.Lock()
	p.revokes = append(p.revokes, r.PostForm)
	status := p.revokeStatus
	p.mu.Unlock()
	if status != 0 {
		w.WriteHeader(status)
		return
	}
	w.WriteHeader(http.StatusOK)
}

func (p *provider) receivedVerifiers() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.verifiers...)
}

// values are the values of a credential of a slackLike type on p.
func (p *provider) values() map[string]string {
	return map[string]string{"clientId": p.clientID, "clientSecret": p.clientSecret}
}

// authorizedCredential makes a credential of a new slackLike type on p and
// authorizes it.
func (e *env) authorizedCredential(t testing.TB, p *provider) (*ent.Credential, *ent.ConnectionType) {
	t.Helper()
	ct := e.slackLike(t, connectiontype.AuthKindOAUTH2_AUTHORIZATION_CODE, p.URL(), nil)
	cred := e.credential(t, ct, p.values())
	cb := e.connect(t, oauth.StartInput{CredentialID: cred.ID})
	if pg := e.browse(t, cb); pg.status != http.StatusOK {
		t.Fatalf("callback answered %d: %s", pg.status, pg.body)
	}
	c := e.get(t, cred.ID)
	if c.Status != credential.StatusACTIVE {
		t.Fatalf("after the callback the credential is %s (%s)", c.Status, c.StatusDetail)
	}
	e.addSecret(p.receivedVerifiers()...)
	return c, ct
}

// addRefresh makes p accept a refresh token.
func (p *provider) addRefresh(rt string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.refresh[rt] = true
}

// seedDue makes n customer credentials of ct (a slackLike type on p),
// authorized with tokens p accepts and all due for a refresh, written
// straight to the database. It returns their ids.
func (e *env) seedDue(t testing.TB, p *provider, ct *ent.ConnectionType, n int) []int {
	t.Helper()
	ctx := e.sys
	conn := e.connection(t, e.org.ID, ct, entconn.ScopeCUSTOMER)
	ids := make([]int, 0, n)
	const chunk = 500
	for lo := 0; lo < n; lo += chunk {
		hi := min(n, lo+chunk)
		custs := make([]*ent.CustomerCreate, 0, hi-lo)
		for i := lo; i < hi; i++ {
			custs = append(custs, e.db.Customer.Create().SetOrganizationID(e.org.ID).
				SetExternalID(fmt.Sprintf("c%d-%d", conn.ID, i)).SetName("Customer"))
		}
		cs, err := e.db.Customer.CreateBulk(custs...).Save(ctx)
		if err != nil {
			t.Fatal(err)
		}
		creds := make([]*ent.CredentialCreate, 0, len(cs))
		for _, c := range cs {
			creds = append(creds, e.db.Credential.Create().SetOrganizationID(e.org.ID).
				SetConnectionID(conn.ID).SetHolder(credential.HolderCUSTOMER).SetCustomerID(c.ID).
				SetHolderKey(fmt.Sprintf("customer:%d", c.ID)).
				SetInputs(map[string]string{"clientId": p.clientID}).
				SetStatus(credential.StatusACTIVE))
		}
		saved, err := e.db.Credential.CreateBulk(creds...).Save(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range saved {
			ids = append(ids, c.ID)
		}
	}
	secretJSON, _ := json.Marshal(map[string]string{"clientSecret": p.clientSecret})
	tx, err := e.db.Tx(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for i, id := range ids {
		sealed, err := e.keys.Encrypt(ctx, secretJSON, []byte(fmt.Sprintf("plugboard/credential/%d/secrets", id)))
		if err == nil {
			err = tx.Client().Credential.UpdateOneID(id).SetSecrets(sealed).Exec(ctx)
		}
		rt := fmt.Sprintf("rt_%s_seed_%d_%s", canary, i, randHex(4))
		p.addRefresh(rt)
		if err == nil {
			err = e.svc.StoreToken(ctx, tx, id, ct, &oauth.Token{
				AccessToken: fmt.Sprintf("at_%s_seed_%d", canary, i), TokenType: "Bearer", RefreshToken: rt,
				Expiry: e.clock.Now().Add(5 * time.Minute), Scopes: []string{"chat:write"},
			})
		}
		if err != nil {
			_ = tx.Rollback()
			t.Fatal(err)
		}
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	e.makeDue(t, conn.ID)
	return ids
}

// makeDue makes every credential of the connection due for a refresh.
func (e *env) makeDue(t testing.TB, connID int) {
	t.Helper()
	if err := e.db.Credential.Update().Where(credential.ConnectionID(connID)).
		SetNextRefreshAt(e.clock.Now().Add(-time.Second)).Exec(e.sys); err != nil {
		t.Fatal(err)
	}
}
