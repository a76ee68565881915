package sdk_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/go-plugin"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/plugboard/plugboard/plugins/sdk"
	"github.com/plugboard/plugboard/plugins/sdk/internal/testplugin"
)

// pluginBin is the test plugin binary, built once by TestMain.
var pluginBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "sdk-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	pluginBin = filepath.Join(dir, "testplugin")
	out, err := exec.Command("go", "build", "-o", pluginBin, "./internal/testplugin/cmd/testplugin").CombinedOutput()
	if err != nil {
		fmt.Fprintf(os.Stderr, "building the test plugin: %v\n%s", err, out)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

const canary = "canary-secret-7f3a"

// syncBuffer collects the plugin's log.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// launch starts the test plugin with the host configuration DESIGN.md asks
// for, and returns the provider, the client and the plugin's log.
func launch(t *testing.T) (sdk.Provider, *plugin.Client, *syncBuffer) {
	t.Helper()
	bin, err := os.ReadFile(pluginBin)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(bin)
	logs := &syncBuffer{}
	client := plugin.NewClient(&plugin.ClientConfig{
		HandshakeConfig:  sdk.Handshake,
		Plugins:          sdk.PluginSet(),
		Cmd:              exec.Command(pluginBin),
		AllowedProtocols: []plugin.Protocol{plugin.ProtocolGRPC},
		SecureConfig:     &plugin.SecureConfig{Checksum: sum[:], Hash: sha256.New()},
		AutoMTLS:         true,
		StartTimeout:     20 * time.Second,
		Logger:           hclog.New(&hclog.LoggerOptions{Output: logs, Level: hclog.Trace}),
	})
	t.Cleanup(client.Kill)
	rpc, err := client.Client()
	if err != nil {
		t.Fatal(err)
	}
	raw, err := rpc.Dispense(sdk.PluginName)
	if err != nil {
		t.Fatal(err)
	}
	return raw.(sdk.Provider), client, logs
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return c
}

func TestDescribeRoundTripsEveryAttribute(t *testing.T) {
	p, _, _ := launch(t)
	got, err := p.Describe(ctx(t))
	if err != nil {
		t.Fatal(err)
	}
	want := testplugin.Description()
	if !reflect.DeepEqual(got, want) {
		gb, _ := json.MarshalIndent(got, "", "  ")
		wb, _ := json.MarshalIndent(want, "", "  ")
		t.Fatalf("Describe over gRPC changed the description\ngot:  %s\nwant: %s", gb, wb)
	}
	// Guard the test itself: the fixture must set every field of Input and
	// OAuth2Spec somewhere, or a dropped field would go unnoticed.
	assertEveryFieldSet(t, reflect.TypeOf(sdk.Input{}), func(yield func(reflect.Value)) {
		for _, ct := range want.ConnectionTypes {
			for _, in := range ct.Inputs {
				yield(reflect.ValueOf(in))
			}
		}
	})
	assertEveryFieldSet(t, reflect.TypeOf(sdk.OAuth2Spec{}), func(yield func(reflect.Value)) {
		yield(reflect.ValueOf(*want.ConnectionTypes[1].OAuth2))
	})
	assertEveryFieldSet(t, reflect.TypeOf(sdk.HTTPSpec{}), func(yield func(reflect.Value)) {
		yield(reflect.ValueOf(*want.ConnectionTypes[1].HTTP))
	})
	assertEveryFieldSet(t, reflect.TypeOf(sdk.ConnectionType{}), func(yield func(reflect.Value)) {
		for _, ct := range want.ConnectionTypes {
			yield(reflect.ValueOf(ct))
		}
	})
}

func assertEveryFieldSet(t *testing.T, typ reflect.Type, each func(func(reflect.Value))) {
	t.Helper()
	set := map[string]bool{}
	each(func(v reflect.Value) {
		for i := range typ.NumField() {
			if !v.Field(i).IsZero() {
				set[typ.Field(i).Name] = true
			}
		}
	})
	for i := range typ.NumField() {
		if name := typ.Field(i).Name; !set[name] {
			t.Errorf("the test plugin's description never sets %s.%s", typ.Name(), name)
		}
	}
}

func TestValidate(t *testing.T) {
	p, _, _ := launch(t)
	resp, err := p.Validate(ctx(t), &sdk.ValidateRequest{
		TypeKey: "testplugin.everything",
		Values:  map[string]string{"port": "not a number", "region": "mars", "secret": canary},
	})
	if err != nil {
		t.Fatal(err)
	}
	fields := map[string]sdk.Severity{}
	for _, d := range resp.Diagnostics {
		fields[d.Field] = d.Severity
		if strings.Contains(d.Summary+d.Detail, canary) {
			t.Errorf("diagnostic %+v leaks the secret", d)
		}
	}
	want := map[string]sdk.Severity{"host": sdk.SeverityError, "port": sdk.SeverityError, "region": sdk.SeverityError}
	if !reflect.DeepEqual(fields, want) {
		t.Errorf("diagnostics by field = %v, want %v (all: %+v)", fields, want, resp.Diagnostics)
	}

	resp, err = p.Validate(ctx(t), &sdk.ValidateRequest{TypeKey: "testplugin.everything", Values: map[string]string{"host": "db.example.com"}})
	if err != nil || len(resp.Diagnostics) != 0 {
		t.Errorf("valid values: diagnostics %+v, error %v; want none", resp, err)
	}
}

func TestUnknownTypeIsNotFound(t *testing.T) {
	p, _, _ := launch(t)
	_, err := p.Validate(ctx(t), &sdk.ValidateRequest{TypeKey: "nope.nope"})
	if !errors.Is(err, sdk.ErrUnknownType) || status.Code(err) != codes.NotFound {
		t.Fatalf("err = %v (code %s), want ErrUnknownType with code NotFound", err, status.Code(err))
	}
}

func TestTestRoundTripsTheToken(t *testing.T) {
	p, _, _ := launch(t)
	expiry := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	resp, err := p.Test(ctx(t), &sdk.TestRequest{
		TypeKey: "testplugin.oauth2",
		Values:  map[string]string{"appId": "id", "appSecret": canary},
		Token: &sdk.Token{
			AccessToken:  "good",
			TokenType:    "Bearer",
			RefreshToken: "refresh",
			Expiry:       expiry,
			Extra:        map[string]string{"team": "t1", "scope": "read"},
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	if !resp.OK {
		t.Fatalf("Test not OK: %s", resp.Message)
	}
	var got testplugin.TestReport
	if err := json.Unmarshal([]byte(resp.Message), &got); err != nil {
		t.Fatal(err)
	}
	want := testplugin.TestReport{
		TypeKey:     "testplugin.oauth2",
		ValueKeys:   []string{"appId", "appSecret"},
		TokenType:   "Bearer",
		HasAccess:   true,
		HasRefresh:  true,
		ExpiryUnix:  expiry.Unix(),
		ExtraKeys:   []string{"scope", "team"},
		HasDeadline: true,
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("the plugin saw %+v, want %+v", got, want)
	}

	resp, err = p.Test(ctx(t), &sdk.TestRequest{TypeKey: "testplugin.oauth2"})
	if err != nil || resp.OK || resp.Message != "not connected" {
		t.Errorf("no token: %+v, %v; want not OK, \"not connected\"", resp, err)
	}
}

func TestPanicBecomesAnErrorAndThePluginKeepsServing(t *testing.T) {
	p, _, logs := launch(t)
	for _, method := range []string{"Validate", "Test"} {
		values := map[string]string{"mode": testplugin.ModePanic, "secret": canary}
		var err error
		if method == "Validate" {
			_, err = p.Validate(ctx(t), &sdk.ValidateRequest{TypeKey: "testplugin.everything", Values: values})
		} else {
			_, err = p.Test(ctx(t), &sdk.TestRequest{TypeKey: "testplugin.everything", Values: values})
		}
		if status.Code(err) != codes.Internal {
			t.Fatalf("%s: err = %v, want code Internal", method, err)
		}
		if want := "plugin panicked in " + method; !strings.Contains(err.Error(), want) {
			t.Errorf("%s: err = %q, want it to say %q", method, err, want)
		}
		if strings.Contains(err.Error(), canary) {
			t.Errorf("%s: the error leaks the panic value: %q", method, err)
		}
	}
	// Still serving.
	if _, err := p.Describe(ctx(t)); err != nil {
		t.Fatalf("Describe after a panic: %v", err)
	}
	if pinger := p.(sdk.Pinger); pinger.Ping(ctx(t)) != nil {
		t.Fatal("Ping after a panic failed")
	}
	if !strings.Contains(logs.String(), "plugin panicked") {
		t.Errorf("the plugin log does not mention the panic:\n%s", logs.String())
	}
	if strings.Contains(logs.String(), canary) {
		t.Errorf("the plugin log leaks the panic value")
	}
}

func TestProviderErrorKeepsItsMessage(t *testing.T) {
	p, _, _ := launch(t)
	_, err := p.Validate(ctx(t), &sdk.ValidateRequest{TypeKey: "testplugin.everything", Values: map[string]string{"mode": testplugin.ModeError}})
	var ce *sdk.CallError
	if !errors.As(err, &ce) || ce.Method != "Validate" || status.Code(err) != codes.Unknown || !strings.Contains(err.Error(), "asked to fail") {
		t.Fatalf("err = %v, want a Validate CallError with code Unknown and the plugin's message", err)
	}
}

func TestDeadlineReachesThePlugin(t *testing.T) {
	p, _, _ := launch(t)
	c, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	_, err := p.Validate(c, &sdk.ValidateRequest{TypeKey: "testplugin.everything", Values: map[string]string{"mode": testplugin.ModeHang}})
	if status.Code(err) != codes.DeadlineExceeded || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v, want DeadlineExceeded", err)
	}
}

func TestPing(t *testing.T) {
	p, _, _ := launch(t)
	pinger, ok := p.(sdk.Pinger)
	if !ok {
		t.Fatalf("the dispensed %T is not an sdk.Pinger", p)
	}
	for range 3 {
		if err := pinger.Ping(ctx(t)); err != nil {
			t.Fatal(err)
		}
	}
}

func TestDeadPluginIsUnavailable(t *testing.T) {
	p, client, _ := launch(t)
	pid := client.ReattachConfig().Pid
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for !client.Exited() && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	_, err := p.Describe(ctx(t))
	if status.Code(err) != codes.Unavailable {
		t.Fatalf("err = %v (code %s), want code Unavailable", err, status.Code(err))
	}
	if err := p.(sdk.Pinger).Ping(ctx(t)); status.Code(err) != codes.Unavailable {
		t.Fatalf("Ping: err = %v, want code Unavailable", err)
	}
}

func TestRunByHandExplainsAndFails(t *testing.T) {
	cmd := exec.Command(pluginBin)
	cmd.Env = []string{} // no magic cookie
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	err := cmd.Run()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != 1 {
		t.Fatalf("run by hand: err = %v, want exit status 1", err)
	}
	for _, want := range []string{"testplugin is a plugboard plugin", "not meant\nto be run by hand", "plugboard plugins pin"} {
		if !strings.Contains(stderr.String(), want) {
			t.Errorf("stderr does not say %q:\n%s", want, stderr.String())
		}
	}
}

func TestDebugModeCanBeReattached(t *testing.T) {
	cmd := exec.Command(pluginBin)
	cmd.Env = append(os.Environ(), "TESTPLUGIN_DEBUG=1")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
	})

	lines := bufio.NewScanner(stdout)
	var reattach string
	for lines.Scan() {
		if v, ok := strings.CutPrefix(lines.Text(), sdk.ReattachEnv+"="); ok {
			reattach = strings.Trim(v, "'")
			break
		}
	}
	if reattach == "" {
		t.Fatal("debug mode printed no reattach line")
	}
	go func() {
		_, _ = io.Copy(io.Discard, stdout)
		exited <- cmd.Wait()
	}()
	rc, err := sdk.ParseReattachConfig(reattach)
	if err != nil {
		t.Fatal(err)
	}
	client := plugin.NewClient(&plugin.ClientConfig{
		HandshakeConfig:  sdk.Handshake,
		Plugins:          sdk.PluginSet(),
		Reattach:         rc,
		AllowedProtocols: []plugin.Protocol{plugin.ProtocolGRPC},
		Logger:           hclog.NewNullLogger(),
	})
	defer client.Kill()
	rpc, err := client.Client()
	if err != nil {
		t.Fatal(err)
	}
	raw, err := rpc.Dispense(sdk.PluginName)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := raw.(sdk.Provider).Describe(ctx(t)); err != nil {
		t.Fatal(err)
	}

	_ = cmd.Process.Signal(os.Interrupt)
	select {
	case err := <-exited:
		if err != nil {
			t.Errorf("debug plugin exited with %v after an interrupt, want status 0", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("debug plugin did not stop on an interrupt")
	}
}
