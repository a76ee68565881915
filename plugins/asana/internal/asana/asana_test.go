package asana

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/plugboard/plugboard/plugins/sdk"
	"github.com/plugboard/plugboard/plugins/sdk/sdktest"
)

// canaryToken has the shape of a personal access token and holds the
// canary, which must appear in no message.
const canaryToken = "2/1200000000000000/1200000000000001:" + sdktest.Canary

func TestConformance(t *testing.T) {
	sdktest.Check(t, sdktest.Build(t, "github.com/plugboard/plugboard/plugins/asana"))
}

func TestValidate(t *testing.T) {
	sdktest.CheckValidate(t, New(), TypeKey, []sdktest.ValidateCase{
		{Name: "v2 token", Values: map[string]string{"apiKey": "2/1200000000000000/1200000000000001:0123456789abcdef0123456789abcdef"}},
		{Name: "v1 token", Values: map[string]string{"apiKey": "1/1200000000000000:0123456789abcdef0123456789abcdef"}},
		{Name: "legacy token", Values: map[string]string{"apiKey": "0/0123456789abcdef0123456789abcdef"}},
		{Name: "canary token", Values: map[string]string{"apiKey": canaryToken}},
		{Name: "base URL override", Values: map[string]string{"apiKey": canaryToken, "baseUrl": "http://127.0.0.1:8080/api/1.0"}},
		{Name: "missing", Values: map[string]string{}, Errors: map[string]string{"apiKey": "is required"}},
		{Name: "bearer prefix", Values: map[string]string{"apiKey": "Bearer " + canaryToken}, Errors: map[string]string{"apiKey": `without the "Bearer " prefix`}},
		{Name: "line break", Values: map[string]string{"apiKey": canaryToken + "\n"}, Errors: map[string]string{"apiKey": "spaces or line breaks"}},
		{Name: "wrong shape", Values: map[string]string{"apiKey": sdktest.Canary}, Errors: map[string]string{"apiKey": "does not look like an Asana personal access token"}},
		{Name: "bad base URL", Values: map[string]string{"apiKey": canaryToken, "baseUrl": "app.asana.com"}, Errors: map[string]string{"baseUrl": "absolute URL"}},
	})
}

func TestTest(t *testing.T) {
	tests := []struct {
		name    string
		handler http.HandlerFunc
		wantOK  bool
		want    string
	}{
		{"ok with name", func(w http.ResponseWriter, r *http.Request) {
			w.Write([]byte(`{"data":{"gid":"1","name":"Ada Lovelace"}}`))
		}, true, "Connected to Asana as Ada Lovelace."},
		{"ok without name", func(w http.ResponseWriter, r *http.Request) {
			w.Write([]byte(`{}`))
		}, true, "Connected to Asana."},
		{"server echoes the token", func(w http.ResponseWriter, r *http.Request) {
			w.Write([]byte(`{"data":{"name":"` + canaryToken + `"}}`))
		}, true, "[redacted]"},
		{"rejected", func(w http.ResponseWriter, r *http.Request) {
			http.Error(w, `{"errors":[{"message":"Not Authorized"}]}`, http.StatusUnauthorized)
		}, false, "the token was rejected"},
		{"server error", func(w http.ResponseWriter, r *http.Request) {
			http.Error(w, "boom "+canaryToken, http.StatusServiceUnavailable)
		}, false, "answered 503 Service Unavailable."},
		{"too slow", sdktest.Hang, false, "did not answer in time"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := sdktest.Server(t, sdktest.Expect{
				Path:   "/api/1.0/users/me",
				Header: map[string]string{"Authorization": "Bearer " + canaryToken},
			}, tt.handler)
			ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
			defer cancel()
			resp, err := New().Test(ctx, &sdk.TestRequest{TypeKey: TypeKey, Values: map[string]string{
				"apiKey":  canaryToken,
				"baseUrl": srv.URL + "/api/1.0/",
			}})
			sdktest.CheckAnswer(t, resp, err, tt.wantOK, tt.want)
		})
	}
}

func TestTestWithoutCallingOut(t *testing.T) {
	for name, tt := range map[string]struct {
		values map[string]string
		want   string
	}{
		"no token":      {map[string]string{}, "Personal access token is required"},
		"bad token":     {map[string]string{"apiKey": sdktest.Canary}, "does not look like an Asana personal access token"},
		"unreachable":   {map[string]string{"apiKey": canaryToken, "baseUrl": "http://127.0.0.1:1"}, "Could not reach 127.0.0.1:1"},
		"bad base URL":  {map[string]string{"apiKey": canaryToken, "baseUrl": "::"}, "API base URL must be an absolute URL"},
		"unknown value": {map[string]string{"apiKey": canaryToken, "baseUrl": "http://127.0.0.1:1", "other": sdktest.Canary}, "Could not reach"},
	} {
		t.Run(name, func(t *testing.T) {
			resp, err := New().Test(context.Background(), &sdk.TestRequest{TypeKey: TypeKey, Values: tt.values})
			sdktest.CheckAnswer(t, resp, err, false, tt.want)
		})
	}
}

// Through the host, the plugin gets no token: the host sends it, and the
// plugin reads Asana's answer.
func TestTestThroughTheHost(t *testing.T) {
	srv := sdktest.Server(t, sdktest.Expect{
		Path:   "/api/1.0/users/me",
		Header: map[string]string{"Authorization": "Bearer " + canaryToken, "Accept": "application/json"},
	}, func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte(`{"data":{"gid":"1","name":"Ada Lovelace"}}`))
	})
	host := &sdktest.Host{Base: srv.URL, Inject: func(r *http.Request) { r.Header.Set("Authorization", "Bearer "+canaryToken) }}
	p := sdktest.InProcess(t, New())
	resp, err := host.Test(t, p, TypeKey, map[string]string{"apiKey": canaryToken, "baseUrl": srv.URL + "/api/1.0/"})
	sdktest.CheckAnswer(t, resp, err, true, "Connected to Asana as Ada Lovelace.")
	reqs := host.Requests()
	if len(reqs) != 1 || reqs[0].URL.Path != "/api/1.0/users/me" {
		t.Errorf("the host sent %d requests (%v), want one GET /api/1.0/users/me", len(reqs), reqs)
	}

	// A token Asana rejects is worded as on the old path.
	rejecting := sdktest.Server(t, sdktest.Expect{Path: "/users/me"}, func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, `{"errors":[{"message":"Not Authorized"}]}`, http.StatusUnauthorized)
	})
	host = &sdktest.Host{Base: rejecting.URL}
	resp, err = host.Test(t, p, TypeKey, map[string]string{"baseUrl": rejecting.URL})
	sdktest.CheckAnswer(t, resp, err, false, "the token was rejected")
}
