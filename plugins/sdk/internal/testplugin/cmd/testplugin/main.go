// Command testplugin serves the SDK's test provider. With TESTPLUGIN_DEBUG=1
// it serves in debug mode (sdk.WithDebug).
package main

import (
	"os"

	"github.com/plugboard/plugboard/plugins/sdk"
	"github.com/plugboard/plugboard/plugins/sdk/internal/testplugin"
)

func main() {
	var opts []sdk.ServeOption
	if os.Getenv("TESTPLUGIN_DEBUG") == "1" {
		opts = append(opts, sdk.WithDebug())
	}
	sdk.Serve(testplugin.New(), opts...)
}
