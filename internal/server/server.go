// Package server wires plugboard's HTTP surface: the GraphQL handler and
// GraphiQL, authentication, health and readiness, and metrics.
package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"runtime/debug"
	"strings"
	"time"

	"github.com/99designs/gqlgen/graphql"
	"github.com/99designs/gqlgen/graphql/handler"
	"github.com/99designs/gqlgen/graphql/handler/extension"
	"github.com/99designs/gqlgen/graphql/handler/lru"
	"github.com/99designs/gqlgen/graphql/handler/transport"
	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/gqlerror"

	"github.com/plugboard/plugboard/graph"
	"github.com/plugboard/plugboard/internal/auth"
	"github.com/plugboard/plugboard/internal/connection"
	"github.com/plugboard/plugboard/internal/server/graphiql"
	"github.com/plugboard/plugboard/internal/server/wizardui"
	"github.com/plugboard/plugboard/internal/telemetry"
)

// MaxBodyBytes bounds a GraphQL request body.
const MaxBodyBytes = 1 << 20

// DefaultRequestTimeout bounds one GraphQL request: a save with a live
// plugin test (30 s at most) fits.
const DefaultRequestTimeout = 45 * time.Second

// Authenticator turns a bearer token into a viewer.
type Authenticator interface {
	Authenticate(ctx context.Context, bearer string) (*auth.Viewer, error)
}

// Config is what the HTTP server is built from.
type Config struct {
	Resolver *graph.Resolver
	Auth     Authenticator
	Logger   *slog.Logger
	// Ready reports whether the server can serve: database migrated and
	// every pinned plugin loaded. Nil means always.
	Ready func(ctx context.Context) error
	// Metrics receives the counters /metrics shows; nil makes a new one.
	Metrics *Metrics
	// Dev is the local mode: a request without a token acts as DevViewer,
	// and GraphiQL comes with DevToken filled in.
	Dev       bool
	DevViewer *auth.Viewer
	DevToken  string
	// OAuthCallback serves GET /oauth2/callback.
	OAuthCallback http.Handler
	// Runtime serves the runtime read; nil leaves it out.
	Runtime RuntimeSource
	// Proxy serves the credential proxy; nil leaves it out.
	Proxy ProxySource
	// Agents serves the on-prem agents' endpoint, GET /agent/v1/connect;
	// nil leaves it out. The agent authenticates with its own token, so
	// the API token middleware does not wrap it.
	Agents http.Handler
	// AgentRelay serves, at GET /agent/v1/relay, the streams other
	// replicas relay over the agent sessions this one holds; nil: none.
	AgentRelay http.Handler
	// NoIntrospection turns schema introspection off.
	NoIntrospection bool
	// RequestTimeout bounds a GraphQL request over HTTP (not subscriptions);
	// zero means DefaultRequestTimeout.
	RequestTimeout time.Duration
	// CatalogVersion, when set, turns on the cache of catalog-only queries
	// (connectionTypes, connectionType, plugins); it must change whenever
	// the catalog does.
	CatalogVersion func() uint64
	// Tracing, when not nil, makes spans of every request and GraphQL
	// operation and resolver; nil wraps nothing.
	Tracing *telemetry.Tracing
	// Generations, when set, turns on the cache of whole query answers
	// (answerfront.go); every write the answers depend on must bump it.
	Generations *Generations
	// EmbedOrigins are the origins whose pages may embed the wizard
	// (/embed/v1/frame); empty allows any page, which sees nothing
	// without a customer token.
	EmbedOrigins []string
	// Icons returns the SVG icon of a connection type, served at
	// /catalog/icons/{key}.svg; nil serves none.
	Icons func(key string) ([]byte, bool)
}

// NewHandler returns plugboard's HTTP handler.
func NewHandler(cfg Config) http.Handler {
	cfg = cfg.withDefaults()
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	mux.HandleFunc("GET /readyz", readyHandler(cfg.Ready))
	mux.Handle("GET /metrics", cfg.Metrics)
	wizardui.New(wizardui.Options{FrameAncestors: cfg.EmbedOrigins}).Register(mux)
	if cfg.Icons != nil {
		mux.Handle("GET /catalog/icons/{file}", iconHandler(cfg.Icons))
	}
	mux.Handle("GET "+graphiql.AssetsPath, graphiql.Assets())
	if cfg.OAuthCallback != nil {
		mux.Handle("GET /oauth2/callback", cfg.OAuthCallback)
	}
	if cfg.Runtime != nil {
		runtime := authenticate(cfg, runtimeHandler(cfg.Runtime, cfg.Logger))
		mux.Handle("GET /runtime/v1/credentials/{id}", cfg.Metrics.timeRuntimeReads(runtime))
	}
	if cfg.Proxy != nil {
		mux.Handle("/proxy/v1/credentials/{id}/{path...}", authenticate(cfg, newCredentialProxy(cfg.Proxy, cfg.Logger, cfg.Metrics)))
	}
	if cfg.Agents != nil {
		mux.Handle("GET /agent/v1/connect", cfg.Agents)
	}
	if cfg.AgentRelay != nil {
		mux.Handle("GET /agent/v1/relay", cfg.AgentRelay)
	}
	var api http.Handler = graphQLAPI(cfg)
	if cfg.Generations != nil {
		api = answerFront(newAnswerCache(cfg.Generations), api)
	}
	mux.Handle("/graphql", graphQLEndpoint(cfg, authenticate(cfg, api)))
	h := cfg.Metrics.instrument(logRequests(cfg.Logger, mux))
	if cfg.Tracing != nil {
		h = cfg.Tracing.HTTPHandler(h)
	}
	return h
}

// withDefaults fills in the logger, the metrics and the request timeout.
func (cfg Config) withDefaults() Config {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Metrics == nil {
		cfg.Metrics = NewMetrics()
	}
	if cfg.RequestTimeout <= 0 {
		cfg.RequestTimeout = DefaultRequestTimeout
	}
	return cfg
}

// readyHandler serves GET /readyz from ready (nil: always ready).
func readyHandler(ready func(ctx context.Context) error) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if ready != nil {
			ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
			defer cancel()
			if err := ready(ctx); err != nil {
				writeJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "not ready", "reason": err.Error()})
				return
			}
		}
		writeJSON(w, http.StatusOK, map[string]string{"status": "ready"})
	}
}

// graphQLAPI is the GraphQL handler of cfg: the schema, the catalog cache
// when configured, and the operation latency histogram.
func graphQLAPI(cfg Config) *handler.Server {
	var hopts []HandlerOption
	if cfg.NoIntrospection {
		hopts = append(hopts, WithoutIntrospection())
	}
	gql := NewGraphQLHandler(graph.NewSchema(cfg.Resolver), cfg.Logger, websocketAuth(cfg), hopts...)
	gql.AroundOperations(cfg.Metrics.timeOperations)
	if cfg.Tracing != nil {
		gql.Use(cfg.Tracing.GraphQL())
	}
	if cfg.CatalogVersion != nil {
		gql.Use(newCatalogCache(cfg.CatalogVersion))
	}
	if cfg.Generations != nil {
		gql.Use(answerMarker{})
	}
	return gql
}

// graphQLEndpoint serves /graphql: GraphiQL to a browser (served from the
// binary; only the local mode's page carries a token), api to everyone
// else, under the request timeout unless the request opens a websocket.
func graphQLEndpoint(cfg Config, api http.Handler) http.Handler {
	uiOpts := graphiql.Options{Endpoint: "/graphql"}
	if cfg.Dev {
		uiOpts.Token = cfg.DevToken
	}
	ui := graphiql.Handler(uiOpts)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodGet && wantsHTML(r) {
			ui.ServeHTTP(w, r)
			return
		}
		r, ok := bufferBody(w, r)
		if !ok {
			return
		}
		if r.Header.Get("Upgrade") == "" {
			// Subscriptions live as long as their websocket; everything
			// else gets a deadline that every store and plugin call sees.
			ctx, cancel := context.WithTimeout(r.Context(), cfg.RequestTimeout)
			defer cancel()
			r = r.WithContext(ctx)
		}
		api.ServeHTTP(w, r)
	})
}

// NewGraphQLHandler returns the gqlgen handler with explicit transports, a
// query cache and plugboard's error presenter. wsInit, when not nil,
// authenticates websocket connections from their connection_init payload.
func NewGraphQLHandler(schema graphql.ExecutableSchema, logger *slog.Logger, wsInit transport.WebsocketInitFunc, opts ...HandlerOption) *handler.Server {
	var o handlerOptions
	for _, opt := range opts {
		opt(&o)
	}
	return newGraphQLHandler(schema, logger, wsInit, o)
}

// HandlerOption tunes NewGraphQLHandler.
type HandlerOption func(*handlerOptions)

type handlerOptions struct {
	NoIntrospection bool
}

// WithoutIntrospection turns schema introspection off (GraphiQL then cannot
// read the schema): for production servers that want to show less.
func WithoutIntrospection() HandlerOption {
	return func(o *handlerOptions) { o.NoIntrospection = true }
}

func newGraphQLHandler(schema graphql.ExecutableSchema, logger *slog.Logger, wsInit transport.WebsocketInitFunc, opts handlerOptions) *handler.Server {
	srv := handler.New(schema)
	srv.AddTransport(transport.Websocket{KeepAlivePingInterval: 10 * time.Second, InitFunc: wsInit})
	srv.AddTransport(transport.Options{})
	srv.AddTransport(httpTransport{Transport: transport.GET{}, get: true})
	srv.AddTransport(httpTransport{Transport: transport.POST{}})
	srv.AddTransport(unsupported{})
	srv.SetQueryCache(lru.New[*ast.QueryDocument](1000))
	srv.Use(queryLimits{maxDepth: MaxQueryDepth, maxAliases: MaxAliases})
	srv.Use(pagedComplexityLimit{extension.FixedComplexityLimit(MaxComplexity)})
	if !opts.NoIntrospection {
		srv.Use(extension.Introspection{})
	}
	srv.Use(extension.AutomaticPersistedQuery{Cache: lru.New[string](100)})
	srv.SetErrorPresenter(graph.NewErrorPresenter(logger))
	srv.AroundOperations(func(ctx context.Context, next graphql.OperationHandler) graphql.ResponseHandler {
		return next(connection.WithTypeMemo(ctx))
	})
	srv.SetRecoverFunc(func(ctx context.Context, v any) error {
		// The panic value may hold request data: log its type and the
		// stack, never the value.
		logger.Error("resolver panic", "type", fmt.Sprintf("%T", v), "stack", string(debug.Stack()))
		return errors.New("internal error")
	})
	return srv
}

func wantsHTML(r *http.Request) bool {
	return r.URL.RawQuery == "" && strings.Contains(r.Header.Get("Accept"), "text/html")
}

// authenticate puts the request's viewer into its context. A request with a
// bad token is refused here; one without a token reaches the resolvers
// unauthenticated (they refuse it), except in the local mode.
func authenticate(cfg Config, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx := r.Context()
		h := r.Header.Get("Authorization")
		switch {
		case h != "":
			token, ok := strings.CutPrefix(h, "Bearer ")
			if !ok {
				writeGraphQLError(w, http.StatusUnauthorized, graph.CodeUnauthenticated, "the Authorization header must be \"Bearer <token>\"")
				return
			}
			v, err := cfg.Auth.Authenticate(ctx, strings.TrimSpace(token))
			if err != nil {
				if !errors.Is(err, auth.ErrUnauthenticated) {
					// The token could not be checked (the database is
					// down, say): not the caller's fault, and worth a retry.
					cfg.Logger.Error("authenticating a request", "err", err)
					w.Header().Set("Retry-After", "1")
					writeGraphQLError(w, http.StatusServiceUnavailable, graph.CodeInternal, "the token could not be checked; try again")
					return
				}
				writeGraphQLError(w, http.StatusUnauthorized, graph.CodeUnauthenticated, "the token is not valid")
				return
			}
			ctx = auth.NewContext(ctx, v)
		case cfg.Dev && cfg.DevViewer != nil:
			ctx = auth.NewContext(ctx, cfg.DevViewer)
		}
		next.ServeHTTP(w, r.WithContext(ctx))
	})
}

// websocketAuth authenticates a websocket connection: browsers cannot set
// headers on a websocket, so the token may come in the connection_init
// payload as {"Authorization": "Bearer <token>"}. A viewer already set from
// the upgrade request's header is kept. A refused token closes the socket
// with 4401, a RUNTIME token (which may not subscribe) with 4403.
func websocketAuth(cfg Config) transport.WebsocketInitFunc {
	return func(ctx context.Context, payload transport.InitPayload) (context.Context, *transport.InitPayload, error) {
		h := payload.Authorization()
		if h == "" {
			if s, ok := payload["authorization"].(string); ok {
				h = s
			}
		}
		if h == "" {
			if v := auth.FromContext(ctx); v != nil && !connection.Permits(v, connection.WatchCredentials) {
				return refuseWebsocket(ctx, wsCloseForbidden, "forbidden", auth.ErrForbidden)
			}
			return ctx, nil, nil
		}
		token, ok := strings.CutPrefix(h, "Bearer ")
		if !ok {
			return refuseWebsocket(ctx, wsCloseUnauthorized, "unauthorized", auth.ErrUnauthenticated)
		}
		v, err := cfg.Auth.Authenticate(ctx, strings.TrimSpace(token))
		if err != nil {
			if !errors.Is(err, auth.ErrUnauthenticated) {
				cfg.Logger.Error("authenticating a websocket", "err", err)
				return refuseWebsocket(ctx, wsCloseTryAgain, "the token could not be checked; try again", errors.New("the token could not be checked; try again"))
			}
			return refuseWebsocket(ctx, wsCloseUnauthorized, "unauthorized", auth.ErrUnauthenticated)
		}
		if !connection.Permits(v, connection.WatchCredentials) {
			return refuseWebsocket(ctx, wsCloseForbidden, "forbidden", auth.ErrForbidden)
		}
		// The ack carries no payload: echoing the init payload would send
		// the client's token back over the wire.
		return auth.NewContext(ctx, v), nil, nil
	}
}

func writeGraphQLError(w http.ResponseWriter, status int, code, msg string) {
	writeJSON(w, status, map[string]any{
		"errors": gqlerror.List{{Message: msg, Extensions: map[string]any{"code": code}}},
	})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (s *statusRecorder) WriteHeader(code int) {
	s.status = code
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusRecorder) Unwrap() http.ResponseWriter { return s.ResponseWriter }

// logRequests logs one line per request: method, path, status, duration.
// Bodies and query strings are never logged.
func logRequests(logger *slog.Logger, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		rec := &statusRecorder{ResponseWriter: w, status: http.StatusOK}
		next.ServeHTTP(rec, r)
		logger.Debug("http request", "method", r.Method, "path", r.URL.Path,
			"status", rec.status, "duration", time.Since(start))
	})
}
