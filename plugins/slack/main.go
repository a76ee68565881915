// Command slack is the bundled plugboard plugin for Slack: OAuth 2.0 (v2)
// apps.
package main

import (
	"github.com/plugboard/plugboard/plugins/sdk"
	"github.com/plugboard/plugboard/plugins/slack/internal/slack"
)

func main() { sdk.Serve(slack.New()) }
