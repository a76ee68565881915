package main

import (
	"context"
	"errors"
	"os/exec"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/plugboard/plugboard/plugins/sdk"
	"github.com/plugboard/plugboard/plugins/sdk/sdktest"
)

const pkg = "github.com/plugboard/plugboard/internal/testplugins/faulty"

func TestFaultsAsTheHostSeesThem(t *testing.T) {
	bin := sdktest.Build(t, pkg)
	sdktest.Check(t, bin)

	call := func(p sdk.Provider, method, mode string, timeout time.Duration) error {
		ctx, cancel := context.WithTimeout(context.Background(), timeout)
		defer cancel()
		values := map[string]string{"mode": mode, "secret": "canary-secret-7f3a"}
		if method == "Validate" {
			resp, err := p.Validate(ctx, &sdk.ValidateRequest{TypeKey: TypeKey, Values: values})
			if err == nil && mode == "invalid" && (len(resp.Diagnostics) != 1 || resp.Diagnostics[0].Field != "mode" || resp.Diagnostics[0].Severity != sdk.SeverityError) {
				t.Errorf("Validate invalid: diagnostics %+v, want one ERROR on mode", resp.Diagnostics)
			}
			return err
		}
		resp, err := p.Test(ctx, &sdk.TestRequest{TypeKey: TypeKey, Values: values})
		if err == nil && resp.OK != (mode == "ok" || mode == "slow") {
			t.Errorf("Test %s: %+v", mode, resp)
		}
		return err
	}

	for _, method := range []string{"Validate", "Test"} {
		p := sdktest.Launch(t, bin)
		for _, mode := range []string{"ok", "invalid", "other"} {
			if err := call(p, method, mode, 5*time.Second); err != nil {
				t.Errorf("%s %s: %v", method, mode, err)
			}
		}
		start := time.Now()
		if err := call(p, method, "slow", 5*time.Second); err != nil || time.Since(start) < SlowDelay {
			t.Errorf("%s slow: %v after %s", method, err, time.Since(start))
		}
		if err := call(p, method, "panic", 5*time.Second); status.Code(err) != codes.Internal {
			t.Errorf("%s panic: %v, want code Internal", method, err)
		}
		if err := call(p, method, "hang", 200*time.Millisecond); !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("%s hang: %v, want DeadlineExceeded", method, err)
		}
		if err := call(p, method, "crash", 5*time.Second); status.Code(err) != codes.Unavailable {
			t.Errorf("%s crash: %v, want code Unavailable", method, err)
		}
	}
}

func TestCrashOnDescribe(t *testing.T) {
	bin := sdktest.Build(t, pkg)
	t.Setenv("FAULTY_CRASH_ON_DESCRIBE", "1")
	p := sdktest.Launch(t, bin)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := p.Describe(ctx); status.Code(err) != codes.Unavailable {
		t.Fatalf("Describe: %v, want code Unavailable", err)
	}
}

func TestRunByHand(t *testing.T) {
	out, err := exec.Command(sdktest.Build(t, pkg)).CombinedOutput()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != 1 {
		t.Fatalf("run by hand: %v\n%s", err, out)
	}
}
