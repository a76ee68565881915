package oauth

import (
	"crypto/rand"
	"encoding/base64"
	"html/template"
	"net/http"
)

// pageData is what the callback page shows. Every field is escaped by
// html/template for where it appears (HTML text, attribute or script).
type pageData struct {
	Title   string
	Message string
	Nonce   string
	Popup   bool
	// Post is the message posted to window.opener in popup mode.
	Post         popupMessage
	TargetOrigin string
}

// popupMessage is posted to the window that opened the popup. It carries
// no secret, so "*" is an acceptable target when no redirect URL was given.
type popupMessage struct {
	Type         string `json:"type"`
	CredentialID string `json:"credentialId,omitempty"`
	Status       string `json:"status,omitempty"`
	Error        string `json:"error,omitempty"`
}

var page = template.Must(template.New("page").Parse(`<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<title>{{.Title}}</title>
<style nonce="{{.Nonce}}">
body { font-family: system-ui, sans-serif; max-width: 34rem; margin: 4rem auto; padding: 0 1rem; color: #1f2328; line-height: 1.5; }
h1 { font-size: 1.35rem; }
</style>
</head>
<body>
<h1>{{.Title}}</h1>
<p>{{.Message}}</p>
{{- if .Popup}}
<p>You can close this window.</p>
<script nonce="{{.Nonce}}">
(function () {
  var message = {{.Post}};
  var target = {{.TargetOrigin}};
  try { if (window.opener) { window.opener.postMessage(message, target); } } finally { window.close(); }
})();
</script>
{{- end}}
</body>
</html>
`))

// renderPage writes the callback page with a strict content security
// policy: only its own inline script and style run.
func renderPage(w http.ResponseWriter, status int, d pageData) {
	var b [18]byte
	_, _ = rand.Read(b[:])
	d.Nonce = base64.RawURLEncoding.EncodeToString(b[:])
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("Content-Security-Policy", "default-src 'none'; script-src 'nonce-"+d.Nonce+"'; style-src 'nonce-"+d.Nonce+"'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'")
	w.WriteHeader(status)
	_ = page.Execute(w, d)
}
