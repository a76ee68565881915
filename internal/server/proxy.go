package server

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"strings"
	"sync"
	"time"

	"github.com/plugboard/plugboard/graph"
	"github.com/plugboard/plugboard/internal/connection"
	"github.com/plugboard/plugboard/internal/egress"
	"github.com/plugboard/plugboard/internal/globalid"
)

// ProxySource is what the credential proxy needs of the domain: a
// credential resolved for a call, and the audit of each call.
// connection.Service implements it.
type ProxySource interface {
	ResolveProxy(ctx context.Context, id int) (*connection.ProxyTarget, error)
	AuditProxyCall(ctx context.Context, t *connection.ProxyTarget, call connection.ProxyCall) error
}

// Error codes of the credential proxy, besides the runtime read's.
const (
	CodeProxyDenied         = "PROXY_DENIED"
	CodeUpstreamUnavailable = "UPSTREAM_UNAVAILABLE"
	CodePayloadTooLarge     = "PAYLOAD_TOO_LARGE"
)

// Limits of a proxied call.
const (
	// MaxProxyRequest bounds a proxied request's body.
	MaxProxyRequest = 10 << 20
	// MaxProxyAnswer bounds a proxied answer's body.
	MaxProxyAnswer = 50 << 20
	// proxyCallTimeout bounds one proxied call, retries excluded.
	proxyCallTimeout = 60 * time.Second
	// maxRetryBudget bounds Plugboard-Retry-Budget.
	maxRetryBudget = 60 * time.Second
)

// proxyPrefix is the path of the proxy up to the credential id.
const proxyPrefix = "/proxy/v1/credentials/"

// credentialProxy serves ANY /proxy/v1/credentials/{id}/{path...}: the call
// goes to the credential type's API with the credential injected, and the
// answer comes back as the upstream sent it. The domain decides who may
// call and with what (connection.ResolveProxy); this handler is HTTP only.
type credentialProxy struct {
	src     ProxySource
	log     *slog.Logger
	metrics *Metrics
	// transports pools connections per address policy (one per policy,
	// each pooling per upstream host).
	transports sync.Map // egress.Policy → *http.Transport
	errorLog   *slog.Logger
}

func newCredentialProxy(src ProxySource, log *slog.Logger, m *Metrics) *credentialProxy {
	return &credentialProxy{src: src, log: log, metrics: m, errorLog: log.With("component", "proxy")}
}

// transport is the pooled transport of policy p.
func (p *credentialProxy) transport(pol egress.Policy) http.RoundTripper {
	if t, ok := p.transports.Load(pol); ok {
		return t.(*http.Transport)
	}
	t, _ := p.transports.LoadOrStore(pol, egress.NewTransport(pol, egress.ClientOptions{MaxIdleConnsPerHost: 256}))
	return t.(*http.Transport)
}

// callTransport is the transport of one call to t: the pooled one of its
// policy or, for a credential bound to an on-prem resource, one whose
// connections are streams through the resource's agent. Those are never
// pooled: two customers' targets may share a name, and each stream is
// audited with its call.
func (p *credentialProxy) callTransport(t *connection.ProxyTarget) http.RoundTripper {
	if t.OnPrem == nil {
		return p.transport(t.Policy)
	}
	tr := p.transport(t.Policy).(*http.Transport).Clone()
	tr.DialContext = func(ctx context.Context, _, _ string) (net.Conn, error) { return t.OnPrem(ctx) }
	tr.DisableKeepAlives = true
	tr.ForceAttemptHTTP2 = false
	return tr
}

// proxyCall is one proxied call in flight.
type proxyCall struct {
	target  *connection.ProxyTarget
	method  string
	rest    string // upstream path below the base, escaped
	opts    retryOptions
	start   time.Time
	retries int
	status  int
}

func (p *credentialProxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	rec := &statusRecorder{ResponseWriter: w, status: http.StatusOK}
	typeKey := p.serve(rec, r, start)
	p.metrics.proxyCalls.WithLabelValues(typeKey, codeLabel(rec.status)).Observe(time.Since(start).Seconds())
}

// serve answers r and returns the type key for the metrics ("" when the
// credential was not resolved).
func (p *credentialProxy) serve(w http.ResponseWriter, r *http.Request, start time.Time) string {
	ctx := r.Context()
	if err := connection.MayProxy(ctx); err != nil {
		refuseRuntimeRead(w, err)
		return ""
	}
	id, rest, opts, status, msg := parseProxyCall(r)
	if status != 0 {
		writeRuntimeError(w, status, proxyCodes[status], msg)
		return ""
	}
	target, err := p.src.ResolveProxy(ctx, id)
	if err != nil {
		p.writeResolveFailure(w, id, err)
		return ""
	}
	call := &proxyCall{target: target, method: r.Method, rest: rest, opts: opts, start: start}
	if err := call.prepareBody(r); err != nil {
		writeRuntimeError(w, http.StatusRequestEntityTooLarge, CodePayloadTooLarge, "the request body is larger than 10 MiB")
		return target.TypeKey
	}
	p.reverseProxy(call).ServeHTTP(w, r)
	return target.TypeKey
}

// proxyCodes are the error codes of the request's own faults.
var proxyCodes = map[int]string{
	http.StatusNotFound:              graph.CodeNotFound,
	http.StatusBadRequest:            graph.CodeValidationFailed,
	http.StatusRequestEntityTooLarge: CodePayloadTooLarge,
}

// parseProxyCall reads the credential id, the upstream path and the retry
// headers of r; a non-zero status and its message when they are not
// usable.
func parseProxyCall(r *http.Request) (int, string, retryOptions, int, string) {
	id, err := globalid.Decode(r.PathValue("id"))
	if err != nil {
		return 0, "", retryOptions{}, http.StatusNotFound, "not found"
	}
	rest := proxyRest(r.URL.EscapedPath())
	if rest == "" {
		return 0, "", retryOptions{}, http.StatusBadRequest, "the path has a \".\" or \"..\" segment"
	}
	opts, msg := parseRetryOptions(r.Header)
	if msg != "" {
		return 0, "", retryOptions{}, http.StatusBadRequest, msg
	}
	if r.ContentLength > MaxProxyRequest {
		return 0, "", retryOptions{}, http.StatusRequestEntityTooLarge, "the request body is larger than 10 MiB"
	}
	return id, rest, opts, 0, ""
}

// proxyRest is the escaped path after /proxy/v1/credentials/{id}, starting
// with "/"; "" when a segment is "." or "..", which could climb out of the
// type's base path.
func proxyRest(escaped string) string {
	after := strings.TrimPrefix(escaped, proxyPrefix)
	rest := "/"
	if i := strings.IndexByte(after, '/'); i >= 0 {
		rest = after[i:]
	}
	for _, seg := range strings.Split(rest, "/") {
		switch strings.ToLower(seg) {
		case ".", "..", "%2e", "%2e%2e", ".%2e", "%2e.":
			return ""
		}
	}
	return rest
}

// prepareBody bounds the request body; when the call may be sent again (a
// 401 of an OAuth 2.0 credential, a retry budget) it reads it first so it
// can be replayed, otherwise it streams.
func (c *proxyCall) prepareBody(r *http.Request) error {
	if r.Body == nil || r.Body == http.NoBody {
		return nil
	}
	limited := http.MaxBytesReader(nil, r.Body, MaxProxyRequest)
	if !c.target.IsOAuth() && c.opts.budget == 0 {
		r.Body = limited
		return nil
	}
	body, err := io.ReadAll(limited)
	if err != nil {
		return err
	}
	r.Body = io.NopCloser(bytes.NewReader(body))
	r.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(body)), nil }
	r.ContentLength = int64(len(body))
	return nil
}

// reverseProxy is the reverse proxy of one call.
func (p *credentialProxy) reverseProxy(c *proxyCall) *httputil.ReverseProxy {
	return &httputil.ReverseProxy{
		Rewrite:        c.rewrite,
		Transport:      &callTransport{call: c, next: p.callTransport(c.target)},
		ModifyResponse: func(res *http.Response) error { return p.answered(c, res) },
		ErrorHandler:   func(w http.ResponseWriter, r *http.Request, err error) { p.failed(w, r, c, err) },
		ErrorLog:       slog.NewLogLogger(p.errorLog.Handler(), slog.LevelDebug),
	}
}

// rewrite aims the outgoing request at the upstream: the base URL and the
// path below it, the caller's query; the caller's Authorization and
// Plugboard-* headers stay here (hop-by-hop ones are dropped by
// httputil.ReverseProxy).
func (c *proxyCall) rewrite(pr *httputil.ProxyRequest) {
	base, out := c.target.Base, pr.Out
	out.URL.Scheme, out.URL.Host = base.Scheme, base.Host
	out.URL.RawPath = base.EscapedPath() + c.rest
	if p, err := pathUnescape(out.URL.RawPath); err == nil {
		out.URL.Path = p
	}
	out.URL.RawQuery = pr.In.URL.RawQuery
	out.Host = ""
	out.Header.Del("Authorization")
	for k := range out.Header {
		if strings.HasPrefix(k, "Plugboard-") {
			delete(out.Header, k)
		}
	}
}

// answered audits a call the upstream answered, before the answer is sent,
// and tells the caller how many retries it took.
func (p *credentialProxy) answered(c *proxyCall, res *http.Response) error {
	c.status = res.StatusCode
	res.Header.Set("Plugboard-Proxy-Retries", itoa(c.retries))
	return p.audit(res.Request.Context(), c, "")
}

// audit records call c; outcome is the error code of a failed call.
func (p *credentialProxy) audit(ctx context.Context, c *proxyCall, outcome string) error {
	err := p.src.AuditProxyCall(context.WithoutCancel(ctx), c.target, connection.ProxyCall{
		Method: c.method, Path: c.target.Base.EscapedPath() + c.rest, Status: c.status, Outcome: outcome,
		Duration: time.Since(c.start), Retries: c.retries,
	})
	if err != nil {
		return &auditError{err: err}
	}
	return nil
}

// auditError is an audit that could not be written: the call is answered
// 500, never without its audit row.
type auditError struct{ err error }

func (e *auditError) Error() string { return "audit: " + e.err.Error() }

// failed answers a call that got no usable answer, in the runtime read's
// JSON error shape.
func (p *credentialProxy) failed(w http.ResponseWriter, r *http.Request, c *proxyCall, err error) {
	var ae *auditError
	if errors.As(err, &ae) {
		p.log.Error("proxy: audit", "credential", c.target.Credential.ID, "err", ae.err)
		writeRuntimeError(w, http.StatusInternalServerError, graph.CodeInternal, "internal error")
		return
	}
	status, code, msg := proxyFailure(err)
	c.status = status
	if aerr := p.audit(r.Context(), c, code); aerr != nil {
		p.log.Error("proxy: audit", "credential", c.target.Credential.ID, "err", aerr)
		writeRuntimeError(w, http.StatusInternalServerError, graph.CodeInternal, "internal error")
		return
	}
	p.log.Info("proxy: call failed", "credential", c.target.Credential.ID, "type", c.target.TypeKey,
		"code", code, "err", redactURLs(err))
	w.Header().Set("Plugboard-Proxy-Retries", itoa(c.retries))
	writeRuntimeError(w, status, code, msg)
}

// writeResolveFailure answers a credential that cannot be used for a call.
func (p *credentialProxy) writeResolveFailure(w http.ResponseWriter, id int, err error) {
	var denied *connection.ProxyDeniedError
	if errors.As(err, &denied) {
		writeRuntimeError(w, http.StatusForbidden, CodeProxyDenied, denied.Error())
		return
	}
	writeRuntimeFailure(w, p.log, id, err)
}
