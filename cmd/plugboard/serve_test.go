package main

import (
	"bufio"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// buildServe builds plugboard and the asana plugin, pins the plugin, and
// returns the binary and the plugin dir.
func buildServe(t *testing.T) (bin, pluginDir string) {
	t.Helper()
	dir := t.TempDir()
	bin, pluginDir = filepath.Join(dir, "plugboard"), filepath.Join(dir, "plugins")
	for _, args := range [][]string{
		{"go", "build", "-o", bin, "."},
		{"go", "build", "-o", pluginDir + string(filepath.Separator), "github.com/plugboard/plugboard/plugins/asana"},
		{bin, "plugins", "pin", "--plugin-dir", pluginDir, "asana"},
	} {
		if out, err := exec.Command(args[0], args[1:]...).CombinedOutput(); err != nil {
			t.Fatalf("%s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	return bin, pluginDir
}

// cleanEnv is the environment without PLUGBOARD_ settings.
func cleanEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "PLUGBOARD_") {
			env = append(env, kv)
		}
	}
	return env
}

// served is a `plugboard serve` child process and its stderr lines.
type served struct {
	cmd   *exec.Cmd
	mu    sync.Mutex
	lines []string
	done  chan struct{} // closed when stderr ends
}

func (s *served) log() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return strings.Join(s.lines, "\n")
}

// serve starts bin with args and returns it with its "plugboard is
// serving" line.
func serve(t *testing.T, bin string, args ...string) (*served, string) {
	t.Helper()
	s := &served{cmd: exec.Command(bin, args...), done: make(chan struct{})}
	s.cmd.Env = cleanEnv()
	stderr, err := s.cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := s.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.cmd.Process.Kill() })
	serving := make(chan string, 1)
	go func() {
		defer close(s.done)
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			s.mu.Lock()
			s.lines = append(s.lines, sc.Text())
			s.mu.Unlock()
			if strings.Contains(sc.Text(), `msg="plugboard is serving"`) {
				serving <- sc.Text()
			}
		}
	}()
	select {
	case line := <-serving:
		return s, line
	case <-s.done:
		t.Fatalf("plugboard exited before serving:\n%s", s.log())
	case <-time.After(2 * time.Minute):
		t.Fatalf("plugboard did not start serving:\n%s", s.log())
	}
	return nil, ""
}

// The serve command says which SQLite file it serves, and on SIGTERM logs
// its shutdown with the plugins it stopped, then exits 0.
func TestServeLogsDatabaseAndSIGTERM(t *testing.T) {
	bin, pluginDir := buildServe(t)
	data := t.TempDir()
	s, line := serve(t, bin, "serve", "--data-dir", data, "--plugin-dir", pluginDir, "--addr", "127.0.0.1:0")
	if want := fmt.Sprintf("database=%q", "sqlite "+filepath.Join(data, "plugboard.db")); !strings.Contains(line, want) {
		t.Errorf("serving line %q; want %s", line, want)
	}
	addr := regexp.MustCompile(`addr=(\S+)`).FindStringSubmatch(line)
	if addr == nil {
		t.Fatalf("no addr in %q", line)
	}
	waitReady(t, "http://"+addr[1]+"/readyz")

	if err := s.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	<-s.done
	if err := s.cmd.Wait(); err != nil {
		t.Errorf("plugboard exited with %v after SIGTERM", err)
	}
	log, at := s.log(), 0
	for _, want := range []string{
		`msg="shutting down" reason="terminated signal received"`,
		`msg="plugins stopped" count=1 plugins=asana`,
		`msg="plugboard stopped"`,
	} {
		i := strings.Index(log[at:], want)
		if i < 0 {
			t.Fatalf("after SIGTERM the log lacks %s (in order):\n%s", want, log)
		}
		at += i + len(want)
	}
}

// waitReady polls url until it answers 200, for at most a minute.
func waitReady(t *testing.T, url string) {
	t.Helper()
	for range 600 {
		res, err := http.Get(url)
		if err == nil {
			res.Body.Close()
			if res.StatusCode == http.StatusOK {
				return
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("%s never answered 200", url)
}
