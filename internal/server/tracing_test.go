package server_test

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"go.opentelemetry.io/otel"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
	collectorpb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/grpc"

	"github.com/plugboard/plugboard/internal/auth"
	"github.com/plugboard/plugboard/internal/globalid"
	"github.com/plugboard/plugboard/internal/server/servertest"
	"github.com/plugboard/plugboard/internal/telemetry"
	"github.com/plugboard/plugboard/plugins/sdk"
)

// span is one finished span, from the server's in-memory exporter or from
// a plugin process through the OTLP receiver, reduced to what the tests
// look at.
type span struct {
	name          string
	traceID       string
	spanID        string
	parentID      string
	kind          string
	attrs         map[string]string
	texts         []string // name, attributes, events and status: every string it carries
	fromPlugin    bool
	statusMessage string
}

// otlpReceiver is a minimal OTLP/gRPC trace collector: plugins export to it.
type otlpReceiver struct {
	collectorpb.UnimplementedTraceServiceServer
	mu    sync.Mutex
	spans []span
}

func (r *otlpReceiver) Export(_ context.Context, req *collectorpb.ExportTraceServiceRequest) (*collectorpb.ExportTraceServiceResponse, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, rs := range req.GetResourceSpans() {
		for _, ss := range rs.GetScopeSpans() {
			for _, s := range ss.GetSpans() {
				r.spans = append(r.spans, fromOTLP(s))
			}
		}
	}
	return &collectorpb.ExportTraceServiceResponse{}, nil
}

func fromOTLP(in *tracepb.Span) span {
	s := span{name: in.GetName(), traceID: fmt.Sprintf("%x", in.GetTraceId()), spanID: fmt.Sprintf("%x", in.GetSpanId()),
		kind: in.GetKind().String(), attrs: map[string]string{}, fromPlugin: true, statusMessage: in.GetStatus().GetMessage()}
	if pid := in.GetParentSpanId(); len(pid) > 0 {
		s.parentID = fmt.Sprintf("%x", pid)
	}
	s.texts = append(s.texts, s.name, s.statusMessage)
	for _, kv := range in.GetAttributes() {
		v := kv.GetValue().String()
		s.attrs[kv.GetKey()] = kv.GetValue().GetStringValue()
		s.texts = append(s.texts, kv.GetKey(), v)
	}
	for _, e := range in.GetEvents() {
		s.texts = append(s.texts, e.GetName())
		for _, kv := range e.GetAttributes() {
			s.texts = append(s.texts, kv.GetKey(), kv.GetValue().String())
		}
	}
	return s
}

func (r *otlpReceiver) all() []span {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]span(nil), r.spans...)
}

// startReceiver serves an OTLP receiver on a loopback port.
func startReceiver(t *testing.T) (*otlpReceiver, string) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	rcv := &otlpReceiver{}
	srv := grpc.NewServer()
	collectorpb.RegisterTraceServiceServer(srv, rcv)
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(srv.Stop)
	return rcv, ln.Addr().String()
}

// fromSDK reduces a span of the in-memory exporter.
func fromSDK(s tracetest.SpanStub) span {
	out := span{name: s.Name, traceID: s.SpanContext.TraceID().String(), spanID: s.SpanContext.SpanID().String(),
		kind: s.SpanKind.String(), attrs: map[string]string{}, statusMessage: s.Status.Description}
	if s.Parent.IsValid() {
		out.parentID = s.Parent.SpanID().String()
	}
	out.texts = append(out.texts, s.Name, s.Status.Description)
	for _, kv := range s.Attributes {
		out.attrs[string(kv.Key)] = kv.Value.String()
		out.texts = append(out.texts, string(kv.Key), kv.Value.String())
	}
	for _, e := range s.Events {
		out.texts = append(out.texts, e.Name)
		for _, kv := range e.Attributes {
			out.texts = append(out.texts, string(kv.Key), kv.Value.String())
		}
	}
	for _, l := range s.Links {
		for _, kv := range l.Attributes {
			out.texts = append(out.texts, string(kv.Key), kv.Value.String())
		}
	}
	return out
}

// tracedEnv is a server tracing into memory whose plugins export to an
// in-test OTLP receiver.
type tracedEnv struct {
	*servertest.Env
	mem *tracetest.InMemoryExporter
	rcv *otlpReceiver
}

func startTraced(t *testing.T, plugins ...string) *tracedEnv {
	rcv, addr := startReceiver(t)
	mem := tracetest.NewInMemoryExporter()
	tp := telemetry.NewProvider(sdktrace.WithSyncer(mem))
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	env := servertest.Start(t, servertest.Config{Plugins: plugins, Tracing: telemetry.New(tp, addr)})
	return &tracedEnv{Env: env, mem: mem, rcv: rcv}
}

// spans returns the server's spans and the plugins' spans so far.
func (e *tracedEnv) spans() []span {
	var out []span
	for _, s := range e.mem.GetSpans() {
		out = append(out, fromSDK(s))
	}
	return append(out, e.rcv.all()...)
}

// waitPluginSpan waits for the plugin span named name in trace traceID
// (plugins export in batches, about every second).
func (e *tracedEnv) waitPluginSpan(t *testing.T, name, traceID string) span {
	t.Helper()
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		for _, s := range e.rcv.all() {
			if s.name == name && s.traceID == traceID {
				return s
			}
		}
	}
	t.Fatalf("no %s span of trace %s reached the receiver; got %v", name, traceID, names(e.rcv.all()))
	return span{}
}

func names(spans []span) []string {
	var out []string
	for _, s := range spans {
		out = append(out, s.name)
	}
	return out
}

func find(spans []span, pred func(span) bool) []span {
	var out []span
	for _, s := range spans {
		if pred(s) {
			out = append(out, s)
		}
	}
	return out
}

// ancestors returns the names of s's parents, nearest first, following
// parent ids across the server's and the plugins' spans.
func ancestors(all []span, s span) []string {
	byID := map[string]span{}
	for _, x := range all {
		byID[x.spanID] = x
	}
	var out []string
	for s.parentID != "" {
		p, ok := byID[s.parentID]
		if !ok {
			return append(out, "<missing "+s.parentID+">")
		}
		out = append(out, p.name)
		s = p
	}
	return out
}

func contains(list []string, want string) bool {
	for _, s := range list {
		if s == want {
			return true
		}
	}
	return false
}

// TestTracingOneTraceAcrossPluginAndSQL: a saveCredential request with a
// live test is one trace: the HTTP server span, the GraphQL operation
// span, its SQL statements, the host's gRPC calls and, from the plugin
// process, the plugin.Validate and plugin.Test spans.
func TestTracingOneTraceAcrossPluginAndSQL(t *testing.T) {
	env := startTraced(t, "asana")
	asana, _ := fakeAsana(t)
	connID, custID := createAsanaConnection(t, env.Env)
	mustOK(t, env.Do(t, saveMutation, map[string]any{"in": map[string]any{
		"connectionID": connID, "customerID": custID, "test": true,
		"values": []any{
			map[string]any{"key": "apiKey", "value": canary},
			map[string]any{"key": "baseUrl", "value": asana.URL},
		},
	}}))

	ops := find(env.spans(), func(s span) bool { return s.name == "graphql.mutation saveCredential" })
	if len(ops) != 1 {
		t.Fatalf("want one saveCredential operation span, got %d: %v", len(ops), names(env.spans()))
	}
	op := ops[0]
	if a := ancestors(env.spans(), op); len(a) != 1 || a[0] != "POST /graphql" {
		t.Fatalf("the operation span's parents are %v, want the HTTP server span", a)
	}
	for _, method := range []string{"plugin.Validate", "plugin.Test"} {
		ps := env.waitPluginSpan(t, method, op.traceID)
		if ps.attrs["plugboard.type_key"] != "asana.apiKey" {
			t.Errorf("%s attributes: %v", method, ps.attrs)
		}
		chain := ancestors(env.spans(), ps)
		if !contains(chain, "graphql.mutation saveCredential") || !contains(chain, "POST /graphql") {
			t.Errorf("%s does not descend from the request: parents %v", method, chain)
		}
	}
	sql := find(env.spans(), func(s span) bool { return s.traceID == op.traceID && s.attrs["db.system.name"] == "sqlite" })
	if len(sql) == 0 {
		t.Fatal("no SQL statement span in the request's trace")
	}
	for _, s := range sql {
		if s.attrs["db.query.text"] == "" || !contains(ancestors(env.spans(), s), "POST /graphql") {
			t.Errorf("SQL span %s: attributes %v, parents %v", s.name, s.attrs, ancestors(env.spans(), s))
		}
	}
	resolvers := find(env.spans(), func(s span) bool { return s.name == "graphql.resolve Mutation.saveCredential" })
	if len(resolvers) != 1 || resolvers[0].traceID != op.traceID {
		t.Errorf("want one resolver span of saveCredential in the trace, got %v", names(resolvers))
	}
}

// fakeOAuthProvider is an OAuth 2.0 authorization server issuing the
// canary tokens: it redirects every authorization with codeCanary and
// answers both grants with accessCanary and refreshCanary.
const (
	codeCanary    = "code-CANARY-4e1f"
	accessCanary  = "access-CANARY-91c2"
	refreshCanary = "refresh-CANARY-0b7d"
	secretCanary  = "client-secret-CANARY-55aa"
	queryCanary   = "query-CANARY-7e7e"
)

func fakeOAuthProvider(t *testing.T) *httptest.Server {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/authorize" {
			back, _ := url.Parse(r.URL.Query().Get("redirect_uri"))
			q := url.Values{"code": {codeCanary}, "state": {r.URL.Query().Get("state")}}
			back.RawQuery = q.Encode()
			http.Redirect(w, r, back.String(), http.StatusFound)
			return
		}
		_ = r.ParseForm()
		if r.URL.Path != "/token" || r.PostForm.Get("client_secret") != secretCanary && !strings.Contains(r.Header.Get("Authorization"), "Basic") {
			http.Error(w, `{"error":"invalid_client"}`, http.StatusUnauthorized)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"access_token":%q,"refresh_token":%q,"token_type":"Bearer","expires_in":3600}`, accessCanary, refreshCanary)
	}))
	t.Cleanup(srv.Close)
	return srv
}

// connectOAuth saves a slack credential against idp and runs the
// authorization through the callback; it returns the credential's id.
func connectOAuth(t *testing.T, env *servertest.Env, idp string) string {
	t.Helper()
	mustOK(t, env.Do(t, `mutation { updateOrganization(input: {redirectAllowlist: ["https://app.example.com/"]}) { organization { id } } }`, nil))
	r := env.Do(t, `mutation { createConnection(input: {typeKey: "slack.oauth2", stableKey: "slack", name: "Slack", scope: ORGANIZATION_GLOBAL}) { connection { id } } }`, nil)
	mustOK(t, r)
	val := func(k, v string) map[string]any { return map[string]any{"key": k, "value": v} }
	r = env.Do(t, saveMutation, map[string]any{"in": map[string]any{
		"connectionID": servertest.Str(r.Data, "createConnection.connection.id"), "values": []any{
			val("clientId", "client-1"), val("clientSecret", secretCanary),
			val("authorizeUrl", idp+"/authorize"), val("tokenUrl", idp+"/token?tenant="+queryCanary),
			val("revokeUrl", idp+"/revoke"), val("scopes", "openid"),
		}}})
	mustOK(t, r)
	credID := servertest.Str(r.Data, "saveCredential.credential.id")
	r = env.Do(t, `mutation($id: ID!) { startOAuth2(input: {credentialID: $id, redirectURL: "https://app.example.com/done"}) { authorizeURL } }`,
		map[string]any{"id": credID})
	mustOK(t, r)
	res, _ := get(t, noFollow, servertest.Str(r.Data, "startOAuth2.authorizeURL"), nil)
	res, body := get(t, noFollow, res.Header.Get("Location"), nil)
	if back, _ := url.Parse(res.Header.Get("Location")); back == nil || back.Query().Get("status") != "ACTIVE" {
		t.Fatalf("callback answered %d %s: %s", res.StatusCode, res.Header.Get("Location"), body)
	}
	return credID
}

// TestTracingKeepsSecretsOut runs an API key save with a live test, an
// OAuth 2.0 authorization (code exchange through the callback), runtime
// reads and a refresh with tracing on, and finds none of the secrets in
// any span (the server's or the plugins'): not in a name, an attribute, an
// event or a status. The refresh is a client span under the runtime
// read's server span, its URL without the query string.
func TestTracingKeepsSecretsOut(t *testing.T) {
	env := startTraced(t, "asana", "slack")
	asana, _ := fakeAsana(t)
	connID, custID := createAsanaConnection(t, env.Env)
	mustOK(t, env.Do(t, saveMutation, map[string]any{"in": map[string]any{
		"connectionID": connID, "customerID": custID, "test": true,
		"values": []any{map[string]any{"key": "apiKey", "value": canary}, map[string]any{"key": "baseUrl", "value": asana.URL}},
	}}))
	idp := fakeOAuthProvider(t)
	credID := connectOAuth(t, env.Env, idp.URL)
	rt := runtimeToken(t, env.Env)
	if code, rr := readRuntime(t, env.Env, rt, credID); code != http.StatusOK || rr.Token == nil || rr.Token.AccessToken != accessCanary {
		t.Fatalf("runtime read %d: %+v", code, rr)
	}
	expire(t, env.Env, credID)
	if code, rr := readRuntime(t, env.Env, rt, credID); code != http.StatusOK || rr.Token == nil {
		t.Fatalf("runtime read after expiry %d: %+v", code, rr)
	}
	checkRefreshSpan(t, env, idp.URL+"/token")

	// Wait for the plugin's spans of the asana save to arrive, then scan.
	var validateTrace string
	for _, s := range env.spans() {
		if s.name == "graphql.mutation saveCredential" && validateTrace == "" {
			validateTrace = s.traceID
		}
	}
	env.waitPluginSpan(t, "plugin.Test", validateTrace)
	secrets := []string{canary, codeCanary, accessCanary, refreshCanary, secretCanary, queryCanary, rt, env.AdminToken}
	all := env.spans()
	for _, s := range all {
		for _, text := range s.texts {
			for _, secret := range secrets {
				if strings.Contains(text, secret) {
					t.Errorf("span %q (plugin: %v) carries a secret in %q", s.name, s.fromPlugin, text)
				}
			}
		}
	}
	if len(find(all, func(s span) bool { return s.name == "GET /oauth2/callback" })) != 1 {
		t.Errorf("no span of the OAuth callback: %v", names(all))
	}
}

func expire(t *testing.T, env *servertest.Env, credID string) {
	t.Helper()
	ctx := auth.SystemContext(context.Background())
	id, _ := globalid.Decode(credID)
	past := time.Now().Add(-time.Minute)
	if err := env.App.Store.Client.Credential.UpdateOneID(id).SetTokenExpiresAt(past).SetNextRefreshAt(past).Exec(ctx); err != nil {
		t.Fatal(err)
	}
}

// checkRefreshSpan finds the client span of the refresh: a child of the
// runtime read's server span, its url.full tokenURL without the query.
func checkRefreshSpan(t *testing.T, env *tracedEnv, tokenURL string) {
	t.Helper()
	all := env.spans()
	clients := find(all, func(s span) bool {
		return s.kind == trace.SpanKindClient.String() && strings.HasPrefix(s.attrs["url.full"], tokenURL)
	})
	if len(clients) != 2 {
		t.Fatalf("want two token calls (code exchange, refresh), got %d: %v", len(clients), names(all))
	}
	for _, c := range clients {
		if c.attrs["url.full"] != tokenURL {
			t.Errorf("a token call's url.full is %q, want %q", c.attrs["url.full"], tokenURL)
		}
	}
	refresh := clients[1]
	chain := ancestors(all, refresh)
	if len(chain) == 0 || chain[len(chain)-1] != "GET /runtime/v1/credentials/{id}" {
		t.Errorf("the refresh's parents are %v, want the runtime read's server span at the root", chain)
	}
	exchange := ancestors(all, clients[0])
	if len(exchange) == 0 || exchange[len(exchange)-1] != "GET /oauth2/callback" {
		t.Errorf("the code exchange's parents are %v, want the callback's server span at the root", exchange)
	}
}

// TestTracingOffByDefault: without an endpoint nothing traces: no
// provider, the handler is not wrapped, the global provider makes no
// recording span and plugins get no endpoint.
func TestTracingOffByDefault(t *testing.T) {
	t.Setenv(telemetry.EndpointEnv, "")
	env := servertest.Start(t, servertest.Config{Plugins: []string{"asana"}})
	if env.App.Tracing != nil {
		t.Fatal("tracing is on without an endpoint")
	}
	if fn := handlerFunc(env.App.Handler); strings.Contains(fn, "otelhttp") {
		t.Errorf("the handler is wrapped: %s", fn)
	}
	if _, s := otel.GetTracerProvider().Tracer("t").Start(context.Background(), "x"); s.IsRecording() {
		t.Error("the global tracer provider records")
	}
	if environ := pluginEnviron(t, env, "asana"); strings.Contains(environ, sdk.OTLPEndpointEnv) {
		t.Errorf("the plugin got %s without tracing", sdk.OTLPEndpointEnv)
	}

	on := startTraced(t, "asana")
	if environ := pluginEnviron(t, on.Env, "asana"); !strings.Contains(environ, sdk.OTLPEndpointEnv+"=http://127.0.0.1:") {
		t.Errorf("the plugin got no %s with tracing on", sdk.OTLPEndpointEnv)
	}
	if fn := handlerFunc(on.App.Handler); !strings.Contains(fn, "otelhttp") {
		t.Errorf("with tracing on the handler is %s", fn)
	}
}

// handlerFunc names the function of a HandlerFunc, or the handler's type.
func handlerFunc(h http.Handler) string {
	if f, ok := h.(http.HandlerFunc); ok {
		return runtime.FuncForPC(reflect.ValueOf(f).Pointer()).Name()
	}
	return fmt.Sprintf("%T", h)
}

// pluginEnviron is the environment of the named plugin's process.
func pluginEnviron(t *testing.T, env *servertest.Env, name string) string {
	t.Helper()
	pid := env.PluginPID(name)
	if pid == 0 {
		t.Fatalf("no %s process", name)
	}
	b, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "environ"))
	if err != nil {
		t.Skipf("reading a plugin's environment: %v", err)
	}
	return strings.ReplaceAll(string(b), "\x00", "\n")
}
