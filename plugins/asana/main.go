// Command asana is the bundled plugboard plugin for Asana: personal access
// tokens.
package main

import (
	"github.com/plugboard/plugboard/plugins/asana/internal/asana"
	"github.com/plugboard/plugboard/plugins/sdk"
)

func main() { sdk.Serve(asana.New()) }
