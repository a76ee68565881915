package shopify

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/plugboard/plugboard/plugins/sdk"
	"github.com/plugboard/plugboard/plugins/sdk/sdktest"
)

// token has the shape of an Admin API access token and holds the canary,
// which must appear in no message.
const token = "shpat_" + sdktest.Canary

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
	sdktest.CheckValidate(t, New(), TypeKey, []sdktest.ValidateCase{
		{Name: "complete", Values: map[string]string{"shop": "acme-2", "accessToken": token, "apiVersion": "2025-01"}},
		{Name: "empty", Values: map[string]string{}, Errors: map[string]string{"shop": "is required", "accessToken": "is required"}},
		{Name: "domain", Values: map[string]string{"shop": "acme.myshopify.com", "accessToken": token}, Errors: map[string]string{"shop": "not the domain"}},
		{Name: "upper case", Values: map[string]string{"shop": "Acme", "accessToken": token}, Errors: map[string]string{"shop": "lower-case"}},
		{Name: "unknown version", Values: map[string]string{"shop": "acme", "accessToken": token, "apiVersion": "2019-04"}, Errors: map[string]string{"apiVersion": "must be one of"}},
		{Name: "bad override", Values: map[string]string{"shop": "acme", "accessToken": token, "baseUrlOverride": "localhost"}, Errors: map[string]string{"baseUrlOverride": "absolute URL"}},
	})
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
		}, false, "answered 500 Internal Server Error."},
		{"too slow", sdktest.Hang, false, "did not answer in time"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := sdktest.Server(t, sdktest.Expect{
				Path:   "/admin/api/2025-01/shop.json",
				Header: map[string]string{"X-Shopify-Access-Token": token},
			}, tt.handler)
			ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
			defer cancel()
			resp, err := New().Test(ctx, &sdk.TestRequest{TypeKey: TypeKey, Values: map[string]string{
				"shop": "acme", "accessToken": token, "apiVersion": "2025-01", "baseUrlOverride": srv.URL + "/admin",
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
		"no values":   {map[string]string{}, "Store name is required"},
		"no token":    {map[string]string{"shop": "acme"}, "Admin API access token is required"},
		"bad shop":    {map[string]string{"shop": "acme.myshopify.com", "accessToken": token}, "not the domain"},
		"unreachable": {map[string]string{"shop": "acme", "accessToken": token, "baseUrlOverride": "http://127.0.0.1:1/admin"}, "Could not reach 127.0.0.1:1"},
	} {
		t.Run(name, func(t *testing.T) {
			resp, err := New().Test(context.Background(), &sdk.TestRequest{TypeKey: TypeKey, Values: tt.values})
			sdktest.CheckAnswer(t, resp, err, false, tt.want)
		})
	}
}
