package onprem

import (
	"bytes"
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"io"
	"net/http"
	"sync"
	"testing"
	"time"
)

// sealer is the key two replicas share, and every ticket it sealed.
type sealer struct {
	aead   cipher.AEAD
	mu     sync.Mutex
	sealed [][]byte
}

func newSealer(t testing.TB) *sealer {
	t.Helper()
	key := make([]byte, 32)
	_, _ = rand.Read(key)
	block, err := aes.NewCipher(key)
	if err != nil {
		t.Fatal(err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		t.Fatal(err)
	}
	return &sealer{aead: aead}
}

func (s *sealer) seal(_ context.Context, b []byte) ([]byte, error) {
	nonce := make([]byte, s.aead.NonceSize())
	_, _ = rand.Read(nonce)
	out := s.aead.Seal(nonce, nonce, b, nil)
	s.mu.Lock()
	s.sealed = append(s.sealed, out)
	s.mu.Unlock()
	return out, nil
}

func (s *sealer) open(_ context.Context, b []byte) ([]byte, error) {
	n := s.aead.NonceSize()
	if len(b) < n {
		return nil, errors.New("short")
	}
	return s.aead.Open(nil, b[:n], b[n:], nil)
}

func (s *sealer) last() []byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.sealed[len(s.sealed)-1]
}

const replicaB = "https://replica-b.internal"

// relayPair is replica A (the rig: the agent's session, its TLS server)
// and a replica B that holds no session and relays through A.
func relayPair(t testing.TB, target string) (a *rig, b *Hub, keys *sealer) {
	t.Helper()
	keys = newSealer(t)
	a = newRig(t, target)
	a.hub.o.Relay = &RelayOptions{Self: a.srv.URL, Seal: keys.seal, Open: keys.open,
		Locate: func(context.Context, int) (string, error) { return a.srv.URL, nil }}
	b = NewHub(HubOptions{
		Authenticate: func(context.Context, string) (Agent, error) { return Agent{}, ErrBadToken },
		Relay: &RelayOptions{Self: replicaB, Seal: keys.seal, Open: keys.open, Client: a.srv.Client(),
			Locate: func(context.Context, int) (string, error) { return a.srv.URL, nil }},
	})
	t.Cleanup(func() { _ = b.Close() })
	return a, b, keys
}

// TestRelayedStream: replica B, holding no session, opens a stream of the
// resource through replica A, which holds the agent's session: bytes flow
// both ways with half-close, A audits the stream once with who it was for and the replica
// that asked, and a Cut on A ends B's live stream.
func TestRelayedStream(t *testing.T) {
	a, b, _ := relayPair(t, echo(t))
	a.agent(t, AgentOptions{})
	a.waitConnected(t, true)
	if !b.Reachable(context.Background(), 7) {
		t.Fatal("B does not see the session A holds")
	}
	c, err := b.Dial(context.Background(), 7, StreamInfo{Purpose: "test", Actor: "token:9", ConnectionID: 3, CredentialID: 4})
	if err != nil {
		t.Fatal(err)
	}
	msg := bytes.Repeat([]byte("relayed "), 40000) // 320 kB: many websocket messages
	go func() {
		_, _ = c.Write(msg)
		// Half-close: the echo sees EOF, and its whole answer still comes back.
		_ = c.(interface{ CloseWrite() error }).CloseWrite()
	}()
	got, err := io.ReadAll(c)
	if err != nil || !bytes.Equal(got, msg) {
		t.Fatalf("echo through the relay after a half-close: %d bytes, %v", len(got), err)
	}
	_ = c.Close()
	rec := waitAudit(t, a, 1)
	if rec.Info.Via != replicaB || rec.Info.Actor != "token:9" || rec.Info.CredentialID != 4 || rec.BytesUp != int64(len(msg)) || rec.BytesDown != int64(len(msg)) {
		t.Fatalf("the relayed stream's audit record: %+v", rec)
	}

	c, err = b.Dial(context.Background(), 7, StreamInfo{Purpose: "runtime"})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Write([]byte("ping")); err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadFull(c, make([]byte, 4)); err != nil {
		t.Fatal(err)
	}
	a.hub.Cut(7)
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.Read(make([]byte, 1)); err == nil {
		t.Fatal("a relayed stream survived the Cut on the holder")
	}
}

// waitAudit waits until a's hub audited n streams and returns the last.
func waitAudit(t *testing.T, a *rig, n int) StreamRecord {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		a.mu.Lock()
		got := append([]StreamRecord(nil), a.audits...)
		a.mu.Unlock()
		if len(got) >= n {
			return got[len(got)-1]
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d stream audit records, want %d", len(got), n)
		}
	}
}

// TestRelayRefusals: without a session anywhere B answers
// ErrAgentDisconnected, and so it does when the holder cannot be reached;
// the agent's refusal comes back as its *StreamError; the holder refuses
// a request without a ticket, with a forged one, and a ticket used twice.
func TestRelayRefusals(t *testing.T) {
	a, b, keys := relayPair(t, "127.0.0.1:1") // nothing listens there
	if _, err := b.Dial(context.Background(), 7, StreamInfo{}); !errors.Is(err, ErrAgentDisconnected) {
		t.Fatalf("relayed Dial without a session: %v", err)
	}
	if _, err := b.Forward(context.Background(), 7, StreamInfo{}); err != nil {
		t.Fatalf("B forwards while the holder is named: %v", err)
	}
	a.agent(t, AgentOptions{})
	a.waitConnected(t, true)
	var se *StreamError
	if _, err := b.Dial(context.Background(), 7, StreamInfo{}); !errors.As(err, &se) || se.Code != StreamRefused {
		t.Fatalf("relayed Dial to a closed target: %v", err)
	}
	used := keys.last()
	for name, header := range map[string]string{
		"no ticket":   "",
		"forged":      base64.RawURLEncoding.EncodeToString(bytes.Repeat([]byte{7}, 80)),
		"used before": base64.RawURLEncoding.EncodeToString(used),
	} {
		req, _ := http.NewRequest(http.MethodGet, a.srv.URL+RelayPath, nil)
		if header != "" {
			req.Header.Set(RelayHeader, header)
		}
		res, err := a.srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != http.StatusUnauthorized {
			t.Errorf("%s: %d, want 401", name, res.StatusCode)
		}
	}
	gone := NewHub(HubOptions{
		Authenticate: func(context.Context, string) (Agent, error) { return Agent{}, ErrBadToken },
		Relay: &RelayOptions{Self: replicaB, Seal: keys.seal, Open: keys.open,
			Locate: func(context.Context, int) (string, error) { return "http://127.0.0.1:1", nil }},
	})
	defer gone.Close()
	if _, err := gone.Dial(context.Background(), 7, StreamInfo{}); !errors.Is(err, ErrAgentDisconnected) {
		t.Fatalf("Dial through an unreachable holder: %v", err)
	}
}
