package shopify

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

const token = "shpat_" + canary

func TestConformance(t *testing.T) {
	sdktest.Check(t, sdktest.Build(t, "github.com/plugboard/plugboard/plugins/shopify"))
}

func TestStoreURLTemplate(t *testing.T) {
	values, err := sdk.ResolveValues(&connectionType, map[string]string{"shop": "acme"})
	if err != nil {
		t.Fatal(err)
	}
	if values["storeUrl"] != "https://acme.myshopify.com/admin" || values["apiVersion"] != "2025-07" {
		t.Errorf("resolved values = %v", values)
	}
}

func TestValidate(t *testing.T) {
	tests := []struct {
		name   string
		values map[string]string
		want   map[string]string // field -> part of the summary
	}{
		{"complete", map[string]string{"shop": "acme-2", "accessToken": token, "apiVersion": "2025-01"}, nil},
		{"empty", map[string]string{}, map[string]string{"shop": "is required", "accessToken": "is required"}},
		{"domain", map[string]string{"shop": "acme.myshopify.com", "accessToken": token}, map[string]string{"shop": "not the domain"}},
		{"upper case", map[string]string{"shop": "Acme", "accessToken": token}, map[string]string{"shop": "lower-case"}},
		{"unknown version", map[string]string{"shop": "acme", "accessToken": token, "apiVersion": "2019-04"}, map[string]string{"apiVersion": "must be one of"}},
		{"bad override", map[string]string{"shop": "acme", "accessToken": token, "baseUrlOverride": "localhost"}, map[string]string{"baseUrlOverride": "absolute URL"}},
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
		{"ok", func(w http.ResponseWriter, r *http.Request) {
			w.Write([]byte(`{"shop":{"id":1,"name":"Acme Outdoor","myshopify_domain":"acme.myshopify.com"}}`))
		}, true, "Connected to the store Acme Outdoor."},
		{"rejected", func(w http.ResponseWriter, r *http.Request) {
			http.Error(w, `{"errors":"[API] Invalid API key or access token"}`, http.StatusUnauthorized)
		}, false, "rejected the access token"},
		{"missing scope", func(w http.ResponseWriter, r *http.Request) {
			http.Error(w, "forbidden", http.StatusForbidden)
		}, false, "access scopes"},
		{"no such store", func(w http.ResponseWriter, r *http.Request) {
			http.NotFound(w, r)
		}, false, "No store acme.myshopify.com"},
		{"server error", func(w http.ResponseWriter, r *http.Request) {
			http.Error(w, token, http.StatusInternalServerError)
		}, false, "500 Internal Server Error"},
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
				if r.Method != http.MethodGet || r.URL.Path != "/admin/api/2025-01/shop.json" || r.Header.Get("X-Shopify-Access-Token") != token {
					http.Error(w, "unexpected request", http.StatusBadRequest)
					return
				}
				tt.handler(w, r)
			}))
			defer srv.Close()
			ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
			defer cancel()
			resp, err := New().Test(ctx, &sdk.TestRequest{TypeKey: TypeKey, Values: map[string]string{
				"shop": "acme", "accessToken": token, "apiVersion": "2025-01", "baseUrlOverride": srv.URL + "/admin",
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
		"no values":   {},
		"no token":    {"shop": "acme"},
		"bad shop":    {"shop": "acme.myshopify.com", "accessToken": token},
		"unreachable": {"shop": "acme", "accessToken": token, "baseUrlOverride": "http://127.0.0.1:1/admin"},
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
