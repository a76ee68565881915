package main

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"regexp"
	"sync"
	"testing"
	"time"
)

// TestWebhookDeliveredAfterSIGKILLMidDelivery: the receiver holds the
// first attempt open; the server is killed with SIGKILL while it waits for
// the answer, and started again on the same database. Once the killed
// claim's lease (--webhook-lease 2s) runs out, the restarted server
// delivers the event, with the same webhook-id.
func TestWebhookDeliveredAfterSIGKILLMidDelivery(t *testing.T) {
	bin, pluginDir := buildServe(t)
	forEachDatabase(t, func(t *testing.T, dbURL string) {
		rc := newHoldingReceiver(t)
		data := t.TempDir()
		args := serveArgs(data, pluginDir, dbURL, "--webhook-lease", "2s")
		s, base := startServe(t, bin, args)
		var created struct {
			CreateWebhookEndpoint struct{ Secret string }
		}
		graphql(t, base, fmt.Sprintf(`mutation { createWebhookEndpoint(input: {url: %q, events: ["credential.created"]}) { secret } }`, rc.srv.URL), &created)
		seedRuntimeRead(t, base)

		first := <-rc.arrived
		_ = s.cmd.Process.Kill()
		<-s.done
		_ = s.cmd.Wait()
		killedAt := time.Now()

		startServe(t, bin, args)
		select {
		case second := <-rc.arrived:
			if second != first {
				t.Fatalf("redelivered with webhook-id %q, first %q", second, first)
			}
			t.Logf("delivered %s after the restart (lease 2s)", time.Since(killedAt).Round(time.Millisecond))
		case <-time.After(30 * time.Second):
			t.Fatal("the event was not delivered after the restart")
		}
	})
}

// startServe starts the server and waits until it is ready.
func startServe(t *testing.T, bin string, args []string) (*served, string) {
	t.Helper()
	s, line := serve(t, bin, args...)
	addr := regexp.MustCompile(`addr=(\S+)`).FindStringSubmatch(line)
	if addr == nil {
		t.Fatalf("no addr in %q", line)
	}
	base := "http://" + addr[1]
	waitReady(t, base+"/readyz")
	return s, base
}

// holdingReceiver never answers its first request (the server is killed
// waiting for it) and answers 200 to the next ones; arrived gets each
// request's webhook-id.
type holdingReceiver struct {
	srv     *httptest.Server
	arrived chan string
	release chan struct{}
	once    sync.Once
	n       int
	mu      sync.Mutex
}

func newHoldingReceiver(t *testing.T) *holdingReceiver {
	rc := &holdingReceiver{arrived: make(chan string, 16), release: make(chan struct{})}
	rc.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rc.mu.Lock()
		rc.n++
		n := rc.n
		rc.mu.Unlock()
		rc.arrived <- r.Header.Get("webhook-id")
		if n == 1 {
			select {
			case <-rc.release:
			case <-r.Context().Done():
			}
			return
		}
		w.WriteHeader(http.StatusOK)
	}))
	t.Cleanup(func() {
		rc.once.Do(func() { close(rc.release) })
		rc.srv.Close()
	})
	return rc
}
