package onpremtest

import (
	"net"
	"os"
	"runtime"
	"testing"

	"golang.org/x/sys/unix"
)

// PrivateNamespace makes a namespace joined to the host by a veth pair, with
// nothing running in it; all is removed when the test ends. It skips when
// not root (and fails when CI=true).
func PrivateNamespace(t testing.TB) *Private {
	t.Helper()
	needNetns(t)
	p := &Private{}
	p.makeNamespace(t)
	return p
}

// Listen listens on 127.0.0.1, port 0, inside the namespace: a service of
// the test process that only a process in the namespace (the agent) can
// reach. The socket is made on a thread that joins the namespace and then
// goes back to the process's own; a thread that cannot go back is never
// unlocked, so it ends with its goroutine.
func (p *Private) Listen(t testing.TB) net.Listener {
	t.Helper()
	type result struct {
		ln  net.Listener
		err error
	}
	ch := make(chan result, 1)
	go func() {
		runtime.LockOSThread()
		ln, back, err := listenIn("/var/run/netns/" + p.Namespace)
		if back {
			runtime.UnlockOSThread()
		}
		ch <- result{ln, err}
	}()
	r := <-ch
	if r.err != nil {
		t.Fatalf("listening in namespace %s: %v", p.Namespace, r.err)
	}
	t.Cleanup(func() { _ = r.ln.Close() })
	return r.ln
}

// listenIn listens on 127.0.0.1:0 in the network namespace at path from
// the calling, locked thread, and reports whether the thread went back to
// its own namespace.
func listenIn(path string) (net.Listener, bool, error) {
	own, err := os.Open("/proc/thread-self/ns/net")
	if err != nil {
		return nil, true, err
	}
	defer own.Close()
	ns, err := os.Open(path)
	if err != nil {
		return nil, true, err
	}
	defer ns.Close()
	if err := unix.Setns(int(ns.Fd()), unix.CLONE_NEWNET); err != nil {
		return nil, true, err
	}
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	back := unix.Setns(int(own.Fd()), unix.CLONE_NEWNET) == nil
	return ln, back, err
}
