package sdktest

import (
	"net"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"
)

// callRecorder stands in for a proxy. Check points the plugin process's
// HTTP_PROXY, HTTPS_PROXY and ALL_PROXY at it (and empties NO_PROXY), so an
// HTTP(S) call the plugin makes through a proxy-aware client (net/http's
// default transport, sdk.CheckHTTP with a nil client) connects here rather
// than to the service. It answers nothing: it records what the connection
// asked for and closes it, so the plugin's call fails at once. A plugin
// that dials a socket itself (a database driver) bypasses proxies and is
// not seen.
type callRecorder struct {
	ln    net.Listener
	mu    sync.Mutex
	calls []string // one per connection: what it asked for
}

// newCallRecorder listens on a loopback port until the test ends.
func newCallRecorder(t testing.TB) *callRecorder {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("sdktest: listening for the plugin's outgoing calls: %v", err)
	}
	r := &callRecorder{ln: ln}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		r.serve()
	}()
	t.Cleanup(func() {
		_ = ln.Close()
		wg.Wait()
	})
	return r
}

func (r *callRecorder) serve() {
	for {
		c, err := r.ln.Accept()
		if err != nil {
			return
		}
		// Recorded before anything is read or answered: the plugin's call
		// cannot end before the connection is closed below, so a call made
		// during a Test is recorded when the Test returns.
		r.mu.Lock()
		i := len(r.calls)
		r.calls = append(r.calls, "a connection")
		r.mu.Unlock()
		go r.handle(c, i)
	}
}

// handle reads the start of the request, records its target and closes
// the connection.
func (r *callRecorder) handle(c net.Conn, i int) {
	defer c.Close()
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	buf := make([]byte, 1024)
	n, _ := c.Read(buf)
	if target := requestTarget(string(buf[:n])); target != "" {
		r.mu.Lock()
		r.calls[i] = target
		r.mu.Unlock()
	}
}

// requestTarget names the host a proxy request is for, from its first
// line ("CONNECT host:443 HTTP/1.1" or "GET http://host/path HTTP/1.1");
// never the path or query, which may carry values.
func requestTarget(start string) string {
	line, _, _ := strings.Cut(start, "\n")
	f := strings.Fields(line)
	if len(f) < 2 {
		return ""
	}
	if f[0] == "CONNECT" {
		return f[1]
	}
	if u, err := url.Parse(f[1]); err == nil && u.Host != "" {
		return u.Host
	}
	return ""
}

// env is what the plugin process gets on top of the test's environment.
func (r *callRecorder) env() []string {
	addr := r.ln.Addr().String()
	var out []string
	for _, kv := range [][2]string{
		{"HTTP_PROXY", "http://" + addr}, {"HTTPS_PROXY", "http://" + addr},
		{"ALL_PROXY", "socks5://" + addr}, {"NO_PROXY", ""},
	} {
		out = append(out, kv[0]+"="+kv[1], strings.ToLower(kv[0])+"="+kv[1])
	}
	return out
}

// count is the number of connections so far; nil records none.
func (r *callRecorder) count() int {
	if r == nil {
		return 0
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.calls)
}

// since returns what the connections after the first n asked for.
func (r *callRecorder) since(n int) []string {
	if r == nil {
		return nil
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.calls[n:]...)
}
