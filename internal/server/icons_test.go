package server_test

import (
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"

	"github.com/plugboard/plugboard/internal/server/servertest"
)

// Each bundled plugin ships an SVG icon; plugboard serves it from its own
// origin, inert (sandboxed, nothing loaded), as its types' iconURL says.
func TestBundledIconsServed(t *testing.T) {
	env := servertest.Start(t, servertest.Config{Plugins: []string{"asana", "slack", "postgres", "shopify", "msgraph"}})
	r := env.Do(t, `{ connectionTypes(first: 50) { edges { node { key iconURL } } } }`, nil)
	mustOK(t, r)
	edges, _ := servertest.Get(r.Data, "connectionTypes.edges").([]any)
	if len(edges) < 5 {
		t.Fatalf("connection types: %s", r.Raw)
	}
	for i := range edges {
		key := servertest.Str(r.Data, "connectionTypes.edges."+strconv.Itoa(i)+".node.key")
		icon := servertest.Str(r.Data, "connectionTypes.edges."+strconv.Itoa(i)+".node.iconURL")
		if icon != "/catalog/icons/"+key+".svg" {
			t.Errorf("%s: iconURL %q", key, icon)
			continue
		}
		res, err := http.Get(env.URL + icon)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if res.StatusCode != http.StatusOK || res.Header.Get("Content-Type") != "image/svg+xml" ||
			!strings.Contains(res.Header.Get("Content-Security-Policy"), "sandbox") || !strings.HasPrefix(string(body), "<svg") {
			t.Errorf("GET %s: %d %v %.40s", icon, res.StatusCode, res.Header, body)
		}
	}
	res, err := http.Get(env.URL + "/catalog/icons/nope.apiKey.svg")
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusNotFound {
		t.Errorf("an unknown icon: %d", res.StatusCode)
	}
}
