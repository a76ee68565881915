package onpremtest

import (
	"bytes"
	"os/exec"
	"sync"
	"testing"
	"time"
)

// Output collects a process's output (an agent's stdout and stderr)
// while the test reads it.
type Output struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (o *Output) Write(p []byte) (int, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.b.Write(p)
}

func (o *Output) String() string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.b.String()
}

// Agent is a `plugboard agent` process running inside the namespace.
type Agent struct {
	// Out is the agent's stdout and stderr.
	Out  *Output
	cmd  *exec.Cmd
	done chan error // holds the process's exit once it ended
}

// StartAgent runs bin as `plugboard agent` inside p's namespace, the
// token in PLUGBOARD_AGENT_TOKEN (never on the command line) and args
// after "agent". The process is killed at the test's cleanup.
func (p *Private) StartAgent(t testing.TB, bin, token string, args ...string) *Agent {
	t.Helper()
	cmd := p.Command("env", append([]string{"PLUGBOARD_AGENT_TOKEN=" + token, bin, "agent"}, args...)...)
	a := &Agent{Out: &Output{}, cmd: cmd, done: make(chan error, 1)}
	cmd.Stdout, cmd.Stderr = a.Out, a.Out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { a.done <- cmd.Wait() }()
	t.Cleanup(a.Kill)
	return a
}

// Kill ends the agent's process, unless it has already exited.
func (a *Agent) Kill() {
	if a.cmd.ProcessState == nil {
		_ = a.cmd.Process.Kill()
		a.done <- <-a.done
	}
}

// Exited waits up to within for the agent to exit on its own and returns
// how it exited; the test fails if it is still running.
func (a *Agent) Exited(t testing.TB, within time.Duration) error {
	t.Helper()
	select {
	case err := <-a.done:
		a.done <- err
		return err
	case <-time.After(within):
		t.Fatalf("the agent kept running:\n%s", a.Out)
		return nil
	}
}
