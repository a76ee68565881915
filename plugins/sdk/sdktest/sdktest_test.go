package sdktest_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/plugboard/plugboard/plugins/sdk"
	"github.com/plugboard/plugboard/plugins/sdk/internal/testplugin"
	"github.com/plugboard/plugboard/plugins/sdk/sdktest"
)

func TestCheckPassesAGoodPlugin(t *testing.T) {
	bin := sdktest.Build(t, "github.com/plugboard/plugboard/plugins/sdk/internal/testplugin/cmd/testplugin")
	sdktest.Check(t, bin)
}

// A Test that calls out with no values fails Check, naming the host; the
// test provider, which checks the values first, passes (above).
func TestCheckReportsATestThatCallsOut(t *testing.T) {
	bin := sdktest.Build(t, "github.com/plugboard/plugboard/plugins/sdk/internal/testplugin/cmd/callout")
	// The test's own proxy settings do not hide the call.
	for _, k := range []string{"HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy"} {
		t.Setenv(k, "http://127.0.0.1:1")
	}
	t.Setenv("NO_PROXY", "*")
	t.Setenv("no_proxy", "*")
	errs := run(t, func(tb testing.TB) { sdktest.Check(tb, bin) })
	for _, want := range []string{
		`type "testplugin.everything": Test with no values called out (api.example.com:443)`,
		`type "testplugin.oauth2": Test with no values called out (api.example.com:443)`,
		`type "testplugin.throughHost": Test with no values called out (api.example.com:443)`,
	} {
		if !containsOne(errs, want) {
			t.Errorf("Check did not report %q; it reported:\n%s", want, strings.Join(errs, "\n"))
		}
	}
	if len(errs) != 3 {
		t.Errorf("Check reported %d problems, want the 3 calls:\n%s", len(errs), strings.Join(errs, "\n"))
	}
}

// A pattern without a PatternMessage fails the check.
func TestCheckProviderWantsPatternMessages(t *testing.T) {
	p := &describeWith{testplugin.New(), func(d *sdk.Description) { d.ConnectionTypes[0].Inputs[2].PatternMessage = "" }}
	errs := run(t, func(tb testing.TB) { sdktest.CheckProvider(tb, sdktest.InProcess(tb, p)) })
	want := `type "testplugin.everything": input "host" has a Pattern but no PatternMessage`
	if len(errs) != 1 || !strings.Contains(errs[0], want) {
		t.Errorf("CheckProvider reported %q, want only %q", errs, want)
	}
}

// describeWith is a test provider whose description edit changes.
type describeWith struct {
	*testplugin.Provider
	edit func(*sdk.Description)
}

func (p *describeWith) Describe(context.Context) (*sdk.Description, error) {
	d := testplugin.Description()
	p.edit(d)
	return d, nil
}

func TestInProcess(t *testing.T) {
	p := sdktest.InProcess(t, testplugin.New())
	sdktest.CheckProvider(t, p)
	if err := p.(sdk.Pinger).Ping(context.Background()); err != nil {
		t.Fatal(err)
	}
}

// recorder is a testing.TB that records failures instead of failing.
type recorder struct {
	testing.TB
	mu     sync.Mutex
	errors []string
}

func (r *recorder) Helper() {}

func (r *recorder) Errorf(format string, args ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.errors = append(r.errors, fmt.Sprintf(format, args...))
}

func (r *recorder) Fatalf(format string, args ...any) {
	r.Errorf(format, args...)
	panic(errFatal)
}

var errFatal = errors.New("fatal")

// run calls f with a recorder and returns the failures it reported.
func run(t *testing.T, f func(tb testing.TB)) []string {
	r := &recorder{TB: t}
	func() {
		defer func() {
			if v := recover(); v != nil && v != errFatal {
				panic(v)
			}
		}()
		f(r)
	}()
	return r.errors
}

func TestCheckDescriptionReportsEachProblem(t *testing.T) {
	d := testplugin.Description()
	d.ConnectionTypes[0].Inputs[1].Key = "mode"                                  // duplicate input key
	d.ConnectionTypes[1].OAuth2.TokenURL = ""                                    // incomplete spec
	d.ConnectionTypes[0].Inputs = append(d.ConnectionTypes[0].Inputs, sdk.Input{ // template slot of no input
		Key: "bad", Label: "Bad", Type: sdk.InputTemplate, Template: "{{#nope}}",
	})
	errs := run(t, func(tb testing.TB) { sdktest.CheckDescription(tb, d) })
	for _, want := range []string{
		`type "testplugin.everything": input "mode" is declared more than once`,
		`type "testplugin.oauth2": OAuth2 spec: token URL is empty`,
		`type "testplugin.everything": input "bad": template slot {{#nope}} names no input of the type`,
	} {
		if !containsOne(errs, want) {
			t.Errorf("CheckDescription did not report %q; it reported:\n%s", want, strings.Join(errs, "\n"))
		}
	}
}

// badProvider breaks the rules CheckProvider checks beyond the description.
type badProvider struct{ *testplugin.Provider }

func (badProvider) Validate(_ context.Context, req *sdk.ValidateRequest) (*sdk.ValidateResponse, error) {
	if len(req.Values) == 0 {
		return nil, errors.New("no values")
	}
	var ds []sdk.Diagnostic
	for k, v := range req.Values {
		ds = append(ds, sdk.ErrorDiag(k, "bad value "+v))
	}
	return &sdk.ValidateResponse{Diagnostics: ds}, nil
}

func (badProvider) Test(_ context.Context, req *sdk.TestRequest) (*sdk.TestResponse, error) {
	if req.Token != nil {
		return &sdk.TestResponse{Message: "token " + req.Token.AccessToken + " rejected"}, nil
	}
	return &sdk.TestResponse{OK: true}, nil
}

func TestCheckProviderReportsBadAnswers(t *testing.T) {
	p := sdktest.InProcess(t, badProvider{testplugin.New()})
	errs := run(t, func(tb testing.TB) { sdktest.CheckProvider(tb, p) })
	for _, want := range []string{
		`type "testplugin.everything": Validate with no values returned an error`,
		`type "testplugin.everything": Test with no values reported OK although required inputs [host] are empty`,
		`type "testplugin.everything": a Validate diagnostic contains the value of a secret input`,
		`type "testplugin.oauth2": the Test message contains the value of a secret input or token`,
		`Validate("sdktest.noSuchType")`,
		`Test("sdktest.noSuchType")`,
	} {
		if !containsOne(errs, want) {
			t.Errorf("CheckProvider did not report %q; it reported:\n%s", want, strings.Join(errs, "\n"))
		}
	}
}

func TestBuildFailureIsReported(t *testing.T) {
	errs := run(t, func(tb testing.TB) { sdktest.Build(tb, "./no/such/package") })
	if len(errs) != 1 || !strings.Contains(errs[0], "go build ./no/such/package") {
		t.Fatalf("Build of a missing package reported %q", errs)
	}
}

func TestCheckValidate(t *testing.T) {
	sdktest.CheckValidate(t, testplugin.New(), "testplugin.everything", []sdktest.ValidateCase{
		{Name: "complete", Values: map[string]string{"host": "db.example.com", "secret": sdktest.Canary}},
		{Name: "empty", Values: map[string]string{}, Errors: map[string]string{"host": "is required"}},
		{Name: "any summary", Values: map[string]string{"host": "DB", "port": "x"}, Errors: map[string]string{"host": "", "port": "number"}},
	})
}

func TestCheckValidateReportsMismatches(t *testing.T) {
	p := testplugin.New()
	errs := run(t, func(tb testing.TB) {
		sdktest.CheckValidateCase(tb, p, "testplugin.everything", sdktest.ValidateCase{
			Name: "wrong", Values: map[string]string{"port": "x"},
			Errors: map[string]string{"port": "must be a port", "enabled": ""},
		})
	})
	for _, want := range []string{
		`unexpected ERROR on "host": Host is required.`,
		`ERROR on "port": Port must be a number.; want one that says "must be a port"`,
		`no ERROR on "enabled"`,
	} {
		if !containsOne(errs, want) {
			t.Errorf("CheckValidateCase did not report %q; it reported:\n%s", want, strings.Join(errs, "\n"))
		}
	}
	errs = run(t, func(tb testing.TB) {
		sdktest.CheckValidateCase(tb, badProvider{p}, "testplugin.everything", sdktest.ValidateCase{
			Name: "leak", Values: map[string]string{"secret": sdktest.Canary}, Errors: map[string]string{"secret": ""},
		})
	})
	if !containsOne(errs, `the diagnostic on "secret" quotes sdktest.Canary`) {
		t.Errorf("CheckValidateCase did not report the leaked canary; it reported %q", errs)
	}
	errs = run(t, func(tb testing.TB) {
		sdktest.CheckValidateCase(tb, badProvider{p}, "testplugin.everything", sdktest.ValidateCase{Name: "error"})
	})
	if !containsOne(errs, "Validate returned an error") {
		t.Errorf("CheckValidateCase did not report Validate's error; it reported %q", errs)
	}
}

func TestCheckAnswer(t *testing.T) {
	sdktest.CheckAnswer(t, &sdk.TestResponse{OK: true, Message: "Connected as Ada."}, nil, true, "as Ada")
	for _, tt := range []struct {
		name string
		resp *sdk.TestResponse
		err  error
		want string
	}{
		{"error", nil, errors.New("boom"), "Test returned an error"},
		{"not OK", &sdk.TestResponse{Message: "Rejected."}, nil, `want OK true and a message that says "as Ada"`},
		{"no message", &sdk.TestResponse{}, nil, "without a message"},
		{"leak", &sdk.TestResponse{OK: true, Message: "Connected as Ada " + sdktest.Canary}, nil, "quotes sdktest.Canary"},
	} {
		errs := run(t, func(tb testing.TB) { sdktest.CheckAnswer(tb, tt.resp, tt.err, true, "as Ada") })
		if !containsOne(errs, tt.want) {
			t.Errorf("%s: CheckAnswer reported %q, want %q", tt.name, errs, tt.want)
		}
	}
}

func TestServer(t *testing.T) {
	want := sdktest.Expect{
		Method: http.MethodPost, Path: "/api/me", Query: map[string]string{"fields": "name"},
		Header: map[string]string{"Authorization": "Bearer " + sdktest.Canary},
	}
	send := func(tb testing.TB, auth string) int {
		srv := sdktest.Server(tb, want, func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusAccepted) })
		req, err := http.NewRequest(http.MethodPost, srv.URL+"/api/me?fields=name", nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Authorization", auth)
		resp, err := srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if got := send(t, "Bearer "+sdktest.Canary); got != http.StatusAccepted {
		t.Errorf("the expected request got %d, want the handler's 202", got)
	}
	var status int
	errs := run(t, func(tb testing.TB) { status = send(tb, "Bearer other") })
	if status != http.StatusBadRequest || len(errs) != 1 || !strings.Contains(errs[0], "header Authorization is missing or has another value") {
		t.Errorf("another token got %d and reported %q; want 400 and the header named", status, errs)
	}
	if strings.Contains(strings.Join(errs, ""), sdktest.Canary) {
		t.Errorf("the report quotes the expected header value: %q", errs)
	}
}

func TestHang(t *testing.T) {
	srv := sdktest.Server(t, sdktest.Expect{}, sdktest.Hang)
	client := &http.Client{Timeout: 100 * time.Millisecond}
	start := time.Now()
	if resp, err := client.Get(srv.URL); err == nil {
		resp.Body.Close()
		t.Fatalf("Hang answered %d", resp.StatusCode)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("the client waited %s", d)
	}
}

func containsOne(list []string, part string) bool {
	for _, s := range list {
		if strings.Contains(s, part) {
			return true
		}
	}
	return false
}
