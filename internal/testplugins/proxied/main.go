// Command proxied is a plugboard plugin for the credential proxy's tests:
// one API_KEY type per injection style, each with a "baseUrl" input that
// names the upstream (any host: the proxy's address rules decide) and the
// inputs its style injects. It is not bundled (it lives outside plugins/).
// Without Test, valid values are answered OK, so saving needs no upstream.
package main

import "github.com/plugboard/plugboard/plugins/sdk"

// The type keys.
const (
	Bearer = "proxied.bearer"
	Header = "proxied.header"
	Basic  = "proxied.basic"
	Query  = "proxied.query"
	// Legacy declares no HTTP spec, like a plugin older than protocol 1.1.
	Legacy = "proxied.legacy"
	// OnPrem is an internal API in a customer's network: its host and port
	// are onPremControlled, so a credential of it can go through an agent.
	OnPrem = "proxied.onprem"
)

func main() {
	sdk.Serve(&sdk.Plugin{Key: "proxied", Version: "0.0.1", Types: []sdk.Type{
		{ConnectionType: proxiedType(Bearer, "Bearer token", &sdk.HTTPSpec{Inject: sdk.InjectBearer, Input: "apiKey"},
			secret("apiKey"))},
		{ConnectionType: proxiedType(Header, "Header with a prefix", &sdk.HTTPSpec{
			Inject: sdk.InjectHeader, Header: "X-Api-Token", Prefix: "Token ", Input: "apiKey"}, secret("apiKey"))},
		{ConnectionType: proxiedType(Basic, "Basic auth", &sdk.HTTPSpec{
			Inject: sdk.InjectBasic, UsernameInput: "username", PasswordInput: "password"},
			sdk.Input{Key: "username", Label: "Username", Type: sdk.InputString, Required: true}, secret("password"))},
		{ConnectionType: proxiedType(Query, "Query parameter", &sdk.HTTPSpec{
			Inject: sdk.InjectQuery, QueryParam: "api_key", Input: "apiKey", RateLimitResetHeader: "X-RateLimit-Reset"},
			secret("apiKey"))},
		{ConnectionType: proxiedType(Legacy, "No HTTP spec", nil, secret("apiKey"))},
		{ConnectionType: sdk.ConnectionType{
			Key: OnPrem, Label: "Internal API", AuthKind: sdk.AuthAPIKey,
			HTTP: &sdk.HTTPSpec{BaseURL: "http://{{#host}}:{{#port}}/api", Inject: sdk.InjectBearer, Input: "apiKey"},
			Inputs: []sdk.Input{
				{Key: "host", Label: "Host", Type: sdk.InputString, Required: true, OnPremControlled: true},
				{Key: "port", Label: "Port", Type: sdk.InputNumber, Required: true, OnPremControlled: true},
				secret("apiKey"),
			},
		}},
	}})
}

func secret(key string) sdk.Input {
	return sdk.Input{Key: key, Label: key, Type: sdk.InputPassword, Secret: true, Required: true}
}

func proxiedType(key, label string, spec *sdk.HTTPSpec, inputs ...sdk.Input) sdk.ConnectionType {
	if spec != nil {
		spec.BaseURL = "{{#baseUrl}}"
	}
	return sdk.ConnectionType{
		Key: key, Label: label, AuthKind: sdk.AuthAPIKey, HTTP: spec,
		Inputs: append([]sdk.Input{{Key: "baseUrl", Label: "Base URL", Type: sdk.InputURL, Required: true}}, inputs...),
	}
}
