// Package sdktest checks a plugboard plugin from its author's own go test:
// it builds the plugin, launches it the way the plugboard host does (go-plugin
// over gRPC, handshake, pinned SHA-256 checksum, automatic mTLS) and checks
// its description and its answers.
//
// A plugin's whole conformance test:
//
//	package myplugin_test
//
//	import (
//		"testing"
//
//		"github.com/plugboard/plugboard/plugins/sdk/sdktest"
//	)
//
//	func TestConformance(t *testing.T) {
//		bin := sdktest.Build(t, "example.com/myplugin/cmd/myplugin")
//		sdktest.Check(t, bin)
//	}
//
// and to drive the plugin process like the host does:
//
//	func TestValidateRejectsShortKeys(t *testing.T) {
//		p := sdktest.Launch(t, sdktest.Build(t, "example.com/myplugin/cmd/myplugin"))
//		resp, err := p.Validate(context.Background(), &sdk.ValidateRequest{
//			TypeKey: "myplugin.apiKey",
//			Values:  map[string]string{"apiKey": "short"},
//		})
//		...
//	}
//
// InProcess gives the same client over an in-memory connection, without a
// build, for fast table tests; CheckProvider runs Check's checks on any
// Provider.
//
// For a plugin's own cases: CheckValidate runs a table of values against
// the ERROR diagnostics they must get; Server stands in for the service a
// Test calls and fails the test on an unexpected request; Hang is a
// handler for a service that never answers; CheckAnswer checks a Test
// answer. CheckValidate and CheckAnswer fail the test when Canary, which a
// test puts in the secrets and tokens it passes, comes back.
//
// For a type that tests through the host (sdk.ConnectionType.
// TestThroughHost), Host stands in for the plugboard host: Host.Test sends
// the plugin the values without the secret ones (Withheld) and an HTTP
// client through which each request is checked against Host.Base, gets
// the credential from Host.Inject and is sent on, never following a
// redirect.
//
// What Check checks, failing the test with one message per problem:
//
//   - every rule of sdk.ValidateDescription (unique type and input keys,
//     known enum values, patterns that compile, defaults that satisfy their
//     pattern and options, PICKLIST options, TEMPLATE slots that name inputs,
//     complete OAuth 2.0 specs, secret inputs that are PASSWORDs, ...);
//   - every input with a Pattern has a PatternMessage, the sentence a person
//     reads when a value misses the pattern (a pattern is never shown);
//   - the plugin answers a health check (Ping);
//   - for every type, Validate with no values returns diagnostics, not an
//     error, with an ERROR for each required input and fields that name
//     inputs of the type;
//   - for every type, Test with no values answers (not OK, with a message)
//     within 10 seconds, without calling out: Test must check the values
//     before it reaches a service. Check starts the plugin with
//     HTTP_PROXY, HTTPS_PROXY and ALL_PROXY pointed at a local listener
//     (NO_PROXY empty) and fails if that Test connects to it, naming the
//     host. This sees the calls of proxy-aware clients (net/http's default
//     transport, sdk.CheckHTTP with a nil client); a plugin that dials a
//     socket itself (a database driver) is only held to the deadline, and
//     CheckProvider, which has no process to watch, checks the deadline
//     only. A type that tests through the host gets a host that sends
//     nothing on; as the host checks the secret inputs, its Test may call
//     out through it when all its required inputs are secret;
//   - a canary value put in every secret input and in the token never comes
//     back in a diagnostic, message or error;
//   - Validate and Test refuse an unknown type key with sdk.ErrUnknownType.
package sdktest
