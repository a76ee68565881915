package onprem

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/coder/websocket"
	"github.com/hashicorp/yamux"
)

// healthy is how long a session must last for the backoff to start over.
const healthy = 10 * time.Second

// RunAgent runs the agent side: it connects, serves streams, and reconnects
// with exponential backoff and jitter until ctx ends (then it returns nil).
// It returns ErrTokenRefused on a 401 and ErrTargetMismatch when the server
// names a target other than o.Target; both are final.
func RunAgent(ctx context.Context, o AgentOptions) error {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.MaxBackoff <= 0 {
		o.MaxBackoff = 30 * time.Second
	}
	client, endpoint, err := agentClient(o)
	if err != nil {
		return err
	}
	delay := 500 * time.Millisecond
	for {
		start := time.Now()
		err := runSession(ctx, o, client, endpoint)
		if ctx.Err() != nil {
			return nil
		}
		if errors.Is(err, ErrTokenRefused) || errors.Is(err, ErrTargetMismatch) {
			return err
		}
		switch {
		case errors.Is(err, errReplaced):
			delay = o.MaxBackoff
		case time.Since(start) >= healthy:
			delay = 500 * time.Millisecond
		}
		wait := delay/2 + rand.N(delay/2+1) // jitter: half to all of the delay
		o.Logger.Warn("plugboard agent: session ended, reconnecting", "err", err, "in", wait.Round(time.Millisecond))
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(wait):
		}
		delay = min(delay*2, o.MaxBackoff)
	}
}

var errReplaced = errors.New("a newer agent session of this resource replaced this one")

// agentClient builds the HTTP client (TLS roots) and the endpoint URL.
func agentClient(o AgentOptions) (*http.Client, string, error) {
	u, err := url.Parse(o.Server)
	if err != nil || u.Host == "" {
		return nil, "", fmt.Errorf("onprem: --server %q is not a URL such as https://plugboard.example.com", o.Server)
	}
	switch {
	case u.Scheme == "https":
	case u.Scheme == "http" && o.Insecure:
	case u.Scheme == "http":
		return nil, "", errors.New("onprem: --server is http://, which sends the token in clear; use https:// or --insecure for development")
	default:
		return nil, "", fmt.Errorf("onprem: --server scheme %q: use https://", u.Scheme)
	}
	if o.Token == "" {
		return nil, "", errors.New("onprem: no agent token: pass --token or set PLUGBOARD_AGENT_TOKEN")
	}
	cfg := &tls.Config{MinVersion: tls.VersionTLS12}
	if o.CAFile != "" {
		pem, err := os.ReadFile(o.CAFile)
		if err != nil {
			return nil, "", fmt.Errorf("onprem: --ca-file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, "", fmt.Errorf("onprem: --ca-file %s holds no PEM certificate", o.CAFile)
		}
		cfg.RootCAs = pool
	}
	tr := &http.Transport{TLSClientConfig: cfg, Proxy: http.ProxyFromEnvironment, TLSHandshakeTimeout: 10 * time.Second}
	u.Path = strings.TrimSuffix(u.Path, "/") + ConnectPath
	return &http.Client{Transport: tr}, u.String(), nil
}

// runSession holds one session until it ends.
func runSession(ctx context.Context, o AgentOptions, client *http.Client, endpoint string) error {
	dctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	ws, resp, err := websocket.Dial(dctx, endpoint, &websocket.DialOptions{
		HTTPClient: client,
		HTTPHeader: http.Header{"Authorization": {"Bearer " + o.Token}, VersionHeader: {o.Version}},
	})
	if err != nil {
		if resp != nil && resp.StatusCode == http.StatusUnauthorized {
			return ErrTokenRefused
		}
		if resp != nil {
			return fmt.Errorf("connect: the server answered %s", resp.Status)
		}
		return fmt.Errorf("connect: %w", redact(err, o.Token))
	}
	defer ws.CloseNow()
	var hi hello
	if err := readJSONMessage(dctx, ws, &hi); err != nil {
		return fmt.Errorf("hello: %w", err)
	}
	if o.Target != "" && hi.Target != o.Target {
		_ = ws.Close(closeMismatch, "the agent is pinned to another target")
		return fmt.Errorf("%w: the server names %s, the agent is pinned to %s", ErrTargetMismatch, hi.Target, o.Target)
	}
	if err := writeJSONMessage(dctx, ws, ack{OK: true}); err != nil {
		return fmt.Errorf("hello: %w", err)
	}
	rec := &recordingConn{Conn: websocket.NetConn(context.WithoutCancel(ctx), ws, websocket.MessageBinary)}
	mux, err := yamux.Server(rec, muxConfig(15*time.Second, true))
	if err != nil {
		return err
	}
	defer mux.Close()
	o.Logger.Info("plugboard agent: connected", "server", endpoint, "resource", hi.ResourceID, "target", hi.Target)
	// sctx ends with the session, closing every target connection with it.
	sctx, end := context.WithCancel(ctx)
	defer end()
	context.AfterFunc(sctx, func() { _ = mux.Close() })
	for {
		st, err := mux.AcceptStream()
		if err != nil {
			return rec.why(err)
		}
		go serveStream(sctx, o, hi.Target, st)
	}
}

// redact keeps the token out of an error that might quote the request.
func redact(err error, token string) error {
	if token == "" || !strings.Contains(err.Error(), token) {
		return err
	}
	return errors.New(strings.ReplaceAll(err.Error(), token, "[token]"))
}

// recordingConn remembers, from the first read error, the websocket close
// status and reason the server sent (read in the reading goroutine).
type recordingConn struct {
	net.Conn
	mu     sync.Mutex
	seen   bool
	status websocket.StatusCode
	reason string
	err    string
}

func (c *recordingConn) Read(b []byte) (int, error) {
	n, err := c.Conn.Read(b)
	if err != nil {
		c.mu.Lock()
		if !c.seen {
			c.seen, c.status, c.err = true, websocket.CloseStatus(err), err.Error()
			var ce websocket.CloseError
			if errors.As(err, &ce) {
				c.reason = ce.Reason
			}
		}
		c.mu.Unlock()
	}
	return n, err
}

// why says why the session ended.
func (c *recordingConn) why(err error) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	switch {
	case c.status == closeReplaced:
		return errReplaced
	case c.status != -1 && c.seen:
		return fmt.Errorf("the server closed the session (%d): %s", c.status, c.reason)
	case c.seen:
		return errors.New(c.err)
	}
	return err
}

// serveStream checks a stream's destination, dials it and copies both ways.
func serveStream(ctx context.Context, o AgentOptions, target string, st *yamux.Stream) {
	defer st.Close()
	_ = st.SetDeadline(time.Now().Add(30 * time.Second))
	var hdr streamHeader
	if err := readFrame(st, &hdr); err != nil {
		_ = writeFrame(st, streamAnswer{Code: StreamProtocol, Message: "malformed stream header"})
		return
	}
	if hdr.Dest != target || (o.Target != "" && hdr.Dest != o.Target) {
		o.Logger.Warn("plugboard agent: refused a destination other than the target", "asked", hdr.Dest, "target", target)
		_ = writeFrame(st, streamAnswer{Code: StreamForbidden, Message: fmt.Sprintf("this agent only reaches %s, not %s", target, hdr.Dest)})
		return
	}
	d := net.Dialer{Timeout: 10 * time.Second}
	c, err := d.DialContext(ctx, "tcp", target)
	if err != nil {
		code := dialCode(err)
		o.Logger.Warn("plugboard agent: target unreachable", "target", target, "code", code, "err", err)
		_ = writeFrame(st, streamAnswer{Code: code, Message: fmt.Sprintf("the agent could not reach %s: %v", target, err)})
		return
	}
	defer c.Close()
	stop := context.AfterFunc(ctx, func() { _ = c.Close() })
	defer stop()
	if err := writeFrame(st, streamAnswer{OK: true}); err != nil {
		return
	}
	_ = st.SetDeadline(time.Time{})
	pipe(c, &agentStream{st})
}

func dialCode(err error) string {
	var ne net.Error
	switch {
	case errors.Is(err, syscall.ECONNREFUSED):
		return StreamRefused
	case errors.As(err, &ne) && ne.Timeout():
		return StreamTimeout
	}
	return StreamUnreachable
}

// agentStream gives the agent's stream a CloseWrite (yamux's Close is a
// half-close: it sends FIN and keeps reading).
type agentStream struct{ *yamux.Stream }

func (a *agentStream) CloseWrite() error { return a.Stream.Close() }

var _ io.ReadWriteCloser = (*agentStream)(nil)
