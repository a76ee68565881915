package sdktest_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/plugboard/plugboard/plugins/sdk"
	"github.com/plugboard/plugboard/plugins/sdk/internal/testplugin"
	"github.com/plugboard/plugboard/plugins/sdk/sdktest"
)

func TestCheckPassesAGoodPlugin(t *testing.T) {
	bin := sdktest.Build(t, "github.com/plugboard/plugboard/plugins/sdk/internal/testplugin/cmd/testplugin")
	sdktest.Check(t, bin)
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

func containsOne(list []string, part string) bool {
	for _, s := range list {
		if strings.Contains(s, part) {
			return true
		}
	}
	return false
}
