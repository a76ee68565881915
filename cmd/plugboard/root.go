package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/plugboard/plugboard/ent"
	"github.com/plugboard/plugboard/ent/organization"
	"github.com/plugboard/plugboard/internal/auth"
	"github.com/plugboard/plugboard/internal/connection/scopes"
	"github.com/plugboard/plugboard/internal/pluginhost"
	"github.com/plugboard/plugboard/internal/server"
	"github.com/plugboard/plugboard/internal/store"
)

// storeFlags are the flags every command that opens the store takes.
type storeFlags struct {
	dataDir     string
	databaseURL string
}

func (f *storeFlags) register(cmd *cobra.Command) {
	cmd.Flags().StringVar(&f.dataDir, "data-dir", envOr("PLUGBOARD_DATA_DIR", "./data"),
		"directory for the embedded SQLite database and the master key (env PLUGBOARD_DATA_DIR)")
	cmd.Flags().StringVar(&f.databaseURL, "database", os.Getenv("PLUGBOARD_DATABASE_URL"),
		"database URL: empty for SQLite in the data dir, or postgres://user:pass@host/db (env PLUGBOARD_DATABASE_URL)")
}

func (f *storeFlags) open(ctx context.Context) (*store.Store, error) {
	s, err := store.Open(ctx, f.databaseURL, f.dataDir, logger())
	if err != nil {
		return nil, err
	}
	if err := s.Migrate(ctx); err != nil {
		_ = s.Close()
		return nil, err
	}
	auth.InstallTenantFilter(s.Client, scopes.CustomerVisible())
	return s, nil
}

func envOr(key, def string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return def
}

func logger() *slog.Logger {
	level := slog.LevelInfo
	if os.Getenv("PLUGBOARD_LOG_LEVEL") == "debug" {
		level = slog.LevelDebug
	}
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
}

func defaultPluginDir(dataDir string) string { return filepath.Join(dataDir, "plugins") }

func newRootCmd() *cobra.Command {
	root := &cobra.Command{
		Use:           "plugboard",
		Short:         "plugboard: a self-hosted connections service for integration platforms",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.AddCommand(newServeCmd(), newMigrateCmd(), newPluginsCmd(), newTokensCmd())
	root.AddCommand(newKeysCmd(), newAgentCmd())
	return root
}

func newServeCmd() *cobra.Command {
	var sf storeFlags
	var addr, pluginDir, publicURL, otlpEndpoint string
	var dev, introspection, noAnswerCache bool
	var pprofAddr, forwardHost, replicaURL *string
	var webhooks *server.WebhookOptions
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run the plugboard server: GraphQL API, GraphiQL, OAuth 2.0 callback, health and metrics",
		Long: `Run the plugboard server.

It opens the database (embedded SQLite in the data dir unless --database names
PostgreSQL), migrates it, loads every pinned plugin of the plugin dir and
serves GraphQL at /graphql (GraphiQL in a browser), /healthz, /readyz and
/metrics. With --dev (local mode) a request without a token acts as the
default organization's admin and GraphiQL comes with an admin token filled in.`,
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			if pluginDir == "" {
				pluginDir = defaultPluginDir(sf.dataDir)
			}
			log := logger()
			if _, err := startPprof(*pprofAddr, log); err != nil {
				return fmt.Errorf("--pprof-addr: %w", err)
			}
			app, err := server.Open(ctx, server.Options{
				Addr: addr, DataDir: sf.dataDir, DatabaseURL: sf.databaseURL,
				PluginDir: pluginDir, Dev: dev, Logger: log, PublicURL: publicURL,
				NoIntrospection: !introspection, NoAnswerCache: noAnswerCache,
				MasterKey: os.Getenv("PLUGBOARD_MASTER_KEY"), EmbedOrigins: embedOrigins(cmd),
				OTLPEndpoint: otlpEndpoint, Webhooks: *webhooks, OnPremForwardHost: *forwardHost, ReplicaURL: *replicaURL,
			})
			if err != nil {
				return err
			}
			defer func() {
				app.Close()
				log.Info("plugboard stopped")
			}()
			return app.Serve(ctx, addr, announce(log, app, pluginDir, dev))
		},
	}
	sf.register(cmd)
	pprofAddr, webhooks, forwardHost, replicaURL = registerPprofFlag(cmd), registerWebhookFlags(cmd), registerOnPremFlag(cmd), registerReplicaFlag(cmd)
	cmd.Flags().StringVar(&addr, "addr", envOr("PLUGBOARD_ADDR", ":8080"), "address to listen on (env PLUGBOARD_ADDR)")
	cmd.Flags().StringVar(&pluginDir, "plugin-dir", os.Getenv("PLUGBOARD_PLUGIN_DIR"),
		"directory of plugin binaries and their lock file (default <data-dir>/plugins; env PLUGBOARD_PLUGIN_DIR)")
	cmd.Flags().StringVar(&publicURL, "public-url", os.Getenv("PLUGBOARD_PUBLIC_URL"),
		"URL where browsers and OAuth 2.0 providers reach this server; the OAuth 2.0 redirect URI is <public-url>/oauth2/callback (default http://localhost:<port>; env PLUGBOARD_PUBLIC_URL)")
	cmd.Flags().BoolVar(&introspection, "introspection", os.Getenv("PLUGBOARD_INTROSPECTION") != "false",
		"answer GraphQL schema introspection (GraphiQL needs it); turn off in production to show less (env PLUGBOARD_INTROSPECTION=false)")
	cmd.Flags().StringVar(&otlpEndpoint, "otlp-endpoint", "",
		"turn tracing on: export OpenTelemetry spans over OTLP/gRPC to this endpoint, e.g. http://localhost:4317 (default $OTEL_EXPORTER_OTLP_ENDPOINT; neither: tracing off)")
	cmd.Flags().BoolVar(&dev, "dev", os.Getenv("PLUGBOARD_DEV") == "1",
		"local mode: requests without a token act as the default organization's admin (env PLUGBOARD_DEV=1)")
	cmd.Flags().BoolVar(&noAnswerCache, "no-answer-cache", false,
		"compute every configWizard, credentials, connections, customers, instances and integrations answer afresh (for comparisons)")
	cmd.Flags().BoolVar(&noAnswerCache, "no-wizard-cache", false, "the former name of --no-answer-cache")
	return withEmbedFlag(cmd)
}

// registerOnPremFlag registers --onprem-forward-host.
func registerOnPremFlag(cmd *cobra.Command) *string {
	return cmd.Flags().String("onprem-forward-host", os.Getenv("PLUGBOARD_ONPREM_FORWARD_HOST"),
		"host the forwarders of on-prem credentials listen on; a runtime read of a bound credential names it, so the integration runtime must reach it (default 127.0.0.1; env PLUGBOARD_ONPREM_FORWARD_HOST)")
}

// registerReplicaFlag registers --replica-url.
func registerReplicaFlag(cmd *cobra.Command) *string {
	return cmd.Flags().String("replica-url", os.Getenv("PLUGBOARD_REPLICA_URL"),
		"with several replicas on one PostgreSQL: the URL where the other replicas reach this one's --addr, e.g. http://10.0.0.5:8080; an on-prem stream whose agent session another replica holds is relayed through that replica (env PLUGBOARD_REPLICA_URL)")
}

// announce is the serve command's line once it listens on a, with
// GraphiQL's address and the admin token in --dev.
func announce(log *slog.Logger, app *server.App, pluginDir string, dev bool) func(a net.Addr) {
	return func(a net.Addr) {
		log.Info("plugboard is serving", "addr", a.String(), "database", app.Store.Describe(),
			"plugin_dir", pluginDir, "dev", dev)
		if dev {
			host := "localhost"
			_, port, _ := net.SplitHostPort(a.String())
			fmt.Fprintf(os.Stderr, "\n  GraphiQL:    http://%s:%s/graphql\n  Admin token: %s\n\n", host, port, app.DevToken)
		}
	}
}

func newMigrateCmd() *cobra.Command {
	var sf storeFlags
	cmd := &cobra.Command{
		Use:   "migrate",
		Short: "Create or upgrade the database schema, then exit",
		RunE: func(cmd *cobra.Command, args []string) error {
			s, err := sf.open(cmd.Context())
			if err != nil {
				return err
			}
			defer s.Close()
			fmt.Fprintln(cmd.OutOrStdout(), "database migrated")
			return nil
		},
	}
	sf.register(cmd)
	return cmd
}

func newPluginsCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "plugins",
		Short: "Pin and list plugin binaries",
	}
	var dir, lock string
	lockPath := func() string {
		if lock == "" {
			return pluginhost.DefaultLockPath(dir)
		}
		return lock
	}
	pin, list := newPinCmd(&dir, lockPath), newListCmd(&dir, lockPath)
	for _, c := range []*cobra.Command{pin, list} {
		c.Flags().StringVar(&dir, "plugin-dir", envOr("PLUGBOARD_PLUGIN_DIR", defaultPluginDir(envOr("PLUGBOARD_DATA_DIR", "./data"))),
			"directory of plugin binaries (env PLUGBOARD_PLUGIN_DIR)")
		c.Flags().StringVar(&lock, "lock-file", "", "lock file (default <plugin-dir>/plugboard.lock)")
	}
	cmd.AddCommand(pin, list)
	return cmd
}

// newPinCmd is `plugins pin NAME...`: pins by name, and re-pins a changed
// binary only with --force.
func newPinCmd(dir *string, lockPath func() string) *cobra.Command {
	var force bool
	pin := &cobra.Command{
		Use:   "pin NAME...",
		Short: "Pin the named plugin binaries of the plugin dir by their SHA-256",
		Long: `Pin the named plugin binaries of the plugin dir: write their SHA-256 to the
lock file, keeping the other pins.

The server runs only pinned binaries whose hash matches the pin: pin after
installing or upgrading a plugin, then reload (the reloadPlugins mutation) or
restart the server. A binary whose hash changed since it was pinned (an
upgrade, or tampering) is re-pinned only with --force; without it the old and
new SHA-256 are shown and nothing is written.`,
		Example: "  plugboard plugins pin --plugin-dir ./data/plugins acme\n" +
			"  plugboard plugins pin --plugin-dir ./data/plugins --force asana slack",
		RunE: func(cmd *cobra.Command, names []string) error {
			path := lockPath()
			l, changes, err := pluginhost.PinNames(*dir, path, names, force)
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			for _, c := range changes {
				fmt.Fprintf(out, "re-pinned %s (--force):\n  was sha256 %s\n  now sha256 %s\n", c.Name, c.Old, c.New)
			}
			fmt.Fprintf(out, "pinned %d plugin(s) in %s; the lock holds:\n", len(names), path)
			printLock(out, l)
			return nil
		},
	}
	pin.Flags().BoolVar(&force, "force", false, "re-pin binaries whose SHA-256 changed since they were pinned")
	return pin
}

// newListCmd is `plugins list`: every pin and binary, and whether they match.
func newListCmd(dir *string, lockPath func() string) *cobra.Command {
	return &cobra.Command{
		Use:   "list",
		Short: "List the pinned plugins and whether their binaries match the pins",
		RunE: func(cmd *cobra.Command, args []string) error {
			path := lockPath()
			l, err := pluginhost.ReadLock(path)
			if err != nil {
				return err
			}
			fresh, err := pluginhost.Hashes(*dir, path)
			if err != nil {
				return err
			}
			w := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(w, "PLUGIN\tSHA256\tSTATE")
			names := map[string]bool{}
			for n := range l.Plugins {
				names[n] = true
			}
			for n := range fresh {
				names[n] = true
			}
			for _, n := range sortedNames(names) {
				pin, pinned := l.Plugins[n]
				sum, present := fresh[n]
				state := "pinned"
				switch {
				case !pinned:
					state = "NOT PINNED (will not run)"
					pin.SHA256 = sum
				case !present:
					state = "MISSING"
				case sum != pin.SHA256:
					state = "MODIFIED (will not run; pin --force if intended)"
				}
				fmt.Fprintf(w, "%s\t%s\t%s\n", n, short(pin.SHA256), state)
			}
			return w.Flush()
		},
	}
}

func printLock(out io.Writer, l *pluginhost.Lock) {
	names := map[string]bool{}
	for n := range l.Plugins {
		names[n] = true
	}
	for _, n := range sortedNames(names) {
		fmt.Fprintf(out, "  %-20s %s\n", n, short(l.Plugins[n].SHA256))
	}
}

func sortedNames(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for n := range m {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

func short(sum string) string {
	if len(sum) > 16 {
		return sum[:16] + "…"
	}
	return sum
}

func newTokensCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "tokens", Short: "Create API tokens"}
	var sf storeFlags
	var role, org, name string
	var createOrg bool
	create := &cobra.Command{
		Use:   "create",
		Short: "Create an API token and print it (shown once; stored hashed)",
		RunE: func(cmd *cobra.Command, args []string) error {
			var r auth.Role
			switch strings.ToLower(role) {
			case "admin", "org_admin":
				r = auth.RoleOrgAdmin
			case "runtime":
				r = auth.RoleRuntime
			default:
				return fmt.Errorf("--role is admin or runtime, not %q", role)
			}
			ctx := cmd.Context()
			s, err := sf.open(ctx)
			if err != nil {
				return err
			}
			defer s.Close()
			o, err := tokenOrganization(ctx, s.Client, org, createOrg)
			if err != nil {
				return err
			}
			tok, row, err := (&auth.Tokens{DB: s.Client}).Create(ctx, o.ID, r, name)
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.ErrOrStderr(), "created %s token %d for organization %s; send it as Authorization: Bearer <token>\n",
				strings.ToLower(string(row.Role)), row.ID, o.Slug)
			fmt.Fprintln(cmd.OutOrStdout(), tok)
			return nil
		},
	}
	sf.register(create)
	create.Flags().StringVar(&role, "role", "admin", "admin or runtime")
	create.Flags().StringVar(&org, "org", server.DefaultOrgSlug, "organization slug; an unknown one is refused unless --create-org")
	create.Flags().BoolVar(&createOrg, "create-org", false, "create the organization named by --org if it does not exist")
	create.Flags().StringVar(&name, "name", "", "a name to recognize the token by")
	cmd.AddCommand(create)
	return cmd
}

// tokenOrganization returns the organization a new token belongs to. An
// organization that does not exist is created only when asked (create),
// or for the default organization, which serve creates anyway: a typo in
// --org must not make a new, empty tenant.
func tokenOrganization(ctx context.Context, db *ent.Client, slug string, create bool) (*ent.Organization, error) {
	sys := auth.SystemContext(ctx)
	o, err := db.Organization.Query().Where(organization.Slug(slug)).Only(sys)
	switch {
	case err == nil:
		return o, nil
	case !ent.IsNotFound(err):
		return nil, fmt.Errorf("organization %s: %w", slug, err)
	case create || slug == server.DefaultOrgSlug:
		return server.EnsureOrganization(ctx, db, slug)
	}
	known, err := db.Organization.Query().Order(ent.Asc(organization.FieldSlug)).Limit(20).Select(organization.FieldSlug).Strings(sys)
	if err != nil {
		return nil, err
	}
	list := "none"
	if len(known) > 0 {
		list = strings.Join(known, ", ")
	}
	return nil, fmt.Errorf("no organization %q (organizations: %s); to create it, run the same command "+
		"with --create-org (bin/plugboard tokens create --org %s --create-org --role ...)", slug, list, slug)
}
