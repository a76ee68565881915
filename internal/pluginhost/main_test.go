//go:build unix

package pluginhost

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// binDir holds the real plugin binaries built once for the whole package.
var binDir string

func TestMain(m *testing.M) {
	os.Exit(runTests(m))
}

func runTests(m *testing.M) int {
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		fmt.Fprintf(os.Stderr, "go env GOMOD: %v\n", err)
		return 1
	}
	root := filepath.Dir(strings.TrimSpace(string(out)))
	dir, err := os.MkdirTemp("", "pluginhost-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer func() { _ = os.RemoveAll(dir) }()
	build := exec.Command("go", "build", "-o", dir+string(filepath.Separator), "./plugins/asana", "./internal/testplugins/faulty")
	build.Dir = root
	if out, err := build.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "build test plugins: %v\n%s", err, out)
		return 1
	}
	binDir = dir
	return m.Run()
}

// installPlugin copies the built plugin src into dir as name.
func installPlugin(t testing.TB, dir, src, name string) string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(binDir, src))
	if err != nil {
		t.Fatal(err)
	}
	// Write aside and rename, as an installer would: a running binary
	// cannot be overwritten in place.
	path := filepath.Join(dir, name)
	tmp := filepath.Join(dir, ".installing-"+name)
	if err := os.WriteFile(tmp, data, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
	return path
}

// pluginDir makes a plugin directory holding the named built plugins.
func pluginDir(t testing.TB, names ...string) string {
	t.Helper()
	dir := t.TempDir()
	for _, n := range names {
		installPlugin(t, dir, n, n)
	}
	return dir
}

func mustPin(t testing.TB, dir string) *Lock {
	t.Helper()
	l, err := Pin(dir, "")
	if err != nil {
		t.Fatalf("Pin: %v", err)
	}
	return l
}

// syncBuffer is a bytes.Buffer safe for the concurrent writes of a slog
// handler.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// statusLog records OnStatus calls.
type statusLog struct {
	mu     sync.Mutex
	events []PluginInfo
}

func (s *statusLog) add(_ context.Context, p PluginInfo) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.events = append(s.events, p)
}

func (s *statusLog) statuses(name string) []Status {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []Status
	for _, e := range s.events {
		if e.Name == name {
			out = append(out, e.Status)
		}
	}
	return out
}

type testHost struct {
	*Host
	logs   *syncBuffer
	status *statusLog
}

// newTestHost builds a Host over dir with fast timings, logging everything
// (trace level) into a buffer. It is closed when the test ends.
func newTestHost(t testing.TB, dir string, tweak func(*Config)) *testHost {
	t.Helper()
	logs := &syncBuffer{}
	var w io.Writer = logs
	if testing.Verbose() && os.Getenv("PLUGINHOST_TEST_LOG") != "" {
		w = io.MultiWriter(logs, os.Stderr)
	}
	st := &statusLog{}
	cfg := Config{
		Dir:               dir,
		Logger:            slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slogTrace})),
		StartTimeout:      5 * time.Second,
		CallTimeout:       2 * time.Second,
		TestTimeout:       2 * time.Second,
		RestartBackoffMin: 50 * time.Millisecond,
		RestartBackoffMax: 500 * time.Millisecond,
		OnStatus:          st.add,
	}
	if tweak != nil {
		tweak(&cfg)
	}
	h := New(cfg)
	t.Cleanup(func() { _ = h.Close() })
	return &testHost{Host: h, logs: logs, status: st}
}

func (h *testHost) start(t testing.TB) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := h.Start(ctx); err != nil {
		t.Fatalf("Start: %v", err)
	}
}

func (h *testHost) info(t testing.TB, name string) PluginInfo {
	t.Helper()
	p, ok := h.Plugin(name)
	if !ok {
		t.Fatalf("plugin %q not known; have %+v", name, h.Plugins())
	}
	return p
}

// pid returns the process id of a running plugin, or 0.
func (h *Host) pid(name string) int {
	h.mu.RLock()
	m := h.plugins[name]
	h.mu.RUnlock()
	if m == nil {
		return 0
	}
	inst, _ := m.current()
	if inst == nil {
		return 0
	}
	return inst.pid
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t testing.TB, within time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", within, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// processGone reports whether no process with pid exists any more.
func processGone(pid int) bool {
	return syscall.Kill(pid, 0) == syscall.ESRCH
}
