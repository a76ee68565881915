//go:build unix

package pluginhost

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/plugboard/plugboard/plugins/sdk"
)

const echoType = "faulty.echo"

func validate(t *testing.T, h *Host, mode string) (*sdk.ValidateResponse, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return h.Validate(ctx, echoType, map[string]string{"mode": mode})
}

// typeOf returns the first type key the named plugin declared.
func typeOf(t *testing.T, h *Host, plugin string) string {
	t.Helper()
	var keys []string
	for k, p := range h.Types() {
		if p == plugin {
			keys = append(keys, k)
		}
	}
	if len(keys) == 0 {
		t.Fatalf("plugin %s declared no types; types: %v", plugin, h.Types())
	}
	slices.Sort(keys)
	return keys[0]
}

func TestStartLoadsPinnedAndRefusesTheRest(t *testing.T) {
	dir := pluginDir(t, "asana", "faulty")
	installPlugin(t, dir, "faulty", "tampered")
	lock := mustPin(t, dir)
	// A pin whose binary is gone.
	lock.Plugins["ghost"] = LockEntry{SHA256: sum("ghost"), Size: 5}
	if err := lock.Write(DefaultLockPath(dir)); err != nil {
		t.Fatal(err)
	}
	// After pinning: a binary nobody pinned, and a pinned one modified.
	installPlugin(t, dir, "faulty", "stranger")
	f, err := os.OpenFile(filepath.Join(dir, "tampered"), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = f.Write([]byte{0})
	_ = f.Close()

	var described sync.Map
	h := newTestHost(t, dir, func(c *Config) {
		c.OnDescribe = func(_ context.Context, p PluginInfo, d *sdk.Description) error {
			described.Store(p.Name, d)
			return nil
		}
	})
	h.start(t)

	tests := []struct {
		name    string
		status  Status
		lastErr string
	}{
		{"asana", StatusLoaded, ""},
		{"faulty", StatusLoaded, ""},
		{"ghost", StatusDisabled, "pinned but missing"},
		{"stranger", StatusDisabled, "binary not pinned; run `plugboard plugins pin stranger`"},
		{"tampered", StatusDisabled, "sha256 mismatch"},
	}
	got := h.Plugins()
	if len(got) != len(tests) {
		t.Fatalf("Plugins() = %+v, want %d plugins", got, len(tests))
	}
	for i, tt := range tests {
		p := got[i]
		if p.Name != tt.name || p.Status != tt.status || !strings.Contains(p.LastError, tt.lastErr) || (tt.lastErr == "" && p.LastError != "") {
			t.Errorf("plugin %d = %s %s %q, want %s %s containing %q", i, p.Name, p.Status, p.LastError, tt.name, tt.status, tt.lastErr)
		}
		if slices.Contains(h.status.statuses(tt.name), tt.status) == false {
			t.Errorf("OnStatus never reported %s %s", tt.name, tt.status)
		}
	}
	for _, name := range []string{"asana", "faulty"} {
		p := h.info(t, name)
		if p.Key == "" || p.ProtocolVersion != sdk.ProtocolVersion || len(p.SHA256) != 64 || p.Path != filepath.Join(dir, name) {
			t.Errorf("%s info = %+v", name, p)
		}
		if _, ok := described.Load(name); !ok {
			t.Errorf("OnDescribe not called for %s", name)
		}
	}
	for _, name := range []string{"stranger", "tampered", "ghost"} {
		if _, ok := described.Load(name); ok {
			t.Errorf("OnDescribe called for refused plugin %s", name)
		}
	}
	for _, want := range []string{
		"plugin stranger refused: binary not pinned; run `plugboard plugins pin stranger`",
		"plugin tampered refused: sha256 mismatch",
		"plugin ghost refused: pinned but missing",
	} {
		if !strings.Contains(h.logs.String(), want) {
			t.Errorf("log lacks %q", want)
		}
	}
	if h.Ready() {
		t.Error("Ready() with a modified and a missing pinned plugin")
	}

	// Declarations are cached: types route without calling Describe again.
	if h.Types()[echoType] != "faulty" {
		t.Fatalf("Types() = %v", h.Types())
	}
	resp, err := validate(t, h.Host, "ok")
	if err != nil || len(resp.Diagnostics) != 0 {
		t.Fatalf("Validate ok = %+v, %v", resp, err)
	}
	resp, err = validate(t, h.Host, "invalid")
	if err != nil || len(resp.Diagnostics) != 1 || resp.Diagnostics[0].Field != "mode" || resp.Diagnostics[0].Severity != sdk.SeverityError {
		t.Fatalf("Validate invalid = %+v, %v", resp, err)
	}
	tr, err := h.Test(context.Background(), echoType, map[string]string{"mode": "ok"}, nil)
	if err != nil || !tr.OK {
		t.Fatalf("Test = %+v, %v", tr, err)
	}
	asanaType := typeOf(t, h.Host, "asana")
	if _, err := h.Validate(context.Background(), asanaType, map[string]string{}); err != nil {
		t.Fatalf("Validate %s: %v", asanaType, err)
	}
	if _, err := h.Validate(context.Background(), "nope.none", nil); !errors.Is(err, ErrUnknownType) {
		t.Errorf("unknown type error = %v, want ErrUnknownType", err)
	}
	if err := h.Ping(context.Background(), "faulty"); err != nil {
		t.Errorf("Ping: %v", err)
	}
	if err := h.Ping(context.Background(), "stranger"); !errors.Is(err, ErrUnavailable) {
		t.Errorf("Ping of a refused plugin = %v, want ErrUnavailable", err)
	}
	if err := h.Ping(context.Background(), "nobody"); !errors.Is(err, ErrUnknownPlugin) {
		t.Errorf("Ping of an unknown plugin = %v, want ErrUnknownPlugin", err)
	}
}

func TestReadyWhenAllPinnedLoaded(t *testing.T) {
	dir := pluginDir(t, "faulty")
	mustPin(t, dir)
	installPlugin(t, dir, "faulty", "unpinned") // does not hold readiness back
	h := newTestHost(t, dir, nil)
	if h.Ready() {
		t.Fatal("Ready() before Start")
	}
	h.start(t)
	if !h.Ready() {
		t.Fatalf("not Ready(): %+v", h.Plugins())
	}
}

func TestNoLockFileRefusesEverything(t *testing.T) {
	dir := pluginDir(t, "faulty")
	h := newTestHost(t, dir, nil)
	h.start(t)
	if p := h.info(t, "faulty"); p.Status != StatusDisabled || !strings.Contains(p.LastError, "not pinned") {
		t.Errorf("faulty = %+v", p)
	}
	if !strings.Contains(h.logs.String(), "no plugin lock file") {
		t.Error("no warning about the missing lock file")
	}
}

func TestDuplicateTypeKeyDisablesLaterPlugin(t *testing.T) {
	dir := pluginDir(t, "faulty")
	installPlugin(t, dir, "faulty", "faulty2")
	mustPin(t, dir)
	h := newTestHost(t, dir, nil)
	h.start(t)
	if p := h.info(t, "faulty"); p.Status != StatusLoaded {
		t.Errorf("faulty = %+v", p)
	}
	p := h.info(t, "faulty2")
	if p.Status != StatusDisabled || !strings.Contains(p.LastError, `connection type "faulty.echo" is already declared by plugin "faulty"`) {
		t.Errorf("faulty2 = %+v", p)
	}
	if h.Types()[echoType] != "faulty" {
		t.Errorf("Types() = %v", h.Types())
	}

	// Once the first plugin is gone, a Reload gives the type to the other.
	if err := os.Remove(filepath.Join(dir, "faulty")); err != nil {
		t.Fatal(err)
	}
	mustPin(t, dir)
	if err := h.Reload(context.Background()); err != nil {
		t.Fatal(err)
	}
	if p := h.info(t, "faulty2"); p.Status != StatusLoaded {
		t.Errorf("faulty2 after Reload = %+v", p)
	}
	if h.Types()[echoType] != "faulty2" {
		t.Errorf("Types() = %v", h.Types())
	}
}

func TestStartFailsOnUnreadableDir(t *testing.T) {
	h := newTestHost(t, filepath.Join(t.TempDir(), "missing"), nil)
	if err := h.Start(context.Background()); err == nil {
		t.Fatal("Start succeeded on a missing directory")
	}
	if h.Ready() {
		t.Error("Ready() after a failed Start")
	}
}

func TestKilledMidRequestRestarts(t *testing.T) {
	dir := pluginDir(t, "asana", "faulty")
	mustPin(t, dir)
	h := newTestHost(t, dir, func(c *Config) { c.CallTimeout = 20 * time.Second })
	h.start(t)
	pid := h.pid("faulty")
	asanaPid := h.pid("asana")

	errc := make(chan error, 1)
	go func() {
		_, err := h.Validate(context.Background(), echoType, map[string]string{"mode": "hang"})
		errc <- err
	}()
	time.Sleep(200 * time.Millisecond) // let the call reach the plugin
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	killed := time.Now()
	select {
	case err := <-errc:
		if !errors.Is(err, ErrUnavailable) {
			t.Fatalf("in-flight call error = %v, want ErrUnavailable", err)
		}
		if d := time.Since(killed); d > 2*time.Second {
			t.Errorf("in-flight call took %s to fail", d)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("in-flight call did not return after the plugin was killed")
	}

	// The other plugin is unaffected.
	if _, err := h.Validate(context.Background(), typeOf(t, h.Host, "asana"), map[string]string{}); err != nil {
		t.Errorf("asana while faulty restarts: %v", err)
	}
	waitFor(t, 5*time.Second, "faulty back LOADED", func() bool {
		p := h.info(t, "faulty")
		return p.Status == StatusLoaded && p.Restarts >= 1
	})
	if _, err := validate(t, h.Host, "ok"); err != nil {
		t.Fatalf("Validate after restart: %v", err)
	}
	if h.pid("faulty") == pid || h.pid("asana") != asanaPid {
		t.Error("wrong processes restarted")
	}
	st := h.status.statuses("faulty")
	if !slices.Equal(st[len(st)-2:], []Status{StatusCrashed, StatusLoaded}) {
		t.Errorf("faulty statuses = %v, want ... CRASHED LOADED", st)
	}
	if p := h.info(t, "asana"); p.Restarts != 0 || p.Status != StatusLoaded {
		t.Errorf("asana = %+v", p)
	}
}

func TestCrashDuringCall(t *testing.T) {
	dir := pluginDir(t, "faulty")
	mustPin(t, dir)
	h := newTestHost(t, dir, func(c *Config) { c.RestartBackoffMin = time.Second })
	h.start(t)
	if _, err := validate(t, h.Host, "crash"); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("crash error = %v, want ErrUnavailable", err)
	}
	waitFor(t, 2*time.Second, "faulty CRASHED", func() bool { return h.info(t, "faulty").Status == StatusCrashed })
	if p := h.info(t, "faulty"); p.LastError != "process exited" {
		t.Errorf("lastError = %q", p.LastError)
	}
	// While it waits to restart, calls fail at once rather than wait.
	began := time.Now()
	if _, err := validate(t, h.Host, "ok"); !errors.Is(err, ErrUnavailable) {
		t.Errorf("call while restarting = %v, want ErrUnavailable", err)
	}
	if d := time.Since(began); d > 100*time.Millisecond {
		t.Errorf("call while restarting took %s", d)
	}
	if h.Ready() {
		t.Error("Ready() while a plugin is CRASHED")
	}
	waitFor(t, 5*time.Second, "faulty back LOADED", func() bool { return h.info(t, "faulty").Status == StatusLoaded })
	if !h.Ready() {
		t.Error("not Ready() after restart")
	}
}

func TestHungPluginTimesOutAndRestarts(t *testing.T) {
	dir := pluginDir(t, "faulty")
	mustPin(t, dir)
	const timeout = 500 * time.Millisecond
	h := newTestHost(t, dir, func(c *Config) { c.CallTimeout = timeout })
	h.start(t)
	pid := h.pid("faulty")

	began := time.Now()
	_, err := validate(t, h.Host, "hang")
	took := time.Since(began)
	if !errors.Is(err, ErrTimeout) {
		t.Fatalf("hang error = %v, want ErrTimeout", err)
	}
	if took < timeout || took > timeout+time.Second {
		t.Errorf("hang returned after %s, want about %s", took, timeout)
	}
	waitFor(t, 5*time.Second, "hung process killed", func() bool { return processGone(pid) })
	waitFor(t, 5*time.Second, "faulty restarted", func() bool {
		p := h.info(t, "faulty")
		return p.Status == StatusLoaded && p.Restarts >= 1
	})
	if !slices.Contains(h.status.statuses("faulty"), StatusCrashed) {
		t.Error("hang never reported CRASHED")
	}
	if _, err := validate(t, h.Host, "ok"); err != nil {
		t.Fatalf("Validate after restart: %v", err)
	}
}

func TestCallerDeadlineDoesNotKillPlugin(t *testing.T) {
	dir := pluginDir(t, "faulty")
	mustPin(t, dir)
	h := newTestHost(t, dir, func(c *Config) { c.CallTimeout = 10 * time.Second })
	h.start(t)
	pid := h.pid("faulty")
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	_, err := h.Validate(ctx, echoType, map[string]string{"mode": "slow"})
	if !errors.Is(err, ErrTimeout) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("error = %v, want ErrTimeout and context.DeadlineExceeded", err)
	}
	if _, err := validate(t, h.Host, "ok"); err != nil || h.pid("faulty") != pid {
		t.Errorf("plugin restarted after the caller's own deadline: %v", err)
	}
}

func TestPanicIsAnErrorAndPluginKeepsServing(t *testing.T) {
	dir := pluginDir(t, "faulty")
	mustPin(t, dir)
	h := newTestHost(t, dir, nil)
	h.start(t)
	pid := h.pid("faulty")
	_, err := validate(t, h.Host, "panic")
	if !errors.Is(err, ErrPluginFailed) || errors.Is(err, ErrUnavailable) {
		t.Fatalf("panic error = %v, want ErrPluginFailed", err)
	}
	if _, err := h.Test(context.Background(), echoType, map[string]string{"mode": "panic"}, nil); !errors.Is(err, ErrPluginFailed) {
		t.Fatalf("Test panic error = %v, want ErrPluginFailed", err)
	}
	if _, err := validate(t, h.Host, "ok"); err != nil {
		t.Fatalf("Validate after panic: %v", err)
	}
	if p := h.info(t, "faulty"); p.Status != StatusLoaded || p.Restarts != 0 || h.pid("faulty") != pid {
		t.Errorf("after panic: %+v", p)
	}
	// The plugin's own log of the panic comes through slog, tagged.
	if !strings.Contains(h.logs.String(), "plugin=faulty") {
		t.Error("no plugin-tagged log lines")
	}
}

func TestCrashOnStartStaysCrashedWithBackoff(t *testing.T) {
	dir := pluginDir(t, "asana", "faulty")
	mustPin(t, dir)
	t.Setenv("FAULTY_CRASH_ON_DESCRIBE", "1")
	h := newTestHost(t, dir, func(c *Config) {
		c.RestartBackoffMin = 50 * time.Millisecond
		c.RestartBackoffMax = 200 * time.Millisecond
	})
	h.start(t)
	if p := h.info(t, "asana"); p.Status != StatusLoaded {
		t.Errorf("asana = %+v", p)
	}
	waitFor(t, 5*time.Second, "a few restart attempts", func() bool { return h.info(t, "faulty").Restarts >= 3 })
	p := h.info(t, "faulty")
	if p.Status != StatusCrashed || p.LastError == "" {
		t.Errorf("faulty = %+v, want CRASHED with a last error", p)
	}
	if h.Ready() {
		t.Error("Ready() with a crash-looping plugin")
	}
	if _, err := h.Validate(context.Background(), typeOf(t, h.Host, "asana"), map[string]string{}); err != nil {
		t.Errorf("asana while faulty crash-loops: %v", err)
	}
	// Once the cause goes away, the next attempt loads it.
	_ = os.Unsetenv("FAULTY_CRASH_ON_DESCRIBE")
	waitFor(t, 5*time.Second, "faulty LOADED", func() bool { return h.info(t, "faulty").Status == StatusLoaded })
	if _, err := validate(t, h.Host, "ok"); err != nil {
		t.Fatal(err)
	}
}

func TestOnDescribeErrorIsAFailedStart(t *testing.T) {
	dir := pluginDir(t, "faulty")
	mustPin(t, dir)
	var once sync.Once
	h := newTestHost(t, dir, func(c *Config) {
		c.OnDescribe = func(context.Context, PluginInfo, *sdk.Description) error {
			fail := false
			once.Do(func() { fail = true })
			if fail {
				return errors.New("database is down")
			}
			return nil
		}
	})
	h.start(t)
	if st := h.status.statuses("faulty"); len(st) == 0 || st[0] != StatusCrashed {
		t.Errorf("statuses = %v, want CRASHED first", st)
	}
	waitFor(t, 5*time.Second, "faulty LOADED on retry", func() bool { return h.info(t, "faulty").Status == StatusLoaded })
}

func TestReload(t *testing.T) {
	dir := pluginDir(t, "asana")
	mustPin(t, dir)
	installPlugin(t, dir, "faulty", "faulty")
	h := newTestHost(t, dir, nil)
	h.start(t)
	if p := h.info(t, "faulty"); p.Status != StatusDisabled {
		t.Fatalf("unpinned faulty = %+v", p)
	}
	asanaPid := h.pid("asana")

	// Pin the new plugin: Reload starts it and keeps asana running.
	mustPin(t, dir)
	if err := h.Reload(context.Background()); err != nil {
		t.Fatal(err)
	}
	if p := h.info(t, "faulty"); p.Status != StatusLoaded {
		t.Fatalf("faulty after pin + Reload = %+v", p)
	}
	if h.pid("asana") != asanaPid {
		t.Error("Reload restarted an unchanged plugin")
	}
	if _, err := validate(t, h.Host, "ok"); err != nil {
		t.Fatal(err)
	}
	if !h.Ready() {
		t.Errorf("not Ready(): %+v", h.Plugins())
	}

	// Replace the binary and re-pin: Reload restarts just that plugin.
	faultyPid := h.pid("faulty")
	tmpDir := t.TempDir()
	path := installPlugin(t, tmpDir, "faulty", "faulty")
	f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = f.Write([]byte{0})
	_ = f.Close()
	if err := os.Rename(path, filepath.Join(dir, "faulty")); err != nil {
		t.Fatal(err)
	}
	mustPin(t, dir)
	if err := h.Reload(context.Background()); err != nil {
		t.Fatal(err)
	}
	if p := h.info(t, "faulty"); p.Status != StatusLoaded || h.pid("faulty") == faultyPid {
		t.Fatalf("changed faulty after Reload = %+v (pid %d, was %d)", p, h.pid("faulty"), faultyPid)
	}
	waitFor(t, 5*time.Second, "old process gone", func() bool { return processGone(faultyPid) })

	// Remove it again: Reload stops it and forgets its types.
	faultyPid = h.pid("faulty")
	if err := os.Remove(filepath.Join(dir, "faulty")); err != nil {
		t.Fatal(err)
	}
	mustPin(t, dir)
	if err := h.Reload(context.Background()); err != nil {
		t.Fatal(err)
	}
	if _, ok := h.Plugin("faulty"); ok {
		t.Errorf("removed plugin still listed: %+v", h.Plugins())
	}
	if _, err := validate(t, h.Host, "ok"); !errors.Is(err, ErrUnknownType) {
		t.Errorf("removed type error = %v, want ErrUnknownType", err)
	}
	waitFor(t, 5*time.Second, "removed plugin's process gone", func() bool { return processGone(faultyPid) })
	if h.pid("asana") != asanaPid {
		t.Error("Reload restarted an unchanged plugin")
	}
}

func TestCloseKillsProcessesWithoutLeaks(t *testing.T) {
	before := runtime.NumGoroutine()
	dir := pluginDir(t, "asana", "faulty")
	mustPin(t, dir)
	h := newTestHost(t, dir, nil)
	h.start(t)
	pids := []int{h.pid("asana"), h.pid("faulty")}
	for _, pid := range pids {
		if pid == 0 || processGone(pid) {
			t.Fatalf("pids %v not running", pids)
		}
	}
	if err := h.Close(); err != nil {
		t.Fatal(err)
	}
	if err := h.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	for _, pid := range pids {
		if !processGone(pid) {
			t.Errorf("process %d still exists after Close", pid)
		}
	}
	if _, err := validate(t, h.Host, "ok"); !errors.Is(err, ErrUnavailable) {
		t.Errorf("call after Close = %v, want ErrUnavailable", err)
	}
	if h.Ready() {
		t.Error("Ready() after Close")
	}
	if err := h.Reload(context.Background()); err == nil {
		t.Error("Reload after Close succeeded")
	}
	waitFor(t, 5*time.Second, "goroutines to wind down", func() bool { return runtime.NumGoroutine() <= before })
}

func TestSecretsNeverInErrorsOrLogs(t *testing.T) {
	const canary = "canary-s3cr3t-8f2a61d4"
	dir := pluginDir(t, "faulty")
	mustPin(t, dir)
	h := newTestHost(t, dir, func(c *Config) {
		c.CallTimeout = 500 * time.Millisecond
		c.TestTimeout = 500 * time.Millisecond
	})
	h.start(t)

	var errs []error
	for _, mode := range []string{"ok", "invalid", "panic", "hang", "crash"} {
		waitFor(t, 5*time.Second, "faulty LOADED", func() bool { return h.info(t, "faulty").Status == StatusLoaded })
		values := map[string]string{"mode": mode, "secret": canary}
		_, err := h.Validate(context.Background(), echoType, values)
		errs = append(errs, err)
		waitFor(t, 5*time.Second, "faulty LOADED", func() bool { return h.info(t, "faulty").Status == StatusLoaded })
		tok := &sdk.Token{AccessToken: canary, RefreshToken: canary}
		_, err = h.Test(context.Background(), echoType, values, tok)
		errs = append(errs, err)
	}
	waitFor(t, 5*time.Second, "faulty LOADED", func() bool { return h.info(t, "faulty").Status == StatusLoaded })
	_ = h.Close()
	failures := 0
	for _, err := range errs {
		if err != nil {
			failures++
			if strings.Contains(err.Error(), canary) {
				t.Errorf("error leaks the secret: %v", err)
			}
		}
	}
	if failures < 6 {
		t.Errorf("only %d calls failed: %v", failures, errs)
	}
	for _, p := range h.Plugins() {
		if strings.Contains(p.LastError, canary) {
			t.Errorf("lastError leaks the secret: %q", p.LastError)
		}
	}
	logs := h.logs.String()
	if strings.Contains(logs, canary) {
		t.Errorf("log leaks the secret:\n%s", logs)
	}
	if !strings.Contains(logs, "plugin=faulty") {
		t.Error("log capture saw no plugin records")
	}
}

func TestRedact(t *testing.T) {
	tests := []struct {
		msg     string
		secrets []string
		want    string
	}{
		{"bad key abcdef", []string{"abcdef"}, "bad key [redacted]"},
		{"bad key abcdef", []string{"abcdef", "abc"}, "bad key [redacted]"},
		{"nothing here", []string{"secret"}, "nothing here"},
	}
	for _, tt := range tests {
		if got := redact(tt.msg, tt.secrets); got != tt.want {
			t.Errorf("redact(%q) = %q, want %q", tt.msg, got, tt.want)
		}
	}
	s := requestSecrets(
		map[string]string{"short": "abc", "secret": "abcdef", "plain": "abcdefgh", "mode": "panic", "pw": "abc"},
		map[string]bool{"secret": true, "pw": true},
		&sdk.Token{AccessToken: "tokentoken"})
	if !slices.Equal(s, []string{"tokentoken", "abcdefgh", "abcdef"}) {
		t.Errorf("requestSecrets = %v", s)
	}
}

func TestBackoff(t *testing.T) {
	h := New(Config{RestartBackoffMin: 200 * time.Millisecond, RestartBackoffMax: 30 * time.Second})
	defer func() { _ = h.Close() }()
	tests := []struct {
		failures int
		want     time.Duration
	}{
		{1, 200 * time.Millisecond},
		{2, 400 * time.Millisecond},
		{5, 3200 * time.Millisecond},
		{8, 25600 * time.Millisecond},
		{9, 30 * time.Second},
		{100, 30 * time.Second},
	}
	for _, tt := range tests {
		if got := h.backoff(tt.failures); got != tt.want {
			t.Errorf("backoff(%d) = %s, want %s", tt.failures, got, tt.want)
		}
	}
}

func TestNotAPluginIsCrashedNotFatal(t *testing.T) {
	dir := pluginDir(t, "faulty")
	writeFile(t, filepath.Join(dir, "script"), "#!/bin/sh\necho not a plugin\n", 0o755)
	writeFile(t, filepath.Join(dir, "silent"), "#!/bin/sh\nsleep 30\n", 0o755)
	mustPin(t, dir)
	h := newTestHost(t, dir, func(c *Config) {
		// The working plugin starts under the same timeout as the broken ones:
		// it must be long enough for a real plugin on a loaded machine (300 ms
		// was not), and plugins start concurrently, so "silent" costs it once.
		c.StartTimeout = 5 * time.Second
		c.RestartBackoffMin = 10 * time.Second // one attempt is enough here
	})
	h.start(t)
	for _, name := range []string{"script", "silent"} {
		if p := h.info(t, name); p.Status != StatusCrashed || !strings.HasPrefix(p.LastError, "start: ") {
			t.Errorf("%s = %+v, want CRASHED with a start error", name, p)
		}
	}
	if _, err := validate(t, h.Host, "ok"); err != nil {
		t.Errorf("faulty next to broken plugins: %v", err)
	}
}
