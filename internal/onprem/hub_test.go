package onprem

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// rig is a hub behind a real TLS server, a real TCP service and an agent.
type rig struct {
	hub    *Hub
	srv    *httptest.Server
	caFile string
	target string
	logs   *lockedBuffer // the hub's and the agents' logs
	mu     sync.Mutex
	events []Event
	audits []StreamRecord
}

const testToken = "pb_agent_canary_7f3c9e"

func newRig(t testing.TB, target string) *rig {
	t.Helper()
	r := &rig{target: target, logs: &lockedBuffer{}}
	r.hub = NewHub(HubOptions{
		Logger: slog.New(slog.NewTextHandler(r.logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		Authenticate: func(_ context.Context, tok string) (Agent, error) {
			if tok != testToken {
				return Agent{}, ErrBadToken
			}
			return Agent{ResourceID: 7, OrganizationID: 1, Target: r.target}, nil
		},
		Observe: func(_ context.Context, ev Event) {
			r.mu.Lock()
			r.events = append(r.events, ev)
			r.mu.Unlock()
		},
		AuditStream: func(_ context.Context, rec StreamRecord) {
			r.mu.Lock()
			r.audits = append(r.audits, rec)
			r.mu.Unlock()
		},
		Heartbeat: 200 * time.Millisecond,
	})
	mux := http.NewServeMux()
	mux.Handle(ConnectPath, r.hub)
	mux.HandleFunc(RelayPath, r.hub.ServeRelay)
	r.srv = httptest.NewTLSServer(mux)
	t.Cleanup(func() { _ = r.hub.Close(); r.srv.Close() })
	r.caFile = filepath.Join(t.TempDir(), "ca.pem")
	pemCert := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: r.srv.Certificate().Raw})
	if err := os.WriteFile(r.caFile, pemCert, 0o600); err != nil {
		t.Fatal(err)
	}
	return r
}

// agent runs RunAgent in the test process until the test ends or stop is called.
func (r *rig) agent(t testing.TB, o AgentOptions) (stop func(), done chan error) {
	t.Helper()
	o.Server, o.CAFile, o.Version = r.srv.URL, r.caFile, "test-1"
	o.Logger = slog.New(slog.NewTextHandler(r.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	if o.Token == "" {
		o.Token = testToken
	}
	ctx, cancel := context.WithCancel(context.Background())
	done = make(chan error, 1)
	go func() { done <- RunAgent(ctx, o) }()
	t.Cleanup(func() { cancel(); <-done })
	return cancel, done
}

func (r *rig) waitConnected(t testing.TB, want bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if c, _, _ := r.hub.Status(7); c == want {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("Status(7) never said connected=%v", want)
}

// echo is a real TCP echo service; it echoes until EOF, then closes.
func echo(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() { defer c.Close(); _, _ = io.Copy(c, c) }()
		}
	}()
	return ln.Addr().String()
}

func TestTunnelEchoAndAudit(t *testing.T) {
	r := newRig(t, echo(t))
	r.agent(t, AgentOptions{})
	r.waitConnected(t, true)
	if _, v, _ := r.hub.Status(7); v != "test-1" {
		t.Errorf("agent version %q", v)
	}
	c, err := r.hub.Dial(context.Background(), 7, StreamInfo{Purpose: "test", Actor: "admin", ConnectionID: 3})
	if err != nil {
		t.Fatal(err)
	}
	msg := []byte("hello through the tunnel")
	if _, err := c.Write(msg); err != nil {
		t.Fatal(err)
	}
	// Half-close: the echo sees EOF, and its whole answer still comes back.
	if err := c.(interface{ CloseWrite() error }).CloseWrite(); err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(c)
	if err != nil || !bytes.Equal(got, msg) {
		t.Fatalf("echo after half-close: %q %v", got, err)
	}
	_ = c.Close()
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.audits) != 1 {
		t.Fatalf("audits: %+v", r.audits)
	}
	a := r.audits[0]
	if a.ResourceID != 7 || a.Info.ConnectionID != 3 || a.BytesUp != int64(len(msg)) || a.BytesDown != int64(len(msg)) || a.Err != nil || a.Duration <= 0 {
		t.Errorf("audit record %+v", a)
	}
	if len(r.events) == 0 || r.events[0].Kind != Connected || r.events[0].AgentVersion != "test-1" {
		t.Errorf("events %+v", r.events)
	}
}

func TestDisconnectedAtOnce(t *testing.T) {
	r := newRig(t, echo(t))
	if _, err := r.hub.Dial(context.Background(), 7, StreamInfo{}); !errors.Is(err, ErrAgentDisconnected) {
		t.Fatalf("Dial without an agent: %v", err)
	}
	if _, err := r.hub.Forward(context.Background(), 7, StreamInfo{}); !errors.Is(err, ErrAgentDisconnected) {
		t.Fatalf("Forward without an agent: %v", err)
	}
	stop, _ := r.agent(t, AgentOptions{})
	r.waitConnected(t, true)
	stop()
	r.waitConnected(t, false)
	start := time.Now()
	if _, err := r.hub.Dial(context.Background(), 7, StreamInfo{}); !errors.Is(err, ErrAgentDisconnected) {
		t.Fatalf("Dial after the agent left: %v", err)
	}
	if d := time.Since(start); d > 100*time.Millisecond {
		t.Errorf("ErrAgentDisconnected took %v", d)
	}
}

func TestRefusals(t *testing.T) {
	target := echo(t)
	r := newRig(t, target)
	// A wrong token: 401 with the runtime read's JSON error shape, before any upgrade.
	req, _ := http.NewRequest("GET", r.srv.URL+ConnectPath, nil)
	req.Header.Set("Authorization", "Bearer wrong")
	resp, err := r.srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 401 || !strings.Contains(string(body), `"code":"UNAUTHENTICATED"`) || strings.Contains(string(body), "wrong") {
		t.Errorf("wrong token: %d %s", resp.StatusCode, body)
	}
	_, done := r.agent(t, AgentOptions{Token: "pb_agent_wrong"})
	select {
	case err := <-done:
		if !errors.Is(err, ErrTokenRefused) {
			t.Errorf("agent with a wrong token: %v", err)
		}
		done <- err
	case <-time.After(10 * time.Second):
		t.Fatal("the agent kept trying a refused token")
	}
	if c, _, _ := r.hub.Status(7); c {
		t.Error("a wrong token got a session")
	}
	// A pin other than the server's target: the agent exits.
	_, done = r.agent(t, AgentOptions{Target: "10.9.9.9:5432"})
	select {
	case err := <-done:
		if !errors.Is(err, ErrTargetMismatch) || !strings.Contains(err.Error(), target) {
			t.Errorf("pinned agent: %v", err)
		}
		done <- err
	case <-time.After(10 * time.Second):
		t.Fatal("a pinned agent accepted another target")
	}
	// A destination other than the target: the agent refuses the stream.
	r.agent(t, AgentOptions{})
	r.waitConnected(t, true)
	s := r.hub.session(7)
	_, err = r.hub.dialDest(context.Background(), s, "127.0.0.1:22", StreamInfo{})
	var se *StreamError
	if !errors.As(err, &se) || se.Code != StreamForbidden {
		t.Errorf("another destination: %v", err)
	}
	// A target that refuses: a clear connection_refused.
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	closed := ln.Addr().String()
	ln.Close()
	r.mu.Lock()
	r.target = closed
	r.mu.Unlock()
	r.hub.Cut(7) // the agent reconnects and learns the new target
	r.waitConnected(t, true)
	_, err = r.hub.Dial(context.Background(), 7, StreamInfo{})
	if !errors.As(err, &se) || se.Code != StreamRefused {
		t.Errorf("refusing target: %v", err)
	}
	// Refused streams are audited with their error; no log holds a token.
	r.mu.Lock()
	if len(r.audits) != 2 || r.audits[0].Err == nil || r.audits[1].Err == nil {
		t.Errorf("audits of refused streams: %+v", r.audits)
	}
	r.mu.Unlock()
	logs := r.logs.String()
	if strings.Contains(logs, testToken) || strings.Contains(logs, "pb_agent_wrong") || !strings.Contains(logs, "refused") {
		t.Errorf("logs:\n%s", logs)
	}
}

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func TestCutClosesLiveStreams(t *testing.T) {
	r := newRig(t, echo(t))
	r.agent(t, AgentOptions{})
	r.waitConnected(t, true)
	f, err := r.hub.Forward(context.Background(), 7, StreamInfo{Purpose: "test"})
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if !f.Addr().Addr().IsLoopback() {
		t.Errorf("the forwarder listens on %v, not on loopback", f.Addr())
	}
	c, err := net.Dial("tcp", f.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Write([]byte("ping")); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 4)
	if _, err := io.ReadFull(c, buf); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	r.hub.Cut(7)
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.Read(buf); err == nil {
		t.Fatal("a live stream survived Cut")
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("Cut took %v to close a live stream", d)
	}
}

func TestManyStreamsBigTransfers(t *testing.T) {
	r := newRig(t, echo(t))
	r.agent(t, AgentOptions{})
	r.waitConnected(t, true)
	var wg sync.WaitGroup
	errs := make(chan error, 32)
	for i := range 32 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs <- roundTrip(r.hub, 64<<10*(i+1))
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
	if err := roundTrip(r.hub, 32<<20); err != nil {
		t.Error(err)
	}
}

// roundTrip sends size random bytes through the echo and checks the sha256.
func roundTrip(h *Hub, size int) error {
	c, err := h.Dial(context.Background(), 7, StreamInfo{Purpose: "test"})
	if err != nil {
		return err
	}
	defer c.Close()
	data := make([]byte, size)
	_, _ = rand.Read(data)
	go func() {
		_, _ = c.Write(data)
		_ = c.(interface{ CloseWrite() error }).CloseWrite()
	}()
	got, err := io.ReadAll(c)
	if err != nil {
		return err
	}
	if sha256.Sum256(got) != sha256.Sum256(data) {
		return fmt.Errorf("%d bytes: got %d bytes with another sha256", size, len(got))
	}
	return nil
}

// A second agent with the same token replaces the first; the hub sees
// Connected twice, heartbeats (Seen), and the first one's Disconnected.
func TestSecondAgentReplacesFirst(t *testing.T) {
	r := newRig(t, echo(t))
	r.agent(t, AgentOptions{MaxBackoff: time.Minute})
	r.waitConnected(t, true)
	time.Sleep(500 * time.Millisecond) // a few heartbeats
	r.agent(t, AgentOptions{MaxBackoff: time.Minute})
	deadline := time.Now().Add(10 * time.Second)
	for {
		kinds := r.kinds()
		if kinds[Connected] == 2 && kinds[Disconnected] == 1 {
			if kinds[Seen] == 0 {
				t.Errorf("no heartbeat seen: %v", kinds)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("events: %v", kinds)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err := roundTrip(r.hub, 1<<10); err != nil {
		t.Fatalf("through the newer agent: %v", err)
	}
	// The replaced agent backs off (a minute) instead of taking the session back.
	time.Sleep(2 * time.Second)
	if k := r.kinds(); k[Connected] != 2 {
		t.Errorf("the replaced agent reconnected at once: %v", k)
	}
}

func (r *rig) kinds() map[EventKind]int {
	r.mu.Lock()
	defer r.mu.Unlock()
	m := map[EventKind]int{}
	for _, ev := range r.events {
		m[ev.Kind]++
	}
	return m
}
