// Package browsertest opens plugboard's GraphiQL page in a real Chromium
// (Debian's chromium, driven by playwright-core from this folder's
// package.json; install with `npm ci` here) and fails when the page loads
// anything from another host, breaks its Content-Security-Policy, logs an
// error, or cannot run a query.
//
// It skips when node, chromium or node_modules are missing, unless CI=true.
// PLUGBOARD_TEST_SCREENSHOTS=DIR keeps the screenshots in DIR.
package browsertest

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/plugboard/plugboard/internal/server/graphiql"
	"github.com/plugboard/plugboard/internal/server/servertest"
)

// browser returns node and chromium, or skips (fails in CI) without them.
func browser(t *testing.T) (node, chromium string) {
	t.Helper()
	missing := func(what string) {
		if os.Getenv("CI") == "true" {
			t.Fatalf("%s is missing (CI=true); .ci/run installs it", what)
		}
		t.Skipf("%s is missing; install chromium and run `npm ci` in internal/server/browsertest", what)
	}
	node, err := exec.LookPath("node")
	if err != nil {
		missing("node")
	}
	chromium = os.Getenv("CHROMIUM")
	if chromium == "" {
		chromium = "/usr/bin/chromium"
	}
	if _, err := os.Stat(chromium); err != nil {
		missing("chromium (" + chromium + ")")
	}
	if _, err := os.Stat(filepath.Join("node_modules", "playwright-core", "package.json")); err != nil {
		missing("node_modules/playwright-core")
	}
	return node, chromium
}

// openGraphiQL runs graphiql.mjs against url with args and fails t when it
// reports a problem.
func openGraphiQL(t *testing.T, url, shot string, args ...string) {
	t.Helper()
	node, chromium := browser(t)
	dir := os.Getenv("PLUGBOARD_TEST_SCREENSHOTS")
	if dir == "" {
		dir = t.TempDir()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	args = append([]string{"graphiql.mjs", "--url", url, "--screenshot", filepath.Join(dir, shot)}, args...)
	cmd := exec.CommandContext(ctx, node, args...)
	cmd.Env = append(os.Environ(), "CHROMIUM="+chromium)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("GraphiQL in Chromium: %v\n%s", err, out)
	}
	t.Logf("%s", out)
}

// Without --dev the page carries no token, says where one goes, loads
// everything from plugboard alone and runs a query once a token is in the
// headers editor.
func TestGraphiQLInBrowserWithToken(t *testing.T) {
	browser(t)
	env := servertest.Start(t, servertest.Config{Plugins: []string{"asana"}})
	placeholder := "{\n  \"Authorization\": \"" + graphiql.TokenHint + "\"\n}"
	openGraphiQL(t, env.URL+"/graphql", "graphiql.png",
		"--expect-hint", "--expect-headers", placeholder,
		"--token", env.AdminToken, "--expect-role", "ORG_ADMIN")
}

// With --dev the headers editor holds the local admin token and a query
// runs as it is.
func TestGraphiQLInBrowserDev(t *testing.T) {
	browser(t)
	env := servertest.Start(t, servertest.Config{Plugins: []string{"asana"}, Dev: true})
	filled := "{\n  \"Authorization\": \"Bearer " + env.App.DevToken + "\"\n}"
	openGraphiQL(t, env.URL+"/graphql", "graphiql-dev.png",
		"--expect-headers", filled, "--expect-role", "ORG_ADMIN")
}
