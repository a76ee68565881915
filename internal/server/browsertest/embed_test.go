package browsertest

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/oauth2-proxy/mockoidc"

	"github.com/plugboard/plugboard/ent/credential"
	"github.com/plugboard/plugboard/internal/auth"
	"github.com/plugboard/plugboard/internal/server/servertest"
	"github.com/plugboard/plugboard/internal/server/wizardui"
)

// Canary values: the secret ones must never reach the browser or the log.
const (
	embedAsanaKey  = "2/1200embed7f3a9c/1201:EMBEDCANARYdeadbeef01"
	embedAsanaKey2 = "2/1200embed7f3a9d/1202:EMBEDCANARYdeadbeef02"
	hiddenBaseURL  = "https://asana-proxy.embed-canary.example/api"
)

// embedWorld is what the embedded wizard's test sets up: plugboard, a
// local OAuth 2.0 provider, a vendor's signing key and an instance of a
// customer with an Asana (API key) and a Slack (Connect) slot.
type embedWorld struct {
	env      *servertest.Env
	oidc     *mockoidc.MockOIDC
	priv     ed25519.PrivateKey
	instance string
	asana    string // the Asana connection
}

// artifactsDir is where screenshots go: $ARTIFACTS_DIR (CI keeps it),
// else $PLUGBOARD_TEST_SCREENSHOTS, else a directory of the test.
func artifactsDir(t *testing.T) string {
	for _, v := range []string{os.Getenv("ARTIFACTS_DIR"), os.Getenv("PLUGBOARD_TEST_SCREENSHOTS")} {
		if v != "" {
			dir := filepath.Join(v, "embed")
			if err := os.MkdirAll(dir, 0o755); err != nil {
				t.Fatal(err)
			}
			return dir
		}
	}
	return t.TempDir()
}

func (w *embedWorld) token(t *testing.T, ttl time.Duration) string {
	t.Helper()
	now := time.Now()
	tok := jwt.NewWithClaims(jwt.SigningMethodEdDSA, jwt.MapClaims{
		"iss": "default", "sub": "ada", "customer": "acme", "aud": "plugboard",
		"iat": now.Add(-time.Minute).Unix(), "exp": now.Add(ttl).Unix(),
	})
	tok.Header["kid"] = "web-1"
	s, err := tok.SignedString(w.priv)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func (w *embedWorld) admin(t *testing.T, q string, vars map[string]any) *servertest.Response {
	t.Helper()
	r := w.env.Do(t, q, vars)
	if len(r.Errors) > 0 {
		t.Fatalf("%s: %s", q, r.Raw)
	}
	return r
}

// newEmbedWorld seeds the vendor's setup through the GraphQL API.
func newEmbedWorld(t *testing.T) *embedWorld {
	t.Helper()
	w := &embedWorld{env: servertest.Start(t, servertest.Config{Plugins: []string{"asana", "slack"}})}
	var err error
	if w.oidc, err = mockoidc.Run(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = w.oidc.Shutdown() })
	// The provider's revocation endpoint: Disconnect calls it.
	revoke := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, _ *http.Request) { rw.WriteHeader(http.StatusOK) }))
	t.Cleanup(revoke.Close)
	_, w.priv, _ = ed25519.GenerateKey(rand.Reader)
	der, _ := x509.MarshalPKIXPublicKey(w.priv.Public())
	val := func(k, v string) map[string]any { return map[string]any{"key": k, "value": v} }
	w.admin(t, `mutation { updateOrganization(input: {autoCreateCustomers: true}) { organization { id } } }`, nil)
	w.admin(t, `mutation($in: RegisterSigningKeyInput!) { registerSigningKey(input: $in) { signingKey { id } } }`,
		map[string]any{"in": map[string]any{"kid": "web-1", "algorithm": "EdDSA",
			"publicKeyPEM": string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}))}})
	r := w.admin(t, `mutation($p: [CredentialValueInput!]!) { createConnectionTemplate(input: {typeKey: "slack.oauth2", name: "Our Slack app", presets: $p}) { template { id } } }`,
		map[string]any{"p": []any{
			val("clientId", w.oidc.ClientID), val("clientSecret", w.oidc.ClientSecret),
			val("authorizeUrl", w.oidc.AuthorizationEndpoint()), val("tokenUrl", w.oidc.TokenEndpoint()),
			val("revokeUrl", revoke.URL+"/revoke"), val("scopes", "openid"),
		}})
	tmpl := servertest.Str(r.Data, "createConnectionTemplate.template.id")
	r = w.admin(t, `mutation { createConnection(input: {typeKey: "asana.apiKey", stableKey: "asana", name: "Asana", scope: CUSTOMER}) { connection { id } } }`, nil)
	w.asana = servertest.Str(r.Data, "createConnection.connection.id")
	r = w.admin(t, `mutation($t: ID!, $a: ID!) { createIntegration(input: {key: "sync", name: "Slack sync", slots: [
		{key: "asana", label: "Asana", connectionID: $a}, {key: "slack", label: "Slack", typeKey: "slack.oauth2", templateID: $t}]}) {
		integration { id } } }`, map[string]any{"t": tmpl, "a": w.asana})
	integ := servertest.Str(r.Data, "createIntegration.integration.id")
	// The customer appears on its first request.
	cr := w.env.DoAs(t, w.token(t, time.Minute), `{ viewer { customer { id } } }`, nil)
	customer := servertest.Str(cr.Data, "viewer.customer.id")
	if customer == "" {
		t.Fatalf("the customer's first request: %s", cr.Raw)
	}
	r = w.admin(t, `mutation($i: ID!, $c: ID!) { createInstance(input: {integrationID: $i, customerID: $c, name: "Acme · Slack sync"}) { instance { id } } }`,
		map[string]any{"i": integ, "c": customer})
	w.instance = servertest.Str(r.Data, "createInstance.instance.id")
	return w
}

// hostPage is the vendor's page that embeds the wizard.
const hostPage = `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Acme CRM · Integrations</title>
<style>body{margin:0;font:15px/1.5 system-ui,sans-serif;background:#f3f4f7;color:#1d2330}header{background:#14213d;color:#fff;padding:12px 20px}main{max-width:880px;margin:20px auto;padding:0 12px}h1{font-size:1.3rem}</style>
<script src="%[1]s%[2]s" integrity="%[3]s" crossorigin="anonymous"></script>
</head>
<body>
<header><strong>Acme CRM</strong></header>
<main>
<h1>Slack sync</h1>
<div id="connections"></div>
</main>
<script>
window.__events = [];
var params = new URLSearchParams(location.search);
window.getToken = function () { return fetch("/token").then(function (r) { return r.text(); }); };
window.record = function (name, payload) { window.__events.push({ name: name, payload: payload, at: performance.now() }); };
var first = params.get("expired") ? fetch("/token?expired=1").then(function (r) { return r.text(); }) : Promise.resolve("");
first.then(function (tok) {
  window.wizard = Plugboard.mount(document.getElementById("connections"), {
    instanceID: %[4]q, token: tok, getToken: window.getToken,
    theme: { brand: "#0f766e", radius: "10px" }, locale: params.get("locale") || "en", onEvent: window.record
  });
});
</script>
</body>
</html>
`

// startHost serves the vendor's page and its token endpoint on localhost,
// another origin than plugboard's 127.0.0.1.
func startHost(t *testing.T, w *embedWorld) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	page := fmt.Sprintf(hostPage, w.env.URL, wizardui.ScriptPath, wizardui.Integrity(), w.instance)
	mux := http.NewServeMux()
	mux.HandleFunc("GET /app", func(rw http.ResponseWriter, _ *http.Request) {
		rw.Header().Set("Content-Type", "text/html; charset=utf-8")
		_, _ = rw.Write([]byte(page))
	})
	mux.HandleFunc("GET /token", func(rw http.ResponseWriter, r *http.Request) {
		ttl := 10 * time.Minute
		if r.URL.Query().Get("expired") != "" {
			ttl = -30 * time.Second
		}
		rw.Header().Set("Cache-Control", "no-store")
		_, _ = rw.Write([]byte(w.token(t, ttl)))
	})
	srv := &httptest.Server{Listener: ln, Config: &http.Server{Handler: mux}}
	srv.Start()
	t.Cleanup(srv.Close)
	return "http://localhost:" + fmt.Sprint(ln.Addr().(*net.TCPAddr).Port)
}

// The embedded wizard in a real Chromium on a vendor's page of another
// origin: events, a field error then a save, Connect, Reconnect and
// Disconnect through a local OAuth 2.0 provider, the single-connection
// dialog, setConnectionValues from the host page, a reload, German, axe,
// and screenshots at 1280 and 390 px.
func TestEmbeddedWizardInBrowser(t *testing.T) {
	node, chromium := browser(t)
	w := newEmbedWorld(t)
	host := startHost(t, w)
	dir := artifactsDir(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	// The client id is no secret (the authorize URL carries it), but the
	// wizard never shows it; the rest never reach the browser at all.
	forbid := []string{w.oidc.ClientSecret, embedAsanaKey, embedAsanaKey2, hiddenBaseURL, "authorizeUrl", "clientSecret"}
	args := []string{"embed.mjs", "--host", host, "--plugboard", w.env.URL, "--oauth", originOf(w.oidc.Issuer()),
		"--instance", w.instance, "--shots", dir, "--key", embedAsanaKey, "--key2", embedAsanaKey2, "--hidden", hiddenBaseURL,
		"--forbid", strings.Join(forbid, "\n")}
	cmd := exec.CommandContext(ctx, node, args...)
	cmd.Env = append(os.Environ(), "CHROMIUM="+chromium)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("the embedded wizard in Chromium: %v\n%s", err, out)
	}
	t.Logf("%s", out)
	t.Logf("screenshots: %s", dir)
	w.checkStored(t)
}

// checkStored checks what the browser run left in plugboard: the second
// key saved through setConnectionValues, no hidden input set by the
// customer, and no secret in the log.
func (w *embedWorld) checkStored(t *testing.T) {
	t.Helper()
	sys := auth.SystemContext(context.Background())
	creds, err := w.env.App.Store.Client.Credential.Query().Where(credential.HolderEQ(credential.HolderCUSTOMER)).All(sys)
	if err != nil || len(creds) != 1 {
		t.Fatalf("the customer's credentials: %v %v", creds, err)
	}
	c := creds[0]
	if c.Status != credential.StatusACTIVE || c.Inputs["baseUrl"] != "" {
		t.Errorf("the Asana credential: status %s, inputs %v", c.Status, c.Inputs)
	}
	logs := w.env.Logs.String()
	for _, secret := range []string{embedAsanaKey, embedAsanaKey2, w.oidc.ClientSecret} {
		if strings.Contains(logs, secret) {
			t.Errorf("the log holds the secret %q", secret)
		}
	}
}

// originOf is the scheme and host of raw.
func originOf(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return raw
	}
	return u.Scheme + "://" + u.Host
}

// TestEmbedTimeToInteractive measures what BENCHMARKS.md §18 reports: the
// embed script's size, gzip-compressed, and the time from navigating to a
// vendor's page to the wizard's ready event. It runs only when
// PLUGBOARD_EMBED_BENCH names the number of runs.
func TestEmbedTimeToInteractive(t *testing.T) {
	runs := os.Getenv("PLUGBOARD_EMBED_BENCH")
	if runs == "" {
		t.Skip("set PLUGBOARD_EMBED_BENCH=<runs> to measure")
	}
	node, chromium := browser(t)
	w := newEmbedWorld(t)
	host := startHost(t, w)
	for _, path := range []string{wizardui.ScriptPath, wizardui.FramePath} {
		raw, gz := gzipSize(t, w.env.URL+path)
		t.Logf("%s: %d bytes, %d gzip -9", path, raw, gz)
	}
	cmd := exec.Command(node, "embed.mjs", "--host", host, "--plugboard", w.env.URL, "--oauth", originOf(w.oidc.Issuer()),
		"--instance", w.instance, "--bench", runs)
	cmd.Env = append(os.Environ(), "CHROMIUM="+chromium)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	t.Logf("%s", out)
}

// gzipSize returns the size of the body at u, plain and gzip-compressed.
func gzipSize(t *testing.T, u string) (int, int) {
	t.Helper()
	res, err := http.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(res.Body)
	var buf bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&buf, gzip.BestCompression)
	_, _ = zw.Write(body)
	_ = zw.Close()
	return len(body), buf.Len()
}
