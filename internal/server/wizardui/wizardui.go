// Package wizardui serves plugboard's config wizard to browsers: the
// standalone page (GET /wizard), the embedded frame (GET /embed/v1/frame),
// the embed script a vendor's page loads (GET /embed/v1/plugboard.js), its
// integrity hashes and a demo page of a vendor's app embedding the wizard.
//
// Every asset is compiled in: no page loads anything from another host.
// Pages carry a strict Content-Security-Policy that allows their own inline
// script and style by hash, requests to plugboard alone and images from
// plugboard alone.
package wizardui

import (
	"bytes"
	"crypto/sha256"
	"crypto/sha512"
	_ "embed" // the assets
	"encoding/base64"
	"encoding/json"
	"html/template"
	"net/http"
	"strings"

	"github.com/plugboard/plugboard/internal/connection/scopes"
)

// Version is the embed API's major version, the path segment of its URLs.
const Version = "v1"

// Paths of the embed API.
const (
	ScriptPath    = "/embed/" + Version + "/plugboard.js"
	FramePath     = "/embed/" + Version + "/frame"
	IntegrityPath = "/embed/" + Version + "/integrity.json"
	DemoPath      = "/embed/" + Version + "/demo"
)

var (
	//go:embed assets/wizard.js
	wizardJS string
	//go:embed assets/wizard.css
	wizardCSS string
	//go:embed assets/messages.json
	messagesJSON []byte
	//go:embed assets/plugboard.js
	embedJS []byte
	//go:embed assets/demo.html
	demoHTML string
	//go:embed assets/demo.js
	demoJS string
	//go:embed assets/demo.css
	demoCSS string
)

// Options configure the embedded frame.
type Options struct {
	// FrameAncestors are the origins allowed to embed the wizard frame
	// (CSP frame-ancestors), e.g. https://app.example.com; empty allows
	// any origin: the frame shows nothing until its host page hands it a
	// token.
	FrameAncestors []string
}

// Handler serves the wizard's pages and the embed script.
type Handler struct {
	frameCSP string
}

// New returns the wizard UI's handler.
func New(o Options) *Handler {
	ancestors := "*"
	if len(o.FrameAncestors) > 0 {
		ancestors = strings.Join(o.FrameAncestors, " ")
	}
	return &Handler{frameCSP: pageCSP("frame-ancestors " + ancestors)}
}

// Register adds the handler's routes to mux.
func (h *Handler) Register(mux *http.ServeMux) {
	mux.HandleFunc("GET /wizard", h.standalone)
	mux.HandleFunc("GET "+FramePath, h.frame)
	mux.HandleFunc("GET "+ScriptPath, script)
	mux.HandleFunc("GET "+IntegrityPath, integrity)
	mux.HandleFunc("GET "+DemoPath, demo)
}

// Integrity is the Subresource Integrity value of the embed script.
func Integrity() string { return scriptIntegrity }

var scriptIntegrity = func() string {
	sum := sha512.Sum384(embedJS)
	return "sha384-" + base64.StdEncoding.EncodeToString(sum[:])
}()

var scriptETag = func() string {
	sum := sha256.Sum256(embedJS)
	return `"` + base64.RawURLEncoding.EncodeToString(sum[:12]) + `"`
}()

// CSPHash is the CSP source expression allowing the inline text s.
func CSPHash(s string) string {
	sum := sha256.Sum256([]byte(s))
	return "'sha256-" + base64.StdEncoding.EncodeToString(sum[:]) + "'"
}

// pageCSP is the policy of a wizard page with the given frame-ancestors
// directive.
func pageCSP(ancestors string) string {
	return "default-src 'none'; script-src " + CSPHash(wizardJS) + "; style-src " + CSPHash(wizardCSS) +
		"; connect-src 'self'; img-src 'self'; form-action 'none'; " + ancestors + "; base-uri 'none'"
}

// StandaloneCSP is the policy of GET /wizard, which no page may frame.
var StandaloneCSP = pageCSP("frame-ancestors 'none'")

var page = template.Must(template.New("wizard").Parse(`<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<title>Connections · plugboard</title>
<style>{{.CSS}}</style>
</head>
<body>
<div id="pb-live" class="sr" role="status" aria-live="polite"></div>
<div id="pb-alert" class="sr" role="alert" aria-live="assertive"></div>
<main id="wizard"><p class="muted">Loading…</p></main>
<script type="application/json" id="pb-config">{{.Config}}</script>
<script type="application/json" id="pb-messages">{{.Messages}}</script>
<script>{{.JS}}</script>
</body>
</html>
`))

// pageConfig is what a page tells its script: the mode, the instance of a
// standalone page and which save field names a slot's holder per scope.
type pageConfig struct {
	Mode       string            `json:"mode"`
	Instance   string            `json:"instance,omitempty"`
	SaveHolder map[string]string `json:"saveHolder"`
}

func saveHolder() map[string]string {
	out := map[string]string{}
	for scope, field := range scopes.SaveHolderFields() {
		out[string(scope)] = field
	}
	return out
}

// pageHeaders are the headers of every page of the package: HTML under
// csp, never sniffed, cached or told where it was opened from.
func pageHeaders(w http.ResponseWriter, csp string) {
	hd := w.Header()
	hd.Set("Content-Type", "text/html; charset=utf-8")
	hd.Set("Content-Security-Policy", csp)
	hd.Set("X-Content-Type-Options", "nosniff")
	hd.Set("Referrer-Policy", "no-referrer")
	hd.Set("Cache-Control", "no-store")
}

// render writes a wizard page with cfg.
func render(w http.ResponseWriter, csp string, cfg pageConfig) {
	cfg.SaveHolder = saveHolder()
	b, err := json.Marshal(cfg)
	if err != nil {
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	pageHeaders(w, csp)
	var buf bytes.Buffer
	// json.Marshal escapes <, > and &, so the data cannot end its <script>.
	if err := page.Execute(&buf, struct {
		CSS                  template.CSS
		JS, Config, Messages template.JS
	}{template.CSS(wizardCSS), template.JS(wizardJS), template.JS(b), template.JS(compactMessages)}); err != nil {
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	_, _ = w.Write(buf.Bytes())
}

var compactMessages = func() string {
	var buf bytes.Buffer
	if err := json.Compact(&buf, messagesJSON); err != nil {
		panic("wizardui: assets/messages.json: " + err.Error())
	}
	var out bytes.Buffer
	json.HTMLEscape(&out, buf.Bytes())
	return out.String()
}()

// standalone serves GET /wizard?instance=<id>#token=<token>.
func (h *Handler) standalone(w http.ResponseWriter, r *http.Request) {
	instance := r.URL.Query().Get("instance")
	if len(instance) > 64 {
		instance = ""
	}
	w.Header().Set("X-Frame-Options", "DENY")
	render(w, StandaloneCSP, pageConfig{Mode: "standalone", Instance: instance})
}

// frame serves the embedded wizard; its host page sends the instance and
// the token by postMessage.
func (h *Handler) frame(w http.ResponseWriter, _ *http.Request) {
	render(w, h.frameCSP, pageConfig{Mode: "embedded"})
}

// script serves the embed script to any page: it is public and
// versioned; Integrity gives its hash for the page's integrity attribute.
func script(w http.ResponseWriter, r *http.Request) {
	hd := w.Header()
	hd.Set("Content-Type", "text/javascript; charset=utf-8")
	hd.Set("X-Content-Type-Options", "nosniff")
	hd.Set("Access-Control-Allow-Origin", "*") // for integrity checks (crossorigin="anonymous")
	hd.Set("Cross-Origin-Resource-Policy", "cross-origin")
	hd.Set("Cache-Control", "public, max-age=300")
	hd.Set("ETag", scriptETag)
	hd.Set("X-Plugboard-Integrity", scriptIntegrity)
	if r.Header.Get("If-None-Match") == scriptETag {
		w.WriteHeader(http.StatusNotModified)
		return
	}
	_, _ = w.Write(embedJS)
}

// integrity serves the embed script's URL path and integrity hash.
func integrity(w http.ResponseWriter, _ *http.Request) {
	hd := w.Header()
	hd.Set("Content-Type", "application/json")
	hd.Set("Access-Control-Allow-Origin", "*")
	hd.Set("Cache-Control", "no-cache")
	_ = json.NewEncoder(w).Encode(map[string]string{"script": ScriptPath, "integrity": scriptIntegrity, "version": Version})
}

var demoPage = template.Must(template.New("demo").Parse(demoHTML))

// demoCSP lets the demo page load the embed script from plugboard and
// frame the wizard, and nothing else.
var demoCSP = "default-src 'none'; script-src 'self' " + CSPHash(demoJS) + "; style-src " + CSPHash(demoCSS) +
	"; frame-src 'self'; connect-src 'none'; img-src 'self'; form-action 'none'; base-uri 'none'; frame-ancestors 'none'"

// demo serves a vendor's app embedding the wizard: paste an instance id
// and a customer token, or pass them as #instance=…&token=….
func demo(w http.ResponseWriter, _ *http.Request) {
	pageHeaders(w, demoCSP)
	_ = demoPage.Execute(w, struct {
		Script, Integrity string
		CSS               template.CSS
		JS                template.JS
	}{ScriptPath, scriptIntegrity, template.CSS(demoCSS), template.JS(demoJS)})
}
