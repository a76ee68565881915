package server

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/plugboard/plugboard/graph"
	"github.com/plugboard/plugboard/internal/connection"
	"github.com/plugboard/plugboard/internal/egress"
	"github.com/plugboard/plugboard/internal/onprem"
)

// retryOptions are what the caller allows of retries of a rate-limited or
// unavailable answer (429, 503).
type retryOptions struct {
	// budget is the longest the proxy waits in all (Plugboard-Retry-Budget;
	// 0: no retry).
	budget time.Duration
	// nonIdempotent lets a POST or PATCH be sent again
	// (Plugboard-Retry-Non-Idempotent: true).
	nonIdempotent bool
}

// maxRateLimitRetries bounds the retries of one call whatever the budget.
const maxRateLimitRetries = 5

// parseRetryOptions reads the Plugboard-Retry-* headers; a message when
// one is not usable.
func parseRetryOptions(h http.Header) (retryOptions, string) {
	var o retryOptions
	if s := h.Get("Plugboard-Retry-Budget"); s != "" {
		d, err := time.ParseDuration(s)
		if err != nil {
			n, nerr := strconv.Atoi(s)
			d, err = time.Duration(n)*time.Second, nerr
		}
		if err != nil || d < 0 || d > maxRetryBudget {
			return o, "Plugboard-Retry-Budget is a duration from 0s to 60s, such as 10s"
		}
		o.budget = d
	}
	switch strings.ToLower(h.Get("Plugboard-Retry-Non-Idempotent")) {
	case "", "false":
	case "true":
		o.nonIdempotent = true
	default:
		return o, "Plugboard-Retry-Non-Idempotent is true or false"
	}
	return o, ""
}

// idempotent reports whether a request of method may be sent twice
// (RFC 9110 §9.2.2).
func idempotent(method string) bool {
	switch method {
	case http.MethodGet, http.MethodHead, http.MethodOptions, http.MethodTrace, http.MethodPut, http.MethodDelete:
		return true
	}
	return false
}

// callTransport sends one proxied call: it injects the credential, sends
// the call again once with a refreshed token after a 401 of an OAuth 2.0
// credential, and again after a 429 or 503 while the caller's retry budget
// lasts. It bounds the answer's body.
type callTransport struct {
	call *proxyCall
	next http.RoundTripper
}

func (t *callTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	c := t.call
	ctx, cancel := context.WithTimeout(req.Context(), proxyCallTimeout+c.opts.budget)
	deadline := time.Now().Add(c.opts.budget)
	refreshed := false
	for {
		res, err := t.send(ctx, req)
		if err != nil {
			cancel()
			return nil, err
		}
		again := false
		switch {
		case res.StatusCode == http.StatusUnauthorized && !refreshed && replayable(req):
			refreshed = true
			again = t.refresh(ctx)
		case res.StatusCode == http.StatusTooManyRequests || res.StatusCode == http.StatusServiceUnavailable:
			again = t.waitRetry(ctx, req, res, deadline)
		}
		if !again {
			return bounded(res, cancel)
		}
		drain(res)
		c.retries++
	}
}

// send makes one attempt: a copy of req with a fresh body and the
// credential.
func (t *callTransport) send(ctx context.Context, req *http.Request) (*http.Response, error) {
	out := req.Clone(ctx)
	if req.GetBody != nil && t.call.retries > 0 {
		body, err := req.GetBody()
		if err != nil {
			return nil, err
		}
		out.Body = body
	}
	t.call.target.Inject(out)
	return t.next.RoundTrip(out)
}

// replayable reports whether req can be sent again: no body, or one kept
// in memory.
func replayable(req *http.Request) bool {
	return req.Body == nil || req.Body == http.NoBody || req.GetBody != nil
}

// refresh gets a new token after a 401 of an OAuth 2.0 credential; false
// (the 401 goes back as it is) when there is none.
func (t *callTransport) refresh(ctx context.Context) bool {
	ok, err := t.call.target.RefreshRejected(ctx)
	return err == nil && ok
}

// waitRetry waits as the answer says before a retry and reports whether to
// retry: the method may be repeated, the wait fits in the budget and the
// retries are not exhausted.
func (t *callTransport) waitRetry(ctx context.Context, req *http.Request, res *http.Response, deadline time.Time) bool {
	c := t.call
	if c.opts.budget == 0 || c.retries >= maxRateLimitRetries || !replayable(req) ||
		!(idempotent(req.Method) || c.opts.nonIdempotent) {
		return false
	}
	wait := retryWait(res, c.target.ResetHeader, time.Now(), c.retries)
	if time.Now().Add(wait).After(deadline) {
		return false
	}
	timer := time.NewTimer(wait)
	defer timer.Stop()
	select {
	case <-timer.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// retryWait is how long to wait before retrying res: its Retry-After
// (seconds or an HTTP date), else the type's reset header (seconds to wait,
// or a Unix time), else a backoff of 1 s doubling per retry.
func retryWait(res *http.Response, resetHeader string, now time.Time, retries int) time.Duration {
	if d, ok := parseRetryAfter(res.Header.Get("Retry-After"), now); ok {
		return d
	}
	if resetHeader != "" {
		if n, err := strconv.ParseFloat(strings.TrimSpace(res.Header.Get(resetHeader)), 64); err == nil && n >= 0 {
			if n > 1e9 { // a Unix time
				return max(0, time.Unix(int64(n), 0).Sub(now))
			}
			return time.Duration(n * float64(time.Second))
		}
	}
	return time.Second << min(retries, 5)
}

// parseRetryAfter reads a Retry-After value: delay seconds or an HTTP date.
func parseRetryAfter(v string, now time.Time) (time.Duration, bool) {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0, false
	}
	if n, err := strconv.Atoi(v); err == nil && n >= 0 {
		return time.Duration(n) * time.Second, true
	}
	if at, err := http.ParseTime(v); err == nil {
		return max(0, at.Sub(now)), true
	}
	return 0, false
}

// drain reads a little of an answer that will not be sent on, so its
// connection can be reused, and closes it.
func drain(res *http.Response) {
	_, _ = io.CopyN(io.Discard, res.Body, 64<<10)
	_ = res.Body.Close()
}

// errAnswerTooLarge is an answer over MaxProxyAnswer.
var errAnswerTooLarge = errors.New("the upstream answer is larger than 50 MiB")

// bounded returns res with its body bounded by MaxProxyAnswer; release
// runs once the body is closed.
func bounded(res *http.Response, release context.CancelFunc) (*http.Response, error) {
	if res.ContentLength > MaxProxyAnswer {
		drain(res)
		release()
		return nil, errAnswerTooLarge
	}
	res.Body = &boundedBody{rc: res.Body, left: MaxProxyAnswer, release: release}
	return res, nil
}

// boundedBody fails a read past its limit, which cuts the answer short.
type boundedBody struct {
	rc      io.ReadCloser
	left    int64
	release context.CancelFunc
}

func (b *boundedBody) Read(p []byte) (int, error) {
	if b.left <= 0 {
		return 0, errAnswerTooLarge
	}
	if int64(len(p)) > b.left {
		p = p[:b.left]
	}
	n, err := b.rc.Read(p)
	b.left -= int64(n)
	return n, err
}

func (b *boundedBody) Close() error {
	err := b.rc.Close()
	b.release()
	return err
}

// proxyFailure is the status, code and message of a call that got no
// usable answer.
func proxyFailure(err error) (int, string, string) {
	var denied *egress.DeniedError
	var tooLarge *http.MaxBytesError
	var ne net.Error
	var refused *onprem.StreamError
	switch {
	case errors.Is(err, onprem.ErrAgentDisconnected):
		code, msg := graph.Classify(connection.ErrAgentDisconnected)
		return http.StatusServiceUnavailable, code, msg
	case errors.As(err, &refused):
		return http.StatusBadGateway, CodeUpstreamUnavailable, "the customer's on-prem agent could not reach its target (" + refused.Code + ")"
	case errors.As(err, &denied):
		return http.StatusForbidden, CodeProxyDenied, "the upstream address is not allowed: " + denied.Reason
	case errors.As(err, &tooLarge):
		return http.StatusRequestEntityTooLarge, CodePayloadTooLarge, "the request body is larger than 10 MiB"
	case errors.Is(err, errAnswerTooLarge):
		return http.StatusBadGateway, CodePayloadTooLarge, errAnswerTooLarge.Error()
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, os.ErrDeadlineExceeded),
		errors.As(err, &ne) && ne.Timeout():
		return http.StatusGatewayTimeout, CodeUpstreamUnavailable, "the upstream did not answer in time"
	case errors.Is(err, context.Canceled):
		return 499, graph.CodeInternal, "the request was canceled"
	}
	return http.StatusBadGateway, CodeUpstreamUnavailable, "the upstream could not be reached"
}

// redactURLs is err's text without URL query strings, for logs.
func redactURLs(err error) string {
	var ue *url.Error
	if errors.As(err, &ue) {
		if u, perr := url.Parse(ue.URL); perr == nil {
			u.RawQuery = ""
			return ue.Op + " " + u.String() + ": " + ue.Err.Error()
		}
	}
	return err.Error()
}

func pathUnescape(s string) (string, error) { return url.PathUnescape(s) }

func itoa(n int) string { return strconv.Itoa(n) }

// codeLabel is a status code as a metric label.
func codeLabel(status int) string { return strconv.Itoa(status) }
