package graphiql

import (
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"html"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"regexp"
	"strings"
	"testing"
)

func serve(t *testing.T, o Options) *httptest.Server {
	t.Helper()
	mux := http.NewServeMux()
	mux.Handle("GET /graphql", Handler(o))
	mux.Handle("GET "+AssetsPath, Assets())
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv
}

func get(t *testing.T, url string) (*http.Response, string) {
	t.Helper()
	res, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return res, string(b)
}

var (
	scriptTag = regexp.MustCompile(`<script\b[^>]*>`)
	linkTag   = regexp.MustCompile(`<link rel="stylesheet"[^>]*>`)
	attr      = func(tag, name string) string {
		m := regexp.MustCompile(`\b` + name + `="([^"]*)"`).FindStringSubmatch(tag)
		if m == nil {
			return ""
		}
		return html.UnescapeString(m[1])
	}
)

// Every script and style of the page comes from the server itself, and its
// integrity value is the SHA-384 of the bytes the server sends for it.
func TestPageIntegrityMatchesServedBytes(t *testing.T) {
	srv := serve(t, Options{})
	_, page := get(t, srv.URL+"/graphql")
	tags := append(scriptTag.FindAllString(page, -1), linkTag.FindAllString(page, -1)...)
	if len(tags) != len(scripts)+len(styles)+1 {
		t.Fatalf("%d script and style tags, want %d:\n%s", len(tags), len(scripts)+len(styles)+1, page)
	}
	for _, tag := range tags {
		src := attr(tag, "src") + attr(tag, "href")
		if !strings.HasPrefix(src, AssetsPath) {
			t.Errorf("%s: not served from %s", tag, AssetsPath)
			continue
		}
		res, body := get(t, srv.URL+src)
		sum := sha512.Sum384([]byte(body))
		want := "sha384-" + base64.StdEncoding.EncodeToString(sum[:])
		if got := attr(tag, "integrity"); got != want {
			t.Errorf("%s: integrity %q, served bytes hash to %q", src, got, want)
		}
		ctype := "text/javascript; charset=utf-8"
		if strings.Contains(src, ".css?") {
			ctype = "text/css; charset=utf-8"
		}
		if res.StatusCode != 200 || res.Header.Get("Content-Type") != ctype {
			t.Errorf("%s: %d %q, want 200 %q", src, res.StatusCode, res.Header.Get("Content-Type"), ctype)
		}
		if cc := res.Header.Get("Cache-Control"); !strings.Contains(cc, "max-age=31536000") {
			t.Errorf("%s: Cache-Control %q, want a long max-age", src, cc)
		}
	}
	for _, bad := range []string{"http://", "https://", "<style", " style=", "<script>"} {
		if strings.Contains(page, bad) {
			t.Errorf("the page holds %q:\n%s", bad, page)
		}
	}
}

// The hashes in assets/NOTICE.md are those of the embedded files.
func TestNoticeListsEmbeddedHashes(t *testing.T) {
	notice, err := os.ReadFile("assets/NOTICE.md")
	if err != nil {
		t.Fatal(err)
	}
	for name, a := range assets {
		if strings.HasPrefix(name, "plugboard-") {
			continue
		}
		s256 := sha256.Sum256(a.Body)
		row := "| `" + name + "` |"
		for _, want := range []string{row, "`sha256-" + base64.StdEncoding.EncodeToString(s256[:]) + "`", "`" + a.SRI + "`"} {
			if !strings.Contains(string(notice), want) {
				t.Errorf("NOTICE.md lacks %s for %s", want, name)
			}
		}
	}
}

// Without a token the page carries none: the headers editor starts with a
// placeholder and a line says where a token comes from.
func TestPageWithoutTokenShowsWhereItGoes(t *testing.T) {
	srv := serve(t, Options{})
	res, page := get(t, srv.URL+"/graphql")
	if !strings.Contains(page, "plugboard tokens create --role admin") || !strings.Contains(page, `id="plugboard-hint"`) {
		t.Errorf("no token hint:\n%s", page)
	}
	headers := attr(regexp.MustCompile(`<div id="graphiql"[^>]*>`).FindString(page), "data-headers")
	if headers != "{\n  \"Authorization\": \"Bearer <your API token>\"\n}" {
		t.Errorf("headers editor starts with %q", headers)
	}
	if strings.Contains(page, "data-headers-fixed") {
		t.Error("placeholder headers would override a stored token")
	}
	if res.Header.Get("Cache-Control") != "no-store" {
		t.Errorf("Cache-Control %q", res.Header.Get("Cache-Control"))
	}
}

func TestPageWithTokenFillsItIn(t *testing.T) {
	srv := serve(t, Options{Token: "pb_admin_local"})
	_, page := get(t, srv.URL+"/graphql")
	headers := attr(regexp.MustCompile(`<div id="graphiql"[^>]*>`).FindString(page), "data-headers")
	if headers != "{\n  \"Authorization\": \"Bearer pb_admin_local\"\n}" {
		t.Errorf("headers editor starts with %q", headers)
	}
	if strings.Contains(page, "plugboard-hint") {
		t.Error("token hint shown although the token is filled in")
	}
}

// The CSP allows only the server's own scripts; styles from the server and
// the one nonce the start-up script carries, new on every response.
func TestPageCSP(t *testing.T) {
	srv := serve(t, Options{})
	nonces := map[string]bool{}
	for range 2 {
		res, page := get(t, srv.URL+"/graphql")
		csp := res.Header.Get("Content-Security-Policy")
		var start string
		for _, tag := range scriptTag.FindAllString(page, -1) {
			if strings.Contains(tag, startScript) {
				start = tag
			}
		}
		nonce := attr(start, "nonce")
		if nonce == "" || nonces[nonce] {
			t.Fatalf("start-up script nonce %q (seen before: %v)", nonce, nonces[nonce])
		}
		nonces[nonce] = true
		for _, want := range []string{"default-src 'none'", "script-src 'self';",
			"style-src 'self' 'nonce-" + nonce + "';", "connect-src 'self';", "frame-ancestors 'none'"} {
			if !strings.Contains(csp, want) {
				t.Errorf("CSP %q lacks %q", csp, want)
			}
		}
	}
}

func TestAssetsCaching(t *testing.T) {
	srv := serve(t, Options{})
	a := Lookup("graphiql-4.1.2.min.js")
	res, _ := get(t, srv.URL+AssetsPath+a.Name+"?v=old")
	if res.StatusCode != 200 || res.Header.Get("Cache-Control") != "no-cache" || res.Header.Get("ETag") == "" {
		t.Errorf("stale version: %d %q %q", res.StatusCode, res.Header.Get("Cache-Control"), res.Header.Get("ETag"))
	}
	req, _ := http.NewRequest(http.MethodGet, srv.URL+a.URL(), nil)
	req.Header.Set("If-None-Match", res.Header.Get("ETag"))
	res2, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res2.Body.Close()
	if res2.StatusCode != http.StatusNotModified {
		t.Errorf("revalidation: %d, want 304", res2.StatusCode)
	}
	if res, _ := get(t, srv.URL+AssetsPath+"NOTICE.md"); res.StatusCode != 404 {
		t.Errorf("NOTICE.md: %d, want 404", res.StatusCode)
	}
}
