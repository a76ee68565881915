// Command callout serves the SDK's test provider with a Test that calls its
// service before it looks at the values: the mistake sdktest.Check reports.
package main

import (
	"context"
	"net/http"

	"github.com/plugboard/plugboard/plugins/sdk"
	"github.com/plugboard/plugboard/plugins/sdk/internal/testplugin"
)

type provider struct{ *testplugin.Provider }

// Test calls https://api.example.com/me whatever the values.
func (p provider) Test(ctx context.Context, req *sdk.TestRequest) (*sdk.TestResponse, error) {
	if testplugin.Description().Type(req.TypeKey) == nil {
		return p.Provider.Test(ctx, req)
	}
	httpReq, err := http.NewRequest(http.MethodGet, "https://api.example.com/me", nil)
	if err != nil {
		return nil, err
	}
	return sdk.CheckHTTP(ctx, nil, httpReq, func(int, []byte) *sdk.TestResponse { return nil }), nil
}

func main() { sdk.Serve(provider{testplugin.New()}) }
