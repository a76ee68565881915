package sdktest

import (
	"context"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/plugboard/plugboard/plugins/sdk"
)

// Canary is a secret for a plugin's own tests: put it in every token,
// password and secret value a test passes. CheckValidate and CheckAnswer
// fail the test when it comes back in a diagnostic or a message, and Check
// puts it in every secret input and token.
const Canary = "sdktest-canary-6b1e0d7c"

// ValidateCase is one call of a provider's Validate and the ERROR
// diagnostics it must return.
type ValidateCase struct {
	Name   string
	Values map[string]string
	// Errors maps each field that must get an ERROR diagnostic ("" for the
	// connection as a whole) to a part of its summary ("" for any summary).
	// No other field may get an ERROR; WARNING diagnostics are not compared.
	Errors map[string]string
}

// CheckValidate runs each case as a subtest: it calls p.Validate for
// typeKey with the case's values and fails the subtest if Validate returns
// an error, if the fields with an ERROR diagnostic are not the case's
// Errors or a summary lacks its part, or if any diagnostic quotes Canary.
func CheckValidate(t *testing.T, p sdk.Provider, typeKey string, cases []ValidateCase) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.Name, func(t *testing.T) { checkValidateCase(t, p, typeKey, tc) })
	}
}

func checkValidateCase(t testing.TB, p sdk.Provider, typeKey string, tc ValidateCase) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), callTimeout)
	defer cancel()
	resp, err := p.Validate(ctx, &sdk.ValidateRequest{TypeKey: typeKey, Values: tc.Values})
	if err != nil {
		t.Fatalf("Validate returned an error; it must return diagnostics instead: %v", err)
	}
	got := map[string][]string{} // field -> summaries of its ERRORs
	for _, d := range resp.Diagnostics {
		if strings.Contains(d.Summary+" "+d.Detail, Canary) {
			t.Errorf("the diagnostic on %q quotes sdktest.Canary; never echo a value", d.Field)
		}
		if d.Severity == sdk.SeverityError {
			got[d.Field] = append(got[d.Field], d.Summary)
		}
	}
	for _, field := range sortedKeys(got) {
		if _, ok := tc.Errors[field]; !ok {
			t.Errorf("unexpected ERROR on %q: %s", field, strings.Join(got[field], " / "))
		}
	}
	for _, field := range sortedKeys(tc.Errors) {
		part := tc.Errors[field]
		summaries, ok := got[field]
		switch {
		case !ok:
			t.Errorf("no ERROR on %q, want one that says %q", field, part)
		case !slices.ContainsFunc(summaries, func(s string) bool { return strings.Contains(s, part) }):
			t.Errorf("ERROR on %q: %s; want one that says %q", field, strings.Join(summaries, " / "), part)
		}
	}
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// CheckAnswer checks what a provider's Test returned: no error, OK as
// wanted, a message that contains part (and is not empty when not OK),
// and no Canary in the message.
func CheckAnswer(t testing.TB, resp *sdk.TestResponse, err error, ok bool, part string) {
	t.Helper()
	if err != nil {
		t.Fatalf("Test returned an error; it must answer not OK with a message instead: %v", err)
	}
	if resp == nil {
		t.Fatalf("Test returned no answer")
	}
	if resp.OK != ok || !strings.Contains(resp.Message, part) {
		t.Errorf("Test = {OK: %v, Message: %q}, want OK %v and a message that says %q", resp.OK, resp.Message, ok, part)
	}
	if !resp.OK && strings.TrimSpace(resp.Message) == "" {
		t.Errorf("Test answered not OK without a message; say what is wrong")
	}
	if strings.Contains(resp.Message, Canary) {
		t.Errorf("the Test message quotes sdktest.Canary; never echo a secret")
	}
}

// Expect describes the request a provider's Test must send to a Server.
type Expect struct {
	Method string            // "" means GET
	Path   string            // the URL path; "" means any
	Query  map[string]string // query parameters that must have these values
	// Header holds headers that must have these values, such as
	// {"Authorization": "Bearer " + token}.
	Header map[string]string
}

// Server starts an HTTP server that stands in for the service a provider's
// Test calls, and closes it when the test ends. A request that is not what
// want describes fails the test and gets 400 Bad Request; handler answers
// the others.
func Server(t testing.TB, want Expect, handler http.HandlerFunc) *httptest.Server {
	t.Helper()
	method := want.Method
	if method == "" {
		method = http.MethodGet
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var problems []string
		if r.Method != method {
			problems = append(problems, "method "+r.Method+", want "+method)
		}
		if want.Path != "" && r.URL.Path != want.Path {
			problems = append(problems, "path "+r.URL.Path+", want "+want.Path)
		}
		for _, k := range sortedKeys(want.Query) {
			if got := r.URL.Query().Get(k); got != want.Query[k] {
				problems = append(problems, "query parameter "+k+"="+got+", want "+want.Query[k])
			}
		}
		for _, k := range sortedKeys(want.Header) {
			if r.Header.Get(k) != want.Header[k] { // values may be secrets: not quoted
				problems = append(problems, "header "+k+" is missing or has another value")
			}
		}
		if len(problems) > 0 {
			t.Errorf("sdktest.Server: unexpected request: %s", strings.Join(problems, "; "))
			http.Error(w, "unexpected request", http.StatusBadRequest)
			return
		}
		handler(w, r)
	}))
	t.Cleanup(srv.Close)
	return srv
}

// Hang is a handler for a service too slow for the test's deadline: it
// answers nothing until the client gives up, or 10 seconds pass.
func Hang(_ http.ResponseWriter, r *http.Request) {
	select {
	case <-r.Context().Done():
	case <-time.After(10 * time.Second):
	}
}
