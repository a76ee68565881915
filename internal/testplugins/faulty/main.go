// Command faulty is a plugboard plugin that misbehaves on request, for the
// host's tests. It is not bundled (it lives outside plugins/).
//
// Its one type, faulty.echo, has the inputs "mode", "secret" (a secret) and
// "count" (a NUMBER, which the host checks).
// Validate and Test act on mode:
//
//	hang     block forever, ignoring the context (a hung plugin)
//	crash    exit the process with status 3
//	panic    panic (the SDK turns it into a codes.Internal error)
//	slow     sleep 300ms, then answer normally
//	invalid  Validate: an ERROR diagnostic on "mode"; Test: not OK
//	ok       Validate: no diagnostics; Test: OK
//	other    Validate: no diagnostics; Test: not OK
//
// With FAULTY_CRASH_ON_DESCRIBE=1 in its environment, Describe exits the
// process with status 3. With FAULTY_OVERSIZED_DESCRIBE=1, its type's
// description is longer than the host accepts.
package main

import (
	"context"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/plugboard/plugboard/plugins/sdk"
)

// TypeKey is the key of the only connection type.
const TypeKey = "faulty.echo"

// SlowDelay is how long mode "slow" takes.
const SlowDelay = 300 * time.Millisecond

type provider struct{}

func main() { sdk.Serve(provider{}) }

func (provider) Describe(context.Context) (*sdk.Description, error) {
	if os.Getenv("FAULTY_CRASH_ON_DESCRIBE") == "1" {
		os.Exit(3)
	}
	description := "Misbehaves as its mode input says; for tests."
	if os.Getenv("FAULTY_OVERSIZED_DESCRIBE") == "1" {
		description = strings.Repeat("oversized ", 500)
	}
	return &sdk.Description{
		Key:     "faulty",
		Version: "0.0.1",
		ConnectionTypes: []sdk.ConnectionType{{
			Key:         TypeKey,
			Label:       "Faulty echo",
			Description: description,
			AuthKind:    sdk.AuthCustom,
			Inputs: []sdk.Input{
				{Key: "mode", Label: "Mode", Type: sdk.InputString, Description: "hang, crash, panic, slow, invalid or ok."},
				{Key: "secret", Label: "Secret", Type: sdk.InputPassword, Secret: true},
				{Key: "count", Label: "Count", Type: sdk.InputNumber, Description: "Any number; for the host's own checks."},
			},
		}},
	}, nil
}

// misbehave acts on the modes Validate and Test share.
func misbehave(mode string) {
	switch mode {
	case "hang":
		select {} // ignores the context on purpose
	case "crash":
		os.Exit(3)
	case "panic":
		panic("faulty plugin: panic on request")
	case "slow":
		time.Sleep(SlowDelay)
	}
}

func (provider) Validate(_ context.Context, req *sdk.ValidateRequest) (*sdk.ValidateResponse, error) {
	if req.TypeKey != TypeKey {
		return nil, sdk.UnknownTypeError(req.TypeKey)
	}
	mode := req.Values["mode"]
	misbehave(mode)
	if mode == "invalid" {
		return &sdk.ValidateResponse{Diagnostics: []sdk.Diagnostic{sdk.ErrorDiag("mode", "Mode is invalid, as requested.")}}, nil
	}
	return &sdk.ValidateResponse{}, nil
}

func (provider) Test(_ context.Context, req *sdk.TestRequest) (*sdk.TestResponse, error) {
	if req.TypeKey != TypeKey {
		return nil, sdk.UnknownTypeError(req.TypeKey)
	}
	mode := req.Values["mode"]
	misbehave(mode)
	if mode == "ok" || mode == "slow" {
		return &sdk.TestResponse{OK: true, Message: "echo: ok"}, nil
	}
	return &sdk.TestResponse{OK: false, Message: fmt.Sprintf("echo: mode %q is not ok", mode)}, nil
}
