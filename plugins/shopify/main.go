// Command shopify is the bundled plugboard plugin for Shopify: Admin API
// access tokens of a store.
package main

import (
	"github.com/plugboard/plugboard/plugins/sdk"
	"github.com/plugboard/plugboard/plugins/shopify/internal/shopify"
)

func main() { sdk.Serve(shopify.New()) }
