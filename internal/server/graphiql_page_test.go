package server_test

import (
	"io"
	"net/http"
	"regexp"
	"strings"
	"testing"

	"github.com/plugboard/plugboard/internal/server/servertest"
)

// graphiqlPage fetches /graphql as a browser does and, through the same
// server, every script and style it names.
func graphiqlPage(t *testing.T, env *servertest.Env) (page string, assets int) {
	t.Helper()
	fetch := func(path string, accept string) (*http.Response, string) {
		req, _ := http.NewRequest(http.MethodGet, env.URL+path, nil)
		req.Header.Set("Accept", accept)
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		return res, string(b)
	}
	res, page := fetch("/graphql", "text/html,application/xhtml+xml")
	if res.StatusCode != 200 || res.Header.Get("Content-Security-Policy") == "" {
		t.Fatalf("GraphiQL: %d, CSP %q", res.StatusCode, res.Header.Get("Content-Security-Policy"))
	}
	for _, m := range regexp.MustCompile(`(?:src|href)="(/graphql/assets/[^"]+)"`).FindAllStringSubmatch(page, -1) {
		res, body := fetch(strings.ReplaceAll(m[1], "&amp;", "&"), "*/*")
		if res.StatusCode != 200 || len(body) == 0 {
			t.Errorf("%s: %d, %d bytes", m[1], res.StatusCode, len(body))
		}
		assets++
	}
	if strings.Contains(page, "https://") || strings.Contains(page, "http://") {
		t.Errorf("the page names another host:\n%s", page)
	}
	return page, assets
}

// Without --dev the GraphiQL page carries no token and says where one goes.
func TestGraphiQLPageHasNoTokenWithoutDev(t *testing.T) {
	env := servertest.Start(t, servertest.Config{Plugins: []string{"asana"}})
	page, assets := graphiqlPage(t, env)
	if assets < 8 {
		t.Errorf("%d assets served from the binary, want every script and style", assets)
	}
	if strings.Contains(page, "pb_") || strings.Contains(page, env.AdminToken) {
		t.Errorf("the page holds a token:\n%s", page)
	}
	if !strings.Contains(page, "plugboard tokens create --role admin") || !strings.Contains(page, "Bearer &lt;your API token&gt;") {
		t.Errorf("the page does not say where the token goes:\n%s", page)
	}
}

// With --dev the page fills in the local admin token.
func TestGraphiQLPageFillsInDevToken(t *testing.T) {
	env := servertest.Start(t, servertest.Config{Plugins: []string{"asana"}, Dev: true})
	page, _ := graphiqlPage(t, env)
	if !strings.Contains(page, "Bearer "+env.App.DevToken) {
		t.Errorf("the dev token is not filled in:\n%s", page)
	}
}
