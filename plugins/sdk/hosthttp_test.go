package sdk_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"reflect"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/plugboard/plugboard/plugins/sdk"
	"github.com/plugboard/plugboard/plugins/sdk/internal/testplugin"
	"github.com/plugboard/plugboard/plugins/sdk/sdktest"
)

// hostReport runs the test plugin's through-host Test in a real plugin
// process, with host sending its requests on, and decodes its report.
func hostReport(t *testing.T, host *sdktest.Host, values map[string]string) (*sdk.TestResponse, testplugin.HostReport) {
	t.Helper()
	p, _, logs := launch(t)
	resp, err := host.Test(t, p, testplugin.ThroughHostType, values)
	if err != nil {
		t.Fatalf("Test through the host: %v", err)
	}
	var r testplugin.HostReport
	if err := json.Unmarshal([]byte(resp.Message), &r); err != nil {
		t.Fatalf("Test message %q is not a report: %v", resp.Message, err)
	}
	if strings.Contains(logs.String(), canary) {
		t.Errorf("the plugin log holds the canary")
	}
	return resp, r
}

// A Test through the host reaches the service with the credential the host
// injects, and the plugin gets neither the secret value nor a token.
func TestThroughHostInjectsOnTheHostSide(t *testing.T) {
	var gotAuth string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		gotAuth = r.Header.Get("Authorization")
		w.Header().Set("X-Answer", "yes")
		_, _ = w.Write([]byte(`{"me":"ada"}`))
	}))
	defer srv.Close()
	host := &sdktest.Host{Base: srv.URL, Inject: func(r *http.Request) { r.Header.Set("Authorization", "Bearer "+canary) }}
	resp, r := hostReport(t, host, map[string]string{"baseUrl": srv.URL, "path": "/whoami", "apiKey": canary})
	if !resp.OK || r.Status != http.StatusOK || r.Body != `{"me":"ada"}` {
		t.Fatalf("Test = %+v (report %+v), want OK with the service's answer", resp, r)
	}
	if gotAuth != "Bearer "+canary {
		t.Errorf("the service got Authorization %q, want the injected credential", gotAuth)
	}
	if want := []string{"baseUrl", "path"}; !reflect.DeepEqual(r.ValueKeys, want) || r.HasToken {
		t.Errorf("the plugin got value keys %v (token %v), want %v and no token", r.ValueKeys, r.HasToken, want)
	}
	if strings.Contains(resp.Message, canary) {
		t.Errorf("the answer holds the canary")
	}
	if n := len(host.Requests()); n != 1 {
		t.Errorf("the host sent %d requests, want 1", n)
	}
}

// An answer larger than sdk.MaxHostHTTPBody arrives cut at the limit, and
// reading past it fails with sdk.ErrHostHTTPBodyTruncated.
func TestThroughHostTruncatesLargeAnswers(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = w.Write([]byte(strings.Repeat("x", sdk.MaxHostHTTPBody+100)))
	}))
	defer srv.Close()
	_, r := hostReport(t, &sdktest.Host{Base: srv.URL}, map[string]string{"baseUrl": srv.URL})
	if r.BodyLen != sdk.MaxHostHTTPBody || !r.Truncated {
		t.Errorf("report %+v, want a body of %d bytes and ErrHostHTTPBodyTruncated", r, sdk.MaxHostHTTPBody)
	}
}

// The host refuses a request to a host the type does not declare; the
// plugin gets the host's words as its error.
func TestThroughHostRefusalReachesThePlugin(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		t.Errorf("the refused request reached the service")
	}))
	defer srv.Close()
	_, r := hostReport(t, &sdktest.Host{Base: "https://api.example.com"}, map[string]string{"baseUrl": srv.URL})
	if r.Status != 0 || !strings.Contains(r.Error, "refused a request to http://127.0.0.1") {
		t.Errorf("report %+v, want the host's refusal as the error", r)
	}
}

// A declared type that tests through the host: the SDK's declared checks
// leave out the secret inputs, whose values the host keeps and checks.
func TestDeclaredTypeThroughHost(t *testing.T) {
	ct := sdk.ConnectionType{Key: "decl.apiKey", Label: "Decl", AuthKind: sdk.AuthAPIKey, TestThroughHost: true, Inputs: []sdk.Input{
		{Key: "apiKey", Label: "API key", Type: sdk.InputPassword, Secret: true, Required: true},
		{Key: "baseUrl", Label: "Base URL", Type: sdk.InputURL, Required: true},
	}}
	var sawHTTP bool
	p := &sdk.Plugin{Key: "decl", Version: "1.0.0", Types: []sdk.Type{{ConnectionType: ct,
		Test: func(ctx context.Context, req *sdk.TestRequest) (*sdk.TestResponse, error) {
			sawHTTP = req.ThroughHost()
			return &sdk.TestResponse{OK: true, Message: "ok"}, nil
		}}}}
	if err := sdk.ValidateDescription(&sdk.Description{Key: "decl", Version: "1.0.0", ConnectionTypes: []sdk.ConnectionType{ct}}); err == nil ||
		!strings.Contains(err.Error(), "TestThroughHost needs an HTTP declaration") {
		t.Errorf("ValidateDescription of a through-host type without HTTP = %v, want it refused", err)
	}
	ctx := context.Background()
	vr, err := p.Validate(ctx, &sdk.ValidateRequest{TypeKey: ct.Key, Values: map[string]string{}, SecretsWithheld: true})
	if err != nil || len(vr.Diagnostics) != 1 || vr.Diagnostics[0].Field != "baseUrl" {
		t.Fatalf("Validate with secrets withheld = %+v, %v; want one ERROR, for baseUrl", vr, err)
	}
	vr, _ = p.Validate(ctx, &sdk.ValidateRequest{TypeKey: ct.Key, Values: map[string]string{}})
	if len(vr.Diagnostics) != 2 {
		t.Errorf("Validate with all values = %+v, want ERRORs for both inputs", vr.Diagnostics)
	}
	host := &sdktest.Host{Base: "https://api.example.com"}
	resp, err := host.Test(t, sdktest.InProcess(t, p), ct.Key, map[string]string{"baseUrl": "https://api.example.com", "apiKey": canary})
	if err != nil || !resp.OK || !sawHTTP {
		t.Errorf("Test through the host = %+v, %v (ThroughHost %v); want OK through the host", resp, err, sawHTTP)
	}
}

// A test through the host costs one broker connection and one HostHTTP
// round trip more than a plugin's own call; these two benchmarks measure
// both paths of the same declared type over the in-process gRPC
// connection, against one local service.
func benchmarkTest(b *testing.B, throughHost bool) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = w.Write([]byte(`{"me":"ada"}`))
	}))
	defer srv.Close()
	ct := sdk.ConnectionType{Key: "bench.apiKey", Label: "Bench", AuthKind: sdk.AuthAPIKey, TestThroughHost: true, Inputs: []sdk.Input{
		{Key: "apiKey", Label: "API key", Type: sdk.InputPassword, Secret: true, Required: true},
		{Key: "baseUrl", Label: "Base URL", Type: sdk.InputURL, Required: true},
	}}
	p := sdktest.InProcess(b, &sdk.Plugin{Key: "bench", Version: "1.0.0", Types: []sdk.Type{{ConnectionType: ct,
		Test: func(ctx context.Context, req *sdk.TestRequest) (*sdk.TestResponse, error) {
			httpReq, _ := http.NewRequest(http.MethodGet, req.Values["baseUrl"]+"/me", nil)
			if !req.ThroughHost() {
				httpReq.Header.Set("Authorization", "Bearer "+req.Values["apiKey"])
			}
			return sdk.CheckHTTP(ctx, req.HTTP, httpReq, func(int, []byte) *sdk.TestResponse { return &sdk.TestResponse{OK: true, Message: "ok"} }), nil
		}}}})
	host := &sdktest.Host{Base: srv.URL, Inject: func(r *http.Request) { r.Header.Set("Authorization", "Bearer k") }}
	req := &sdk.TestRequest{TypeKey: ct.Key, Values: map[string]string{"apiKey": "k", "baseUrl": srv.URL}}
	if throughHost {
		req = &sdk.TestRequest{TypeKey: ct.Key, Values: map[string]string{"baseUrl": srv.URL}, HTTP: host.Client()}
	}
	b.ResetTimer()
	for b.Loop() {
		resp, err := p.Test(context.Background(), req)
		if err != nil || !resp.OK {
			b.Fatalf("Test = %+v, %v", resp, err)
		}
	}
}

func BenchmarkTestDirect(b *testing.B)      { benchmarkTest(b, false) }
func BenchmarkTestThroughHost(b *testing.B) { benchmarkTest(b, true) }

// Each Test through the host starts a HostHTTP server on the broker and
// stops it when the call returns: many calls leave no server behind.
func TestThroughHostStopsItsServerAfterEachCall(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	defer srv.Close()
	p := sdktest.InProcess(t, testplugin.New())
	host := &sdktest.Host{Base: srv.URL}
	run := func() {
		if _, err := host.Test(t, p, testplugin.ThroughHostType, map[string]string{"baseUrl": srv.URL, "path": "/"}); err != nil {
			t.Fatal(err)
		}
	}
	run() // the connections and pools of the first call stay
	before := runtime.NumGoroutine()
	for range 30 {
		run()
	}
	var after int
	for range 50 {
		if after = runtime.NumGoroutine(); after <= before+5 {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Errorf("%d goroutines after 30 more tests through the host, %d before: the servers of the calls keep running", after, before)
}
