package sdktest

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/go-plugin"

	"github.com/plugboard/plugboard/plugins/sdk"
)

// Build compiles the main package pkg (an import path, or a path relative
// to the test's directory such as "./cmd/myplugin") into a temporary
// directory and returns the binary's path, named after the package's last
// path element. It fails the test with the compiler's output if the build
// fails.
func Build(t testing.TB, pkg string) string {
	t.Helper()
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("sdktest.Build: cannot find the go command on PATH: %v", err)
	}
	name := path.Base(filepath.ToSlash(strings.TrimRight(pkg, "/")))
	if name == "." || name == "" || name == ".." {
		name = "plugin"
	}
	bin := filepath.Join(t.TempDir(), name)
	cmd := exec.Command(goBin, "build", "-o", bin, pkg)
	var out bytes.Buffer
	cmd.Stdout = &out
	cmd.Stderr = &out
	if err := cmd.Run(); err != nil {
		t.Fatalf("sdktest.Build: go build %s: %v\n%s", pkg, err, out.String())
	}
	return bin
}

// Launch starts the plugin binary as the plugboard host does (gRPC only,
// the SDK handshake, the binary's SHA-256 pinned, automatic mTLS) and
// returns the host-side Provider, which also implements sdk.Pinger. The
// plugin's log goes to the test log; the process is killed when the test
// ends.
func Launch(t testing.TB, binary string) sdk.Provider {
	t.Helper()
	return launch(t, binary, nil)
}

// launch is Launch with env added to the plugin's environment.
func launch(t testing.TB, binary string, env []string) sdk.Provider {
	t.Helper()
	sum, err := fileSHA256(binary)
	if err != nil {
		t.Fatalf("sdktest.Launch: %v", err)
	}
	logw := &testLogWriter{t: t}
	t.Cleanup(logw.stop) // runs after Kill below: cleanups run last-in first-out
	cmd := exec.Command(binary)
	if env != nil {
		// env after the host's, which go-plugin would otherwise append
		// last (and the last value of a key wins).
		cmd.Env = append(os.Environ(), env...)
	}
	client := plugin.NewClient(&plugin.ClientConfig{
		HandshakeConfig:  sdk.Handshake,
		Plugins:          sdk.PluginSet(),
		Cmd:              cmd,
		SkipHostEnv:      env != nil,
		AllowedProtocols: []plugin.Protocol{plugin.ProtocolGRPC},
		SecureConfig:     &plugin.SecureConfig{Checksum: sum, Hash: sha256.New()},
		AutoMTLS:         true,
		StartTimeout:     30 * time.Second,
		Logger: hclog.New(&hclog.LoggerOptions{
			Name:   filepath.Base(binary),
			Level:  hclog.Debug,
			Output: logw,
		}),
	})
	t.Cleanup(client.Kill)
	rpc, err := client.Client()
	if err != nil {
		t.Fatalf("sdktest.Launch: starting plugin %s: %v", binary, err)
	}
	raw, err := rpc.Dispense(sdk.PluginName)
	if err != nil {
		t.Fatalf("sdktest.Launch: dispensing the provider of %s: %v", binary, err)
	}
	p, ok := raw.(sdk.Provider)
	if !ok {
		t.Fatalf("sdktest.Launch: plugin %s dispensed a %T, not an sdk.Provider", binary, raw)
	}
	return p
}

// InProcess serves p over an in-memory gRPC connection and returns the
// host-side Provider (also an sdk.Pinger): the same conversions and error
// handling as a launched plugin, without building or starting a process.
func InProcess(t testing.TB, p sdk.Provider) sdk.Provider {
	t.Helper()
	client, server := plugin.TestPluginGRPCConn(t, false, plugin.PluginSet{
		sdk.PluginName: &sdk.ProviderPlugin{Impl: p, Logger: hclog.NewNullLogger()},
	})
	t.Cleanup(func() {
		_ = client.Close()
		server.Stop()
	})
	raw, err := client.Dispense(sdk.PluginName)
	if err != nil {
		t.Fatalf("sdktest.InProcess: %v", err)
	}
	return raw.(sdk.Provider)
}

func fileSHA256(name string) ([]byte, error) {
	f, err := os.Open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return nil, fmt.Errorf("checksum %s: %w", name, err)
	}
	return h.Sum(nil), nil
}

// testLogWriter sends the plugin log to t.Log, and drops it once the test
// is over (t.Log then panics).
type testLogWriter struct {
	t       testing.TB
	mu      sync.Mutex
	stopped bool
}

func (w *testLogWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.stopped {
		w.t.Log(strings.TrimRight(string(p), "\n"))
	}
	return len(p), nil
}

func (w *testLogWriter) stop() {
	w.mu.Lock()
	w.stopped = true
	w.mu.Unlock()
}

// CheckDescription fails the test with one error per problem that
// sdk.ValidateDescription finds in d.
func CheckDescription(t testing.TB, d *sdk.Description) {
	t.Helper()
	err := sdk.ValidateDescription(d)
	if err == nil {
		return
	}
	var joined interface{ Unwrap() []error }
	if errors.As(err, &joined) {
		for _, e := range joined.Unwrap() {
			t.Errorf("plugin description: %v", e)
		}
		return
	}
	t.Errorf("plugin description: %v", err)
}

// Check launches the plugin binary and runs CheckProvider on it, with the
// plugin's proxy settings pointed at a recorder: a Test with no values that
// makes an HTTP(S) call fails the check.
func Check(t testing.TB, binary string) {
	t.Helper()
	rec := newCallRecorder(t)
	checkProvider(t, launch(t, binary, rec.env()), rec)
}

// callTimeout bounds every call Check makes.
const callTimeout = 10 * time.Second

// unknownType is a type key no plugin declares.
const unknownType = "sdktest.noSuchType"

// CheckProvider runs the checks of the package documentation on p, but
// for the one that needs a plugin process: that Test with no values makes
// no call (Check checks it).
func CheckProvider(t testing.TB, p sdk.Provider) {
	t.Helper()
	checkProvider(t, p, nil)
}

// checkProvider is CheckProvider; rec, if not nil, records the calls the
// plugin makes.
func checkProvider(t testing.TB, p sdk.Provider, rec *callRecorder) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), callTimeout)
	d, err := p.Describe(ctx)
	cancel()
	if err != nil {
		t.Fatalf("Describe failed: %v", err)
	}
	CheckDescription(t, d)
	checkPatternMessages(t, d)

	if pinger, ok := p.(sdk.Pinger); ok {
		ctx, cancel := context.WithTimeout(context.Background(), callTimeout)
		if err := pinger.Ping(ctx); err != nil {
			t.Errorf("Ping failed: %v", err)
		}
		cancel()
	}

	for i := range d.ConnectionTypes {
		checkType(t, p, &d.ConnectionTypes[i], rec)
	}

	if _, err := call(func(ctx context.Context) (any, error) {
		return p.Validate(ctx, &sdk.ValidateRequest{TypeKey: unknownType, Values: map[string]string{}})
	}); !errors.Is(err, sdk.ErrUnknownType) {
		t.Errorf("Validate(%q) = %v, want an error wrapping sdk.ErrUnknownType (see sdk.UnknownTypeError)", unknownType, err)
	}
	if _, err := call(func(ctx context.Context) (any, error) {
		return p.Test(ctx, &sdk.TestRequest{TypeKey: unknownType, Values: map[string]string{}})
	}); !errors.Is(err, sdk.ErrUnknownType) {
		t.Errorf("Test(%q) = %v, want an error wrapping sdk.ErrUnknownType (see sdk.UnknownTypeError)", unknownType, err)
	}
}

func call(f func(ctx context.Context) (any, error)) (any, error) {
	ctx, cancel := context.WithTimeout(context.Background(), callTimeout)
	defer cancel()
	return f(ctx)
}

func checkType(t testing.TB, p sdk.Provider, ct *sdk.ConnectionType, rec *callRecorder) {
	t.Helper()
	var required []string
	for _, in := range ct.Inputs {
		if in.Required && in.Default == "" && in.Type != sdk.InputTemplate {
			required = append(required, in.Key)
		}
	}
	checkValidateEmpty(t, p, ct, required)
	if ct.TestThroughHost {
		// The host checks the secret inputs (their values never reach
		// the plugin); Test is held to the others.
		required = slices.DeleteFunc(required, func(k string) bool { return ct.Input(k).Secret })
	}
	checkTestEmpty(t, p, ct, required, rec)
	checkSecretsStay(t, p, ct)
}

// checkValidateEmpty: Validate with no values answers diagnostics, not an
// error, with an ERROR for each required input.
func checkValidateEmpty(t testing.TB, p sdk.Provider, ct *sdk.ConnectionType, required []string) {
	t.Helper()
	res, err := call(func(ctx context.Context) (any, error) {
		return p.Validate(ctx, &sdk.ValidateRequest{TypeKey: ct.Key, Values: map[string]string{}})
	})
	if err != nil {
		t.Errorf("type %q: Validate with no values returned an error; it must return diagnostics instead: %v", ct.Key, err)
		return
	}
	ds := res.(*sdk.ValidateResponse).Diagnostics
	checkDiagnostics(t, ct, ds)
	flagged := map[string]bool{}
	for _, d := range ds {
		if d.Severity == sdk.SeverityError {
			flagged[d.Field] = true
		}
	}
	for _, key := range required {
		if !flagged[key] {
			t.Errorf("type %q: Validate with no values returned no ERROR diagnostic for the required input %q (sdk.ValidateValues does this)", ct.Key, key)
		}
	}
}

// checkTestEmpty: Test with no values answers not OK, with a message,
// within callTimeout, and calls nothing (as far as rec sees).
func checkTestEmpty(t testing.TB, p sdk.Provider, ct *sdk.ConnectionType, required []string, rec *callRecorder) {
	t.Helper()
	before := rec.count()
	req := &sdk.TestRequest{TypeKey: ct.Key, Values: map[string]string{}}
	viaHost := &refusingHost{}
	if ct.TestThroughHost {
		req.HTTP = viaHost.client()
	}
	res, err := call(func(ctx context.Context) (any, error) { return p.Test(ctx, req) })
	calls := rec.since(before)
	if len(required) > 0 || !ct.TestThroughHost {
		calls = append(calls, viaHost.list()...)
	}
	if len(calls) > 0 {
		t.Errorf("type %q: Test with no values called out (%s); Test must check the values before it reaches a service (see sdk.InvalidValues)",
			ct.Key, strings.Join(calls, ", "))
	}
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		t.Errorf("type %q: Test with no values did not answer within %s; Test must check the values before it calls out", ct.Key, callTimeout)
	case err != nil:
		t.Errorf("type %q: Test with no values returned an error; it must answer not OK with a message instead: %v", ct.Key, err)
	default:
		r := res.(*sdk.TestResponse)
		if r.OK && len(required) > 0 {
			t.Errorf("type %q: Test with no values reported OK although required inputs %v are empty", ct.Key, required)
		}
		if !r.OK && strings.TrimSpace(r.Message) == "" {
			t.Errorf("type %q: Test with no values failed without a message; say what is wrong", ct.Key)
		}
	}
}

// checkSecretsStay: a canary in every secret input and in the token never
// comes back from Validate or Test.
func checkSecretsStay(t testing.TB, p sdk.Provider, ct *sdk.ConnectionType) {
	t.Helper()
	values := map[string]string{}
	for _, in := range ct.Inputs {
		if in.Secret {
			values[in.Key] = Canary
		}
	}
	token := &sdk.Token{AccessToken: Canary, RefreshToken: Canary, TokenType: "Bearer"}
	res, err := call(func(ctx context.Context) (any, error) {
		return p.Validate(ctx, &sdk.ValidateRequest{TypeKey: ct.Key, Values: values})
	})
	if err != nil {
		checkNoCanary(t, ct.Key, "the Validate error", err.Error())
	} else {
		for _, d := range res.(*sdk.ValidateResponse).Diagnostics {
			checkNoCanary(t, ct.Key, "a Validate diagnostic", d.Summary+" "+d.Detail)
		}
	}
	res, err = call(func(ctx context.Context) (any, error) {
		return p.Test(ctx, &sdk.TestRequest{TypeKey: ct.Key, Values: values, Token: token})
	})
	if err != nil {
		checkNoCanary(t, ct.Key, "the Test error", err.Error())
	} else {
		checkNoCanary(t, ct.Key, "the Test message", res.(*sdk.TestResponse).Message)
	}
}

// checkPatternMessages: every input with a pattern says in words what it
// expects, so no one is shown the generic message (or a pattern).
func checkPatternMessages(t testing.TB, d *sdk.Description) {
	t.Helper()
	for _, ct := range d.ConnectionTypes {
		for _, in := range ct.Inputs {
			if in.Pattern != "" && strings.TrimSpace(in.PatternMessage) == "" {
				t.Errorf("type %q: input %q has a Pattern but no PatternMessage; a value that misses it would only be told %q",
					ct.Key, in.Key, in.Label+" is not in the expected format.")
			}
		}
	}
}

func checkDiagnostics(t testing.TB, ct *sdk.ConnectionType, ds []sdk.Diagnostic) {
	t.Helper()
	for _, d := range ds {
		if d.Field != "" && ct.Input(d.Field) == nil {
			t.Errorf("type %q: Validate returned a diagnostic for field %q, which is not an input of the type", ct.Key, d.Field)
		}
		if d.Severity != sdk.SeverityError && d.Severity != sdk.SeverityWarning {
			t.Errorf("type %q: Validate returned a diagnostic with severity %q, want ERROR or WARNING", ct.Key, d.Severity)
		}
		if strings.TrimSpace(d.Summary) == "" {
			t.Errorf("type %q: Validate returned a diagnostic for field %q without a summary", ct.Key, d.Field)
		}
	}
}

func checkNoCanary(t testing.TB, typeKey, where, text string) {
	t.Helper()
	if strings.Contains(text, Canary) {
		t.Errorf("type %q: %s contains the value of a secret input or token; never echo secrets", typeKey, where)
	}
}
