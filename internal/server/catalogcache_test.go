package server_test

import (
	"os"
	"testing"

	"github.com/plugboard/plugboard/internal/pluginhost"
	"github.com/plugboard/plugboard/internal/server/servertest"
)

// TestCatalogCache: cached catalog answers go only to authenticated
// viewers, and a catalog change shows at once.
func TestCatalogCache(t *testing.T) {
	env := servertest.Start(t, servertest.Config{Plugins: []string{"asana"}})
	const q = `{ connectionTypes { totalCount edges { node { key plugin { status } } } } }`
	for i := 0; i < 2; i++ { // the second answer comes from the cache
		r := env.Do(t, q, nil)
		mustOK(t, r)
		if servertest.Get(r.Data, "connectionTypes.totalCount") != float64(1) {
			t.Fatalf("types: %s", r.Raw)
		}
	}
	if r := env.DoAs(t, "", q, nil); r.Code() != "UNAUTHENTICATED" || r.Data["connectionTypes"] != nil {
		t.Fatalf("an unauthenticated caller got the cached catalog: %s", r.Raw)
	}
	// A plugin pinned and reloaded shows up in the next answer.
	b, err := os.ReadFile(servertest.Binaries(t) + "/slack")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(env.PluginDir+"/slack", b, 0o755); err != nil {
		t.Fatal(err)
	}
	if _, err := pluginhost.Pin(env.PluginDir, ""); err != nil {
		t.Fatal(err)
	}
	mustOK(t, env.Do(t, `mutation { reloadPlugins { plugins { name status } } }`, nil))
	r := env.Do(t, q, nil)
	mustOK(t, r)
	if servertest.Get(r.Data, "connectionTypes.totalCount") != float64(2) {
		t.Fatalf("after reloading a new plugin: %s", r.Raw)
	}
}
