package server

import (
	"crypto/sha256"
	"encoding/base64"
	"net/http"
	"strings"
)

// iconCSP keeps a served SVG inert even when opened as a page: no script,
// nothing loaded, sandboxed.
const iconCSP = "default-src 'none'; style-src 'unsafe-inline'; sandbox"

// iconHandler serves GET /catalog/icons/{key}.svg: the SVG icon a plugin
// declared for its connection type. Icons are catalog data, public like
// the embed script, so a vendor's own pages may show them too.
func iconHandler(icons func(key string) ([]byte, bool)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		key, ok := strings.CutSuffix(r.PathValue("file"), ".svg")
		icon, found := icons(key)
		if !ok || !found {
			http.NotFound(w, r)
			return
		}
		sum := sha256.Sum256(icon)
		etag := `"` + base64.RawURLEncoding.EncodeToString(sum[:12]) + `"`
		h := w.Header()
		h.Set("Content-Type", "image/svg+xml")
		h.Set("Content-Security-Policy", iconCSP)
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Cross-Origin-Resource-Policy", "cross-origin")
		h.Set("Cache-Control", "public, max-age=3600")
		h.Set("ETag", etag)
		if r.Header.Get("If-None-Match") == etag {
			w.WriteHeader(http.StatusNotModified)
			return
		}
		_, _ = w.Write(icon)
	}
}
