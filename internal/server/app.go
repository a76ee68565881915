package server

import (
	"context"

	"entgo.io/ent/dialect"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"time"

	"github.com/plugboard/plugboard/ent"
	"github.com/plugboard/plugboard/ent/organization"
	"github.com/plugboard/plugboard/graph"
	"github.com/plugboard/plugboard/internal/auth"
	"github.com/plugboard/plugboard/internal/connection"
	"github.com/plugboard/plugboard/internal/connection/scopes"
	"github.com/plugboard/plugboard/internal/egress"
	"github.com/plugboard/plugboard/internal/events"
	"github.com/plugboard/plugboard/internal/oauth"
	"github.com/plugboard/plugboard/internal/onprem"
	"github.com/plugboard/plugboard/internal/pluginhost"
	"github.com/plugboard/plugboard/internal/secrets"
	"github.com/plugboard/plugboard/internal/secrets/sealed"
	"github.com/plugboard/plugboard/internal/store"
	"github.com/plugboard/plugboard/internal/telemetry"
	"github.com/plugboard/plugboard/internal/webhooks"
	"github.com/plugboard/plugboard/plugins/sdk"
)

// DefaultOrgSlug is the organization the command line and the local mode
// act on unless told otherwise.
const DefaultOrgSlug = "default"

// Options configure a plugboard server.
type Options struct {
	Addr        string
	DataDir     string
	DatabaseURL string
	PluginDir   string
	// MasterKey is the base64 master key; empty means the key file
	// <DataDir>/master.key, created on first run.
	MasterKey string
	Dev       bool
	Logger    *slog.Logger
	// Plugin host timeouts; zero takes the host's defaults.
	PluginCallTimeout time.Duration
	PluginTestTimeout time.Duration
	// StoreOptions are passed to store.Open (a statement counter, say).
	StoreOptions []store.Option
	// PublicURL is where browsers and OAuth 2.0 providers reach this
	// server, e.g. https://plugboard.example.com; the OAuth 2.0 redirect URI
	// is PublicURL + "/oauth2/callback". Empty means http://localhost:<port
	// of Addr>.
	PublicURL string
	// SweepInterval is how often tokens entering the refresh margin are
	// refreshed (default 1m; negative disables the sweeper).
	SweepInterval time.Duration
	// NoIntrospection turns GraphQL schema introspection off.
	NoIntrospection bool
	// NoCatalogCache turns off the cache of catalog-only query answers
	// (for measuring what it saves).
	NoCatalogCache bool
	// NoAnswerCache turns off the cache of whole query answers (for
	// measuring what it saves).
	NoAnswerCache bool
	// NoRowCache makes every runtime read and proxied call read its
	// credential and connection rows from the store (for measuring what
	// the cache of them saves).
	NoRowCache bool
	// OAuthHTTPClient makes the calls to OAuth 2.0 providers (nil: a client
	// with the engine's default timeouts).
	OAuthHTTPClient *http.Client
	// OTLPEndpoint turns tracing on: spans are exported over OTLP/gRPC
	// there (empty: $OTEL_EXPORTER_OTLP_ENDPOINT; neither: tracing off).
	OTLPEndpoint string
	// Tracing, if set, is used instead of a provider built from
	// OTLPEndpoint (tests and benchmarks bring their own exporter).
	Tracing *telemetry.Tracing
	// Egress is the address policy of calls to tenant-chosen hosts (the
	// proxy, tests through the host, webhooks); Dev adds AllowLoopback.
	// An organization's allow_private_networks widens it per call.
	Egress egress.Policy
	// Webhooks configure the webhook delivery worker.
	Webhooks WebhookOptions
	// Now is the clock of the domain and the webhook worker; nil means
	// time.Now (tests move it).
	Now func() time.Time
	// OnPremForwardHost is the host the on-prem forwarders listen on
	// (the runtime of a bound credential connects there); empty is
	// 127.0.0.1.
	OnPremForwardHost string
	// OnPremHeartbeat is how often the hub pings each agent session
	// (zero: the hub's default, 15s).
	OnPremHeartbeat time.Duration
	// ReplicaURL is where the other replicas reach this one (its HTTP
	// listener, e.g. http://10.0.0.5:8080). With it, a replica asked for
	// an on-prem stream whose agent session another replica holds relays
	// the stream through that replica; without it, streams go over this
	// replica's own sessions only.
	ReplicaURL string
	// EmbedOrigins are the origins whose pages may embed the wizard
	// (CSP frame-ancestors of /embed/v1/frame); empty allows any.
	EmbedOrigins []string
}

// App is a running plugboard: its store, plugin host, services and HTTP
// handler.
type App struct {
	Options Options
	Store   *store.Store
	Host    *pluginhost.Host
	Keys    *secrets.Keyring
	Service *connection.Service
	Tokens  *auth.Tokens
	// Hub holds the on-prem agents' sessions, served at /agent/v1/connect.
	Hub      *onprem.Hub
	Handler  http.Handler
	Metrics  *Metrics
	DevToken string
	Log      *slog.Logger
	Events   *events.Bus
	OAuth    *oauth.Service
	// Tracing is nil when tracing is off.
	Tracing *telemetry.Tracing
	// Webhooks delivers the webhook outbox; nil when disabled.
	Webhooks *webhooks.Worker

	// Embedding verifies CUSTOMER_USER embedding tokens.
	Embedding *auth.Embedding
	// Generations count the changes cached query answers follow;
	// nil with NoAnswerCache.
	Generations *Generations

	stopEvents context.CancelFunc
	stopSweep  context.CancelFunc

	migrated atomic.Bool
}

// Open opens the store, migrates it, loads the master key and the pinned
// plugins, and builds the handler. Close releases everything.
func Open(ctx context.Context, o Options) (_ *App, err error) {
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Dev {
		o.Egress.AllowLoopback = true
	}
	a := &App{Options: o, Log: o.Logger, Metrics: NewMetrics()}
	defer func() {
		if err != nil {
			a.Close()
		}
	}()
	if err = a.openTracing(ctx); err != nil {
		return nil, err
	}
	if err = a.openStore(ctx); err != nil {
		return nil, err
	}
	if err = a.openKeys(ctx); err != nil {
		return nil, err
	}
	catalog := &connection.Catalog{DB: a.Store.Client}
	a.Generations = NewGenerations(catalog.Version)
	a.Store.Client.Use(a.Generations.Hook())
	if err = a.startPlugins(ctx, catalog); err != nil {
		return nil, err
	}
	if err = a.openEvents(); err != nil {
		return nil, err
	}
	a.Generations.Share(a.Events)
	a.buildServices(catalog)
	if err = a.Service.ResetAgentStatuses(ctx); err != nil {
		return nil, fmt.Errorf("on-prem resources: resetting their agents' status: %w", err)
	}
	a.startSweeper()
	a.startWebhooks()
	cfg, err := a.handlerConfig(ctx, catalog)
	if err != nil {
		return nil, err
	}
	a.Handler = NewHandler(cfg)
	return a, nil
}

// openTracing installs the tracer provider when tracing is on.
func (a *App) openTracing(ctx context.Context) error {
	a.Tracing = a.Options.Tracing
	if a.Tracing != nil {
		return nil
	}
	var err error
	if a.Tracing, err = telemetry.Setup(ctx, a.Options.OTLPEndpoint); err != nil {
		return err
	}
	if a.Tracing != nil {
		a.Log.Info("tracing on", "otlp_endpoint", store.RedactURL(a.Tracing.PluginEndpoint()))
	}
	return nil
}

// openStore opens and migrates the store and installs the tenant filter.
func (a *App) openStore(ctx context.Context) error {
	var err error
	opts := a.Options.StoreOptions
	if a.Tracing != nil {
		opts = append(opts[:len(opts):len(opts)], store.WithTracerProvider(a.Tracing.Provider()))
	}
	if a.Store, err = store.Open(ctx, a.Options.DatabaseURL, a.Options.DataDir, a.Log, opts...); err != nil {
		return err
	}
	if err = a.Store.Migrate(ctx); err != nil {
		return err
	}
	a.migrated.Store(true)
	auth.InstallTenantFilter(a.Store.Client, scopes.CustomerVisible())
	return nil
}

// openKeys loads the master key and the keyring over the stored data keys.
func (a *App) openKeys(ctx context.Context) error {
	master, err := loadMasterKey(a.Options, a.Log)
	if err != nil {
		return err
	}
	a.Keys = secrets.NewKeyring(master, &store.KeyStore{DB: a.Store.Client})
	// Make sure a data key exists now, so no request creates the first one
	// while it holds a write transaction (SQLite has one writer). This also
	// proves the master key unwraps the stored data keys.
	if _, err = a.Keys.Encrypt(ctx, []byte("plugboard"), []byte("startup-check")); err != nil {
		return fmt.Errorf("checking the master key: %w", err)
	}
	return nil
}

// startPlugins launches the pinned plugins, recording what they describe
// in the catalog, and exports their state as a gauge.
func (a *App) startPlugins(ctx context.Context, catalog *connection.Catalog) error {
	log := a.Log
	cfg := pluginhost.Config{
		Dir:         a.Options.PluginDir,
		Logger:      log.With("component", "pluginhost"),
		CallTimeout: a.Options.PluginCallTimeout,
		TestTimeout: a.Options.PluginTestTimeout,
		ObserveCall: a.Metrics.ObservePluginCall,
		OnDescribe: func(ctx context.Context, p pluginhost.PluginInfo, d *sdk.Description) error {
			return catalog.SyncPlugin(ctx, p, d)
		},
		OnStatus: func(ctx context.Context, p pluginhost.PluginInfo) {
			if err := catalog.SyncPlugin(ctx, p, nil); err != nil {
				log.Error("recording plugin status", "plugin", p.Name, "err", err)
			}
		},
	}
	if a.Tracing != nil {
		cfg.GRPCStatsHandler = a.Tracing.GRPCClientHandler()
		if env := a.Tracing.PluginEnv(); env != "" {
			cfg.PluginEnv = []string{env}
		}
	}
	a.Host = pluginhost.New(cfg)
	if err := a.Host.Start(ctx); err != nil {
		return fmt.Errorf("starting plugins: %w", err)
	}
	a.Metrics.Gauge("plugboard_plugin_up", "1 when the plugin is loaded, by plugin and status.", a.pluginSamples)
	return nil
}

func (a *App) pluginSamples() []Sample {
	var out []Sample
	for _, p := range a.Host.Plugins() {
		v := 0.0
		if p.Status == pluginhost.StatusLoaded {
			v = 1
		}
		out = append(out, Sample{Labels: map[string]string{"plugin": p.Name, "status": string(p.Status)}, Value: v})
	}
	return out
}

// openEvents makes the event bus, shared across replicas on PostgreSQL.
func (a *App) openEvents() error {
	a.Events = events.NewBus(a.Log)
	if a.Store.Dialect != dialect.Postgres {
		return nil
	}
	evctx, cancel := context.WithCancel(context.Background())
	a.stopEvents = cancel
	return a.Events.ConnectPostgres(evctx, a.Options.DatabaseURL)
}

// buildServices builds the domain in one direction: the OAuth 2.0 token
// engine, then the connection service that owns credential state and
// calls it, then the API tokens.
func (a *App) buildServices(catalog *connection.Catalog) {
	db := a.Store.Client
	httpClient := a.Options.OAuthHTTPClient
	if a.Tracing != nil {
		httpClient = a.Tracing.HTTPClient(httpClient)
	}
	a.OAuth = oauth.New(oauth.Config{
		DB: db, Keys: a.Keys, Logger: a.Log, HTTPClient: httpClient,
		CallbackURL: callbackURL(a.Options), ObserveRefresh: a.Metrics.ObserveTokenRefresh,
	})
	a.Hub = a.newHub()
	a.Service = &connection.Service{
		DB: db, Plugins: a.Host, Keys: a.Keys, Log: a.Log, Events: a.Events, OAuth: a.OAuth,
		Refresh: connection.RefreshOptions{Dialect: a.Store.Dialect, SQL: a.Store.DB},
		Catalog: catalog, Egress: a.Options.Egress, Webhooks: webhookPolicy(a.Options), Now: a.Options.Now,
		Tunnel: clusterTunnel{Hub: a.Hub, bus: a.Events}, Replica: a.Options.replica(),
		AgentHeartbeat: a.Options.OnPremHeartbeat,
	}
	if !a.Options.NoRowCache {
		a.Service.Changes = a.Generations
	}
	a.Tokens = auth.NewTokens(db)
	a.Tokens.Revocations = revocations{a.Events}
	a.Embedding = &auth.Embedding{DB: db, Log: a.Log.With("component", "auth"), Revocations: revocations{a.Events}}
	forgetRevoked(a.Events, a.Tokens, a.Embedding, a.Hub)
}

// newHub is the hub of the on-prem agents. Its callbacks are the
// domain's (connection.Service), reached through a.Service when an agent
// calls, so the hub and the service are each built once.
func (a *App) newHub() *onprem.Hub {
	return onprem.NewHub(onprem.HubOptions{
		Authenticate: func(ctx context.Context, token string) (onprem.Agent, error) {
			return a.Service.AuthenticateAgent(ctx, token)
		},
		Observe:     func(ctx context.Context, ev onprem.Event) { a.Service.ObserveAgent(ctx, ev) },
		AuditStream: func(ctx context.Context, r onprem.StreamRecord) { a.Service.AuditTunnelStream(ctx, r) },
		Logger:      a.Log.With("component", "onprem"),
		Heartbeat:   a.Options.OnPremHeartbeat,
		ForwardHost: a.Options.OnPremForwardHost,
		Relay:       a.relayOptions(),
	})
}

// relayAAD binds the keyring's seal to relay tickets.
var relayAAD = []byte("plugboard on-prem relay ticket")

// relayOptions route on-prem streams between replicas when this one has a
// replica URL: tickets are sealed with the keyring every replica shares,
// and the holder of a session is the one the resource's row names.
func (a *App) relayOptions() *onprem.RelayOptions {
	self := a.Options.replica()
	if self == "" {
		return nil
	}
	return &onprem.RelayOptions{
		Self:   self,
		Locate: func(ctx context.Context, id int) (string, error) { return a.Service.LocateAgent(ctx, id) },
		Seal:   func(ctx context.Context, b []byte) ([]byte, error) { return a.Keys.Encrypt(ctx, b, relayAAD) },
		Open:   func(ctx context.Context, b []byte) ([]byte, error) { return a.Keys.Decrypt(ctx, b, relayAAD) },
	}
}

// replica is ReplicaURL without a trailing slash: the holder the domain
// records and the relay's own URL are compared as equal strings.
func (o Options) replica() string { return strings.TrimRight(o.ReplicaURL, "/") }

// clusterTunnel is the hub as the domain sees it: a Cut reaches every
// replica (over the event bus, PostgreSQL NOTIFY between replicas), since
// any of them may hold the resource's session.
type clusterTunnel struct {
	*onprem.Hub
	bus *events.Bus
}

// Cut cuts the resource's session here at once and on the other replicas.
func (c clusterTunnel) Cut(resourceID int) {
	_ = c.bus.PublishRevocation(context.Background(), events.Revocation{Kind: events.RevokedOnPremResource, ID: resourceID})
}

// startSweeper refreshes due tokens in the background, unless disabled.
func (a *App) startSweeper() {
	if a.Options.SweepInterval < 0 {
		return
	}
	interval := a.Options.SweepInterval
	if interval == 0 {
		interval = time.Minute
	}
	sweepCtx, cancel := context.WithCancel(context.Background())
	a.stopSweep = cancel
	go a.Service.RunSweeper(sweepCtx, interval)
}

// handlerConfig is the HTTP handler's configuration over the services;
// in local mode it ensures the default organization and its admin token.
func (a *App) handlerConfig(ctx context.Context, catalog *connection.Catalog) (Config, error) {
	o := a.Options
	cfg := Config{
		Resolver: &graph.Resolver{
			DB: a.Store.Client, Connections: a.Service, Plugins: a.Host, Events: a.Events,
			OAuth:  a.Service,
			Access: &connection.Access{DB: a.Store.Client, Tokens: a.Tokens, Embedding: a.Embedding},
			Keys: &connection.Keys{
				Service: a.Service, Rotator: &sealed.Rotator{DB: a.Store.Client, Keys: a.Keys},
			},
		},
		OAuthCallback:   a.OAuth.CallbackHandler(a.Service.CompleteAuthorization),
		CatalogVersion:  catalog.Version,
		Runtime:         a.Service,
		Proxy:           a.Service,
		Agents:          a.Hub,
		AgentRelay:      http.HandlerFunc(a.Hub.ServeRelay),
		Auth:            &auth.Authenticator{Tokens: a.Tokens, Embedding: a.Embedding},
		Logger:          a.Log,
		Metrics:         a.Metrics,
		Ready:           a.Ready,
		NoIntrospection: o.NoIntrospection,
		Tracing:         a.Tracing,
		Generations:     a.Generations,
		EmbedOrigins:    o.EmbedOrigins,
		Icons:           catalog.Icon,
	}
	if o.NoAnswerCache {
		cfg.Generations = nil
	}
	if o.NoCatalogCache {
		cfg.CatalogVersion = nil
	}
	if !o.Dev {
		return cfg, nil
	}
	org, err := EnsureOrganization(ctx, a.Store.Client, DefaultOrgSlug)
	if err != nil {
		return cfg, err
	}
	if a.DevToken, err = devToken(ctx, a.Tokens, org.ID, o.DataDir); err != nil {
		return cfg, err
	}
	cfg.Dev = true
	cfg.DevToken = a.DevToken
	cfg.DevViewer = &auth.Viewer{Role: auth.RoleOrgAdmin, OrganizationID: org.ID, Actor: "dev"}
	return cfg, nil
}

// Ready reports whether the database is migrated and reachable and every
// pinned plugin is loaded.
func (a *App) Ready(ctx context.Context) error {
	if !a.migrated.Load() {
		return errors.New("database not migrated yet")
	}
	if err := a.Store.Ping(ctx); err != nil {
		return errors.New("database unreachable")
	}
	if !a.Host.Ready() {
		var waiting []string
		for _, p := range a.Host.Plugins() {
			if p.Status != pluginhost.StatusLoaded {
				waiting = append(waiting, p.Name+" "+strings.ToLower(string(p.Status)))
			}
		}
		return fmt.Errorf("plugins not loaded: %s", strings.Join(waiting, ", "))
	}
	return nil
}

// Close stops the plugins and closes the store.
func (a *App) Close() {
	if a.stopSweep != nil {
		a.stopSweep()
	}
	if a.Webhooks != nil {
		a.Webhooks.Close()
	}
	if a.Hub != nil {
		// Agents' sessions and their streams end before the store closes.
		_ = a.Hub.Close()
	}
	if a.stopEvents != nil {
		a.stopEvents()
	}
	if a.Host != nil {
		var names []string
		for _, p := range a.Host.Plugins() {
			if p.Status == pluginhost.StatusLoaded {
				names = append(names, p.Name)
			}
		}
		_ = a.Host.Close()
		a.Log.Info("plugins stopped", "count", len(names), "plugins", strings.Join(names, ","))
	}
	if a.Store != nil {
		_ = a.Store.Close()
	}
	if a.Tracing != nil {
		// Flush the spans of the last requests and of shutting down.
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := a.Tracing.Shutdown(ctx); err != nil {
			a.Log.Warn("flushing traces", "err", err)
		}
	}
}

// Serve serves the handler on addr until ctx ends, then shuts down
// gracefully. ready, when not nil, receives the bound address.
func (a *App) Serve(ctx context.Context, addr string, ready func(net.Addr)) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	srv := &http.Server{
		Handler:           a.Handler,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(a.Log.Handler(), slog.LevelWarn),
	}
	if ready != nil {
		ready(ln.Addr())
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	a.Log.Info("shutting down", "reason", context.Cause(ctx))
	shutdown, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return srv.Shutdown(shutdown)
}

func loadMasterKey(o Options, log *slog.Logger) (secrets.MasterKey, error) {
	if o.MasterKey != "" {
		return secrets.ParseMasterKey(o.MasterKey)
	}
	path := filepath.Join(o.DataDir, "master.key")
	key, created, err := secrets.LoadOrCreateMasterKey(path)
	if err != nil {
		return secrets.MasterKey{}, err
	}
	if created {
		log.Warn("created a new master key; back it up: without it no stored secret can be read",
			"path", path, "master_key_id", key.ID())
	}
	return key, nil
}

// EnsureOrganization returns the organization with slug, creating it.
func EnsureOrganization(ctx context.Context, db *ent.Client, slug string) (*ent.Organization, error) {
	ctx = auth.SystemContext(ctx)
	org, err := db.Organization.Query().Where(organization.Slug(slug)).Only(ctx)
	if ent.IsNotFound(err) {
		org, err = db.Organization.Create().SetSlug(slug).SetName(slug).Save(ctx)
		if ent.IsConstraintError(err) {
			org, err = db.Organization.Query().Where(organization.Slug(slug)).Only(ctx)
		}
	}
	if err != nil {
		return nil, fmt.Errorf("organization %s: %w", slug, err)
	}
	return org, nil
}

// devToken returns the local mode's admin token, kept in the data dir so it
// survives restarts.
func devToken(ctx context.Context, tokens *auth.Tokens, orgID int, dataDir string) (string, error) {
	path := filepath.Join(dataDir, "dev-admin-token")
	if b, err := os.ReadFile(path); err == nil {
		tok := strings.TrimSpace(string(b))
		if v, err := tokens.Authenticate(ctx, tok); err == nil && v.OrganizationID == orgID {
			return tok, nil
		}
	}
	tok, _, err := tokens.Create(ctx, orgID, auth.RoleOrgAdmin, "local mode")
	if err != nil {
		return "", err
	}
	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		return "", err
	}
	if err := os.WriteFile(path, []byte(tok+"\n"), 0o600); err != nil {
		return "", err
	}
	return tok, nil
}

// callbackURL is the OAuth 2.0 redirect URI of this server.
func callbackURL(o Options) string {
	base := strings.TrimRight(o.PublicURL, "/")
	if base == "" {
		port := "8080"
		if _, p, err := net.SplitHostPort(o.Addr); err == nil && p != "" && p != "0" {
			port = p
		}
		base = "http://localhost:" + port
	}
	return base + "/oauth2/callback"
}
