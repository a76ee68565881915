package asana

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/plugboard/plugboard/plugins/sdk"
	"github.com/plugboard/plugboard/plugins/sdk/sdktest"
)

// canary is a secret that must appear in no message.
const canary = "canary-secret-7f3a"

// canaryToken has the shape of a personal access token.
const canaryToken = "2/1200000000000000/1200000000000001:" + canary

func TestConformance(t *testing.T) {
	sdktest.Check(t, sdktest.Build(t, "github.com/plugboard/plugboard/plugins/asana"))
}

func TestValidate(t *testing.T) {
	tests := []struct {
		name   string
		values map[string]string
		want   map[string]string // field -> part of the summary; empty: valid
	}{
		{"v2 token", map[string]string{"apiKey": "2/1200000000000000/1200000000000001:0123456789abcdef0123456789abcdef"}, nil},
		{"v1 token", map[string]string{"apiKey": "1/1200000000000000:0123456789abcdef0123456789abcdef"}, nil},
		{"legacy token", map[string]string{"apiKey": "0/0123456789abcdef0123456789abcdef"}, nil},
		{"canary token", map[string]string{"apiKey": canaryToken}, nil},
		{"base URL override", map[string]string{"apiKey": canaryToken, "baseUrl": "http://127.0.0.1:8080/api/1.0"}, nil},
		{"missing", map[string]string{}, map[string]string{"apiKey": "is required"}},
		{"bearer prefix", map[string]string{"apiKey": "Bearer " + canaryToken}, map[string]string{"apiKey": `without the "Bearer " prefix`}},
		{"line break", map[string]string{"apiKey": canaryToken + "\n"}, map[string]string{"apiKey": "spaces or line breaks"}},
		{"wrong shape", map[string]string{"apiKey": canary}, map[string]string{"apiKey": "does not look like an Asana personal access token"}},
		{"bad base URL", map[string]string{"apiKey": canaryToken, "baseUrl": "app.asana.com"}, map[string]string{"baseUrl": "absolute URL"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, err := New().Validate(context.Background(), &sdk.ValidateRequest{TypeKey: TypeKey, Values: tt.values})
			if err != nil {
				t.Fatal(err)
			}
			got := map[string]string{}
			for _, d := range resp.Diagnostics {
				got[d.Field] = d.Summary
				if strings.Contains(d.Summary+d.Detail, canary) {
					t.Errorf("diagnostic %+v leaks the token", d)
				}
			}
			if len(got) != len(tt.want) {
				t.Fatalf("diagnostics %v, want %v", got, tt.want)
			}
			for field, part := range tt.want {
				if !strings.Contains(got[field], part) {
					t.Errorf("%s: %q, want it to contain %q", field, got[field], part)
				}
			}
		})
	}
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
		}, false, "503 Service Unavailable"},
		{"too slow", func(w http.ResponseWriter, r *http.Request) {
			select {
			case <-r.Context().Done():
			case <-time.After(5 * time.Second):
			}
		}, false, "did not answer in time"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if r.Method != http.MethodGet || r.URL.Path != "/api/1.0/users/me" {
					http.Error(w, "unexpected "+r.Method+" "+r.URL.Path, http.StatusNotFound)
					return
				}
				if got := r.Header.Get("Authorization"); got != "Bearer "+canaryToken {
					http.Error(w, "no token", http.StatusBadRequest)
					return
				}
				tt.handler(w, r)
			}))
			defer srv.Close()
			ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
			defer cancel()
			resp, err := New().Test(ctx, &sdk.TestRequest{TypeKey: TypeKey, Values: map[string]string{
				"apiKey":  canaryToken,
				"baseUrl": srv.URL + "/api/1.0/",
			}})
			if err != nil {
				t.Fatal(err)
			}
			if resp.OK != tt.wantOK || !strings.Contains(resp.Message, tt.want) {
				t.Errorf("Test = %+v, want OK=%v and a message with %q", resp, tt.wantOK, tt.want)
			}
			if strings.Contains(resp.Message, canary) {
				t.Errorf("the message leaks the token: %q", resp.Message)
			}
		})
	}
}

func TestTestWithoutCallingOut(t *testing.T) {
	for name, values := range map[string]map[string]string{
		"no token":      {},
		"bad token":     {"apiKey": canary},
		"unreachable":   {"apiKey": canaryToken, "baseUrl": "http://127.0.0.1:1"},
		"bad base URL":  {"apiKey": canaryToken, "baseUrl": "::"},
		"unknown value": {"apiKey": canaryToken, "baseUrl": "http://127.0.0.1:1", "other": canary},
	} {
		t.Run(name, func(t *testing.T) {
			resp, err := New().Test(context.Background(), &sdk.TestRequest{TypeKey: TypeKey, Values: values})
			if err != nil {
				t.Fatal(err)
			}
			if resp.OK || resp.Message == "" || strings.Contains(resp.Message, canary) {
				t.Errorf("Test = %+v, want not OK with a message and no secret", resp)
			}
		})
	}
}
