// Package servertest starts a real plugboard for tests: real plugin
// processes built from this repository, a real database (SQLite or
// PostgreSQL), the real HTTP handler on a loopback port, and a log buffer
// to look for leaked secrets in.
package servertest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/plugboard/plugboard/internal/egress"
	"github.com/plugboard/plugboard/internal/pluginhost"
	"github.com/plugboard/plugboard/internal/server"
	"github.com/plugboard/plugboard/internal/store"
	"github.com/plugboard/plugboard/internal/store/storetest"
	"github.com/plugboard/plugboard/internal/telemetry"
)

// Packages are the plugin packages built for tests, by binary name.
var Packages = map[string]string{
	"asana":    "./plugins/asana",
	"slack":    "./plugins/slack",
	"postgres": "./plugins/postgres",
	"shopify":  "./plugins/shopify",
	"msgraph":  "./plugins/msgraph",
	"faulty":   "./internal/testplugins/faulty",
	"proxied":  "./internal/testplugins/proxied",
}

var (
	buildOnce sync.Once
	buildDir  string
	buildErr  error
)

// moduleRoot is the directory of the root go.mod.
func moduleRoot() (string, error) {
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOMOD: %w", err)
	}
	return filepath.Dir(strings.TrimSpace(string(out))), nil
}

// Binaries builds every plugin of Packages once per test binary and returns
// the directory holding them.
func Binaries(t testing.TB) string {
	t.Helper()
	buildOnce.Do(func() {
		root, err := moduleRoot()
		if err != nil {
			buildErr = err
			return
		}
		buildDir, err = os.MkdirTemp("", "plugboard-plugins-")
		if err != nil {
			buildErr = err
			return
		}
		args := []string{"build", "-o", buildDir + string(filepath.Separator)}
		for _, pkg := range Packages {
			args = append(args, pkg)
		}
		cmd := exec.Command("go", args...)
		cmd.Dir = root
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("building plugins: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return buildDir
}

// PluginDir returns a fresh plugin dir holding copies of the named plugins
// (all of Packages when none are named), pinned.
func PluginDir(t testing.TB, names ...string) string {
	t.Helper()
	src := Binaries(t)
	if len(names) == 0 {
		for n := range Packages {
			names = append(names, n)
		}
	}
	dir := t.TempDir()
	for _, n := range names {
		b, err := os.ReadFile(filepath.Join(src, n))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, n), b, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := pluginhost.Pin(dir, ""); err != nil {
		t.Fatal(err)
	}
	return dir
}

// LogBuffer collects log output safely across goroutines.
type LogBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *LogBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

// String returns everything logged so far.
func (b *LogBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// Env is a running plugboard under test.
type Env struct {
	App        *server.App
	URL        string
	AdminToken string
	Logs       *LogBuffer
	PluginDir  string
	// Bodies holds every response body the Env's client received, to look
	// for leaked secrets in.
	bodiesMu sync.Mutex
	Bodies   []string
}

// Config tweaks Start.
type Config struct {
	// DatabaseURL is empty for a fresh SQLite file.
	DatabaseURL string
	// Plugins names the plugins to load; nil loads all of Packages.
	Plugins []string
	Dev     bool
	// Plugin host timeouts.
	CallTimeout time.Duration
	TestTimeout time.Duration
	// StoreOptions go to store.Open.
	StoreOptions []store.Option
	// SweepInterval runs the OAuth 2.0 refresh sweeper; zero leaves it off
	// so tests decide when tokens refresh.
	SweepInterval time.Duration
	// NoIntrospection turns GraphQL introspection off.
	NoIntrospection bool
	// MasterKey is the base64 master key; empty makes one per Env. Replicas
	// on one database need the same.
	MasterKey string
	// Tracing turns tracing on with the test's provider; nil leaves it off.
	Tracing *telemetry.Tracing
	// WebhookWorker runs the webhook delivery worker (off by default, so
	// other tests' statement counts see no background claims), polling
	// every 20ms and retrying after 100ms unless Webhooks says otherwise.
	WebhookWorker bool
	Webhooks      server.WebhookOptions
	// Now is the server's clock; nil is time.Now.
	Now func() time.Time
	// Listener, when set, is where the server listens instead of a new
	// loopback port (an on-prem agent in a network namespace reaches the
	// host side of its veth pair).
	Listener net.Listener
	// OnPremHeartbeat is the hub's ping interval; zero is its default.
	OnPremHeartbeat time.Duration
	// Replica gives the server its own URL as --replica-url, so replicas
	// on one database relay on-prem streams to each other.
	Replica bool
}

// Start starts plugboard with cfg, serving on a loopback port, and an admin
// token of the default organization. Everything stops at the end of t.
func Start(t testing.TB, cfg Config) *Env {
	t.Helper()
	logs := &LogBuffer{}
	var w io.Writer = logs
	if testing.Verbose() && os.Getenv("PLUGBOARD_TEST_LOGS") == "1" {
		w = io.MultiWriter(logs, os.Stderr)
	}
	log := slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelDebug}))
	pdir := PluginDir(t, cfg.Plugins...)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	// Listen first: the OAuth 2.0 redirect URI needs the address.
	ln := cfg.Listener
	if ln == nil {
		var err error
		if ln, err = net.Listen("tcp", "127.0.0.1:0"); err != nil {
			t.Fatal(err)
		}
	}
	sweep := cfg.SweepInterval
	if sweep == 0 {
		sweep = -1
	}
	app, err := server.Open(ctx, server.Options{
		DataDir: t.TempDir(), DatabaseURL: cfg.DatabaseURL, PluginDir: pdir, Dev: cfg.Dev,
		Logger: log, PluginCallTimeout: cfg.CallTimeout, PluginTestTimeout: cfg.TestTimeout,
		StoreOptions: cfg.StoreOptions, PublicURL: "http://" + ln.Addr().String(),
		SweepInterval: sweep, NoIntrospection: cfg.NoIntrospection, MasterKey: cfg.MasterKey,
		Tracing: cfg.Tracing,
		// Tests aim the proxy, tests through the host and webhooks at
		// upstreams on loopback.
		Egress:   egress.Policy{AllowLoopback: true},
		Webhooks: webhookOptions(cfg), Now: cfg.Now, OnPremHeartbeat: cfg.OnPremHeartbeat,
		ReplicaURL: replicaURL(cfg, ln),
	})
	if err != nil {
		_ = ln.Close()
		t.Fatalf("starting plugboard: %v", err)
	}
	srv := httptest.NewUnstartedServer(app.Handler)
	_ = srv.Listener.Close()
	srv.Listener = ln
	srv.Start()
	t.Cleanup(func() {
		srv.Close()
		app.Close()
	})
	org, err := server.EnsureOrganization(ctx, app.Store.Client, server.DefaultOrgSlug)
	if err != nil {
		t.Fatal(err)
	}
	tok, _, err := app.Tokens.Create(ctx, org.ID, "ORG_ADMIN", "test")
	if err != nil {
		t.Fatal(err)
	}
	return &Env{App: app, URL: srv.URL, AdminToken: tok, Logs: logs, PluginDir: pdir}
}

// replicaURL is the server's --replica-url: its own URL with cfg.Replica.
func replicaURL(cfg Config, ln net.Listener) string {
	if !cfg.Replica {
		return ""
	}
	return "http://" + ln.Addr().String()
}

// webhookOptions are the worker's options of cfg.
func webhookOptions(cfg Config) server.WebhookOptions {
	o := cfg.Webhooks
	if !cfg.WebhookWorker {
		o.Disabled = true
	}
	if o.Poll == 0 {
		o.Poll = 20 * time.Millisecond
	}
	if o.RetryBase == 0 {
		o.RetryBase = 100 * time.Millisecond
	}
	return o
}

// EachDB runs fn against plugboard on SQLite and on PostgreSQL (skipped
// without PLUGBOARD_TEST_POSTGRES_URL, failed in CI).
func EachDB(t *testing.T, cfg Config, fn func(t *testing.T, env *Env)) {
	t.Run("sqlite", func(t *testing.T) {
		c := cfg
		c.DatabaseURL = ""
		fn(t, Start(t, c))
	})
	t.Run("postgres", func(t *testing.T) {
		c := cfg
		c.DatabaseURL = storetest.PostgresURL(t)
		fn(t, Start(t, c))
	})
}

// Response is a GraphQL response.
type Response struct {
	Status int
	Data   map[string]any
	Errors []struct {
		Message    string         `json:"message"`
		Path       []any          `json:"path"`
		Extensions map[string]any `json:"extensions"`
	}
	Raw string
}

// Code returns the extensions.code of the first error, or "".
func (r *Response) Code() string {
	if len(r.Errors) == 0 {
		return ""
	}
	c, _ := r.Errors[0].Extensions["code"].(string)
	return c
}

// Do posts a GraphQL request with the admin token.
func (e *Env) Do(t testing.TB, query string, vars map[string]any) *Response {
	t.Helper()
	return e.DoAs(t, e.AdminToken, query, vars)
}

// DoAs posts a GraphQL request with token (none when empty).
func (e *Env) DoAs(t testing.TB, token, query string, vars map[string]any) *Response {
	t.Helper()
	body, _ := json.Marshal(map[string]any{"query": query, "variables": vars})
	return e.Post(t, token, body)
}

// Post posts a raw body to /graphql.
func (e *Env) Post(t testing.TB, token string, body []byte) *Response {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, e.URL+"/graphql", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("POST /graphql: %v", err)
	}
	defer res.Body.Close()
	raw, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	e.bodiesMu.Lock()
	e.Bodies = append(e.Bodies, string(raw))
	e.bodiesMu.Unlock()
	out := &Response{Status: res.StatusCode, Raw: string(raw)}
	if err := json.Unmarshal(raw, out); err != nil {
		t.Fatalf("response is not JSON (%d): %s", res.StatusCode, raw)
	}
	return out
}

// AllBodies returns every response body received so far.
func (e *Env) AllBodies() string {
	e.bodiesMu.Lock()
	defer e.bodiesMu.Unlock()
	return strings.Join(e.Bodies, "\n")
}

// PluginPID returns the pid of the running process of the named plugin
// binary, or 0.
func (e *Env) PluginPID(name string) int {
	path := filepath.Join(e.PluginDir, name)
	entries, _ := os.ReadDir("/proc")
	for _, d := range entries {
		pid, err := strconv.Atoi(d.Name())
		if err != nil {
			continue
		}
		exe, err := os.Readlink(filepath.Join("/proc", d.Name(), "exe"))
		if err == nil && exe == path {
			return pid
		}
	}
	return 0
}

// Get returns the value at a dotted path of data, e.g. "saveCredential.credential.id".
func Get(data map[string]any, path string) any {
	var cur any = data
	for _, p := range strings.Split(path, ".") {
		switch c := cur.(type) {
		case map[string]any:
			cur = c[p]
		case []any:
			i, err := strconv.Atoi(p)
			if err != nil || i >= len(c) {
				return nil
			}
			cur = c[i]
		default:
			return nil
		}
	}
	return cur
}

// Str returns the string at path, or "".
func Str(data map[string]any, path string) string {
	s, _ := Get(data, path).(string)
	return s
}
