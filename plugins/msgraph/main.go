// Command msgraph is the bundled plugboard plugin for Microsoft Graph:
// app-only access with an app registration's client credentials.
package main

import (
	"github.com/plugboard/plugboard/plugins/msgraph/internal/msgraph"
	"github.com/plugboard/plugboard/plugins/sdk"
)

func main() { sdk.Serve(msgraph.New()) }
