// Package graphiql serves GraphiQL, the in-browser GraphQL IDE on
// plugboard's /graphql page, entirely from the binary: the page, React,
// GraphiQL, its explorer plugin and plugboard's start-up script are
// embedded (versions and hashes in assets/NOTICE.md), so the page works on
// a host with no internet access and loads nothing from any other host.
//
// The page has no inline script or style, so its Content-Security-Policy
// allows scripts, styles and connections to the server's own origin only,
// and every script and style carries an integrity hash computed from the
// embedded bytes.
package graphiql

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"crypto/sha512"
	"embed"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"html/template"
	"net/http"
	"path"
	"strings"
	"time"
)

// AssetsPath is where Assets is mounted: the page refers to its scripts and
// styles under it.
const AssetsPath = "/graphql/assets/"

// CSP returns the page's Content-Security-Policy for one response's nonce.
// Scripts come from the server only. So do styles, but for one: the
// dialogs of GraphiQL (settings, short keys) add a <style> element that
// hides the page's scroll bar while they are open, and mark it with the
// nonce that plugboard-graphiql.js hands them; without it the browser
// blocks that style and reports a violation. Fonts and a few icons are
// data: URLs in GraphiQL's stylesheet. connect-src 'self' covers the
// page's own ws:/wss: origin for subscriptions.
func CSP(nonce string) string {
	return "default-src 'none'; script-src 'self'; style-src 'self' 'nonce-" + nonce + "'; " +
		"img-src 'self' data:; font-src 'self' data:; connect-src 'self'; " +
		"base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
}

// TokenHint is what the headers editor shows when the page carries no
// token.
const TokenHint = "Bearer <your API token>"

//go:embed assets/*.js assets/*.css page.html
var files embed.FS

// scripts and styles are the page's assets in load order; startScript,
// plugboard's own, runs last and carries the page's nonce.
const startScript = "plugboard-graphiql.js"

var (
	scripts = []string{
		"react-18.2.0.production.min.js",
		"react-dom-18.2.0.production.min.js",
		"graphiql-4.1.2.min.js",
		"graphiql-plugin-explorer-4.0.6.umd.js",
	}
	styles = []string{
		"graphiql-4.1.2.min.css",
		"graphiql-plugin-explorer-4.0.6.css",
		"plugboard-graphiql.css",
	}
)

// Asset is one embedded script or style.
type Asset struct {
	Name        string
	ContentType string
	Body        []byte
	// Version is a prefix of the body's SHA-256 in hex: the page asks for
	// ?v=Version, which makes the URL change whenever the bytes do.
	Version string
	// SRI is the body's integrity value, "sha384-<base64>".
	SRI string
}

// URL is the asset's address, versioned by its content.
func (a *Asset) URL() string { return AssetsPath + a.Name + "?v=" + a.Version }

var assets = loadAssets()

func loadAssets() map[string]*Asset {
	m := map[string]*Asset{}
	for _, name := range append(append([]string{startScript}, scripts...), styles...) {
		body, err := files.ReadFile("assets/" + name)
		if err != nil {
			panic(err) // the list above names a file that is not embedded
		}
		sum := sha256.Sum256(body)
		sri := sha512.Sum384(body)
		ctype := "text/javascript; charset=utf-8"
		if path.Ext(name) == ".css" {
			ctype = "text/css; charset=utf-8"
		}
		m[name] = &Asset{
			Name:        name,
			ContentType: ctype,
			Body:        body,
			Version:     hex.EncodeToString(sum[:8]),
			SRI:         "sha384-" + base64.StdEncoding.EncodeToString(sri[:]),
		}
	}
	return m
}

// Lookup returns the embedded asset of that name, or nil.
func Lookup(name string) *Asset { return assets[name] }

// Assets serves the embedded scripts and styles under AssetsPath. A request
// for the current version (?v=) may be cached for a year; any other is
// revalidated through its ETag.
func Assets() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		a := assets[strings.TrimPrefix(r.URL.Path, AssetsPath)]
		if a == nil {
			http.NotFound(w, r)
			return
		}
		h := w.Header()
		h.Set("Content-Type", a.ContentType)
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("ETag", `"`+a.Version+`"`)
		if r.URL.Query().Get("v") == a.Version {
			h.Set("Cache-Control", "public, max-age=31536000, immutable")
		} else {
			h.Set("Cache-Control", "no-cache")
		}
		http.ServeContent(w, r, a.Name, time.Time{}, bytes.NewReader(a.Body))
	})
}

// Options shape the page.
type Options struct {
	// Title is the page's title; empty means "plugboard".
	Title string
	// Endpoint is the GraphQL endpoint's path; empty means "/graphql".
	Endpoint string
	// Token, when set (the local mode only), is put into the headers
	// editor as "Authorization: Bearer <Token>". Without it the page
	// carries no token: the headers editor starts with TokenHint and a
	// line above GraphiQL says where a token comes from.
	Token string
}

var page = template.Must(template.ParseFS(files, "page.html"))

type pageData struct {
	Title, Endpoint, Headers string
	Nonce, TokenHint         string
	HeadersFixed, Hint       bool
	Scripts, Styles          []*Asset
	Start                    *Asset
}

// headersJSON is the headers editor's text: {"Authorization": bearer},
// indented as GraphiQL does, with < and > left as they are.
func headersJSON(bearer string) string {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(map[string]string{"Authorization": bearer}); err != nil {
		panic(err)
	}
	return strings.TrimSpace(buf.String())
}

// Handler serves the GraphiQL page.
func Handler(o Options) http.Handler {
	d := pageData{Title: o.Title, Endpoint: o.Endpoint, HeadersFixed: o.Token != "", Start: assets[startScript], TokenHint: TokenHint}
	if d.Title == "" {
		d.Title = "plugboard"
	}
	if d.Endpoint == "" {
		d.Endpoint = "/graphql"
	}
	bearer := TokenHint
	if o.Token != "" {
		bearer = "Bearer " + o.Token
	} else {
		d.Hint = true
	}
	d.Headers = headersJSON(bearer)
	for _, n := range scripts {
		d.Scripts = append(d.Scripts, assets[n])
	}
	for _, n := range styles {
		d.Styles = append(d.Styles, assets[n])
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		d := d
		d.Nonce = newNonce()
		var buf bytes.Buffer
		if err := page.Execute(&buf, d); err != nil {
			http.Error(w, "rendering GraphiQL failed", http.StatusInternalServerError)
			return
		}
		h := w.Header()
		h.Set("Content-Type", "text/html; charset=utf-8")
		h.Set("Content-Security-Policy", CSP(d.Nonce))
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer")
		// The local mode's page holds a token: keep it out of caches.
		h.Set("Cache-Control", "no-store")
		_, _ = w.Write(buf.Bytes())
	})
}

// newNonce returns a fresh CSP nonce: 16 random bytes in base64.
func newNonce() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b) // crypto/rand.Read does not fail
	return base64.StdEncoding.EncodeToString(b)
}
