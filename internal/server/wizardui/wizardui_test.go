package wizardui

import (
	"crypto/sha512"
	"encoding/base64"
	"html"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func serve(h *Handler, path string, header http.Header) *httptest.ResponseRecorder {
	mux := http.NewServeMux()
	h.Register(mux)
	req := httptest.NewRequest(http.MethodGet, path, nil)
	for k, v := range header {
		req.Header[k] = v
	}
	rec := httptest.NewRecorder()
	mux.ServeHTTP(rec, req)
	return rec
}

// The frame may be embedded only by the configured origins; GET /wizard
// by none.
func TestFrameAncestors(t *testing.T) {
	for _, c := range []struct {
		origins []string
		path    string
		want    string
	}{
		{nil, FramePath, "frame-ancestors *;"},
		{[]string{"https://app.example.com", "https://admin.example.com"}, FramePath, "frame-ancestors https://app.example.com https://admin.example.com;"},
		{[]string{"https://app.example.com"}, "/wizard", "frame-ancestors 'none';"},
	} {
		rec := serve(New(Options{FrameAncestors: c.origins}), c.path, nil)
		csp := rec.Header().Get("Content-Security-Policy")
		if rec.Code != http.StatusOK || !strings.Contains(csp, c.want) || !strings.Contains(csp, "default-src 'none'") {
			t.Errorf("%s with %v: %d, CSP %q", c.path, c.origins, rec.Code, csp)
		}
	}
}

// The script is served as the integrity value says, to any origin, and
// revalidates by ETag.
func TestScriptIntegrity(t *testing.T) {
	rec := serve(New(Options{}), ScriptPath, nil)
	sum := sha512.Sum384(rec.Body.Bytes())
	if got := "sha384-" + base64.StdEncoding.EncodeToString(sum[:]); got != Integrity() {
		t.Errorf("integrity %s, served body hashes to %s", Integrity(), got)
	}
	if rec.Header().Get("Access-Control-Allow-Origin") != "*" || !strings.HasPrefix(rec.Header().Get("Content-Type"), "text/javascript") {
		t.Errorf("script headers: %v", rec.Header())
	}
	again := serve(New(Options{}), ScriptPath, http.Header{"If-None-Match": {rec.Header().Get("ETag")}})
	if again.Code != http.StatusNotModified {
		t.Errorf("revalidation: %d", again.Code)
	}
	man := serve(New(Options{}), IntegrityPath, nil)
	if !strings.Contains(man.Body.String(), Integrity()) || !strings.Contains(man.Body.String(), ScriptPath) {
		t.Errorf("integrity.json: %s", man.Body)
	}
	demo := serve(New(Options{}), DemoPath, nil)
	if !strings.Contains(html.UnescapeString(demo.Body.String()), `integrity="`+Integrity()+`"`) {
		t.Error("the demo page does not load the script with its integrity")
	}
}
