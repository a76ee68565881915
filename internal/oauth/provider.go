package oauth

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"mime"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"unicode"
	"unicode/utf8"

	"golang.org/x/oauth2"
)

// maxCapture bounds the token response kept for its extra fields; x/oauth2
// reads at most as much.
const maxCapture = 1 << 20

// capture keeps the body of the token endpoint's response, so the token's
// extra fields can be stored (x/oauth2 only answers for keys one asks).
type capture struct {
	mu          sync.Mutex
	body        []byte
	contentType string
}

type captureTransport struct {
	base http.RoundTripper
	cap  *capture
}

func (t *captureTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := t.base.RoundTrip(req)
	if err != nil || resp == nil || resp.Body == nil {
		return resp, err
	}
	t.cap.mu.Lock()
	t.cap.body, t.cap.contentType = nil, resp.Header.Get("Content-Type")
	t.cap.mu.Unlock()
	resp.Body = &teeBody{ReadCloser: resp.Body, cap: t.cap}
	return resp, nil
}

type teeBody struct {
	io.ReadCloser
	cap *capture
}

func (b *teeBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if n > 0 {
		b.cap.mu.Lock()
		if room := maxCapture - len(b.cap.body); room > 0 {
			b.cap.body = append(b.cap.body, p[:min(n, room)]...)
		}
		b.cap.mu.Unlock()
	}
	return n, err
}

// fields returns the fields of the captured token response other than the
// standard ones, and its expires_in in seconds (0 when absent; at most
// math.MaxInt32, as x/oauth2 reads it).
func (c *capture) fields() (map[string]any, int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := map[string]any{}
	ct, _, _ := mime.ParseMediaType(c.contentType)
	switch ct {
	case "application/x-www-form-urlencoded", "text/plain":
		vals, err := url.ParseQuery(string(c.body))
		if err != nil {
			return nil, 0
		}
		for k := range vals {
			out[k] = vals.Get(k)
		}
	default:
		if err := json.Unmarshal(c.body, &out); err != nil {
			return nil, 0
		}
	}
	var expiresIn int64
	switch v := out["expires_in"].(type) {
	case float64:
		expiresIn = int64(min(v, math.MaxInt32))
	case string:
		if n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64); err == nil {
			expiresIn = min(n, math.MaxInt32)
		}
	}
	for _, k := range []string{"access_token", "refresh_token", "token_type", "expires_in", "scope"} {
		delete(out, k)
	}
	if len(out) == 0 {
		out = nil
	}
	return out, max(expiresIn, 0)
}

// callContext returns ctx for one call to a provider: with a deadline of
// TokenTimeout and an HTTP client (for x/oauth2) that captures the response.
func (s *Service) callContext(ctx context.Context) (context.Context, *capture, context.CancelFunc) {
	ctx, cancel := context.WithTimeout(ctx, s.tokenTimeout)
	c := &capture{}
	base := s.base.Transport
	if base == nil {
		base = http.DefaultTransport
	}
	client := &http.Client{
		Transport: &captureTransport{base: base, cap: c},
		Timeout:   s.tokenTimeout,
		// Never follow a redirect: a 307 would send the client secret and
		// the grant to wherever it points. The 3xx is reported instead.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	return context.WithValue(ctx, oauth2.HTTPClient, client), c, cancel
}

// classify turns an error of a call to a provider into a *ProviderError
// that says what happened without any secret. what names the call, such as
// "refreshing the token".
func (s *Service) classify(err error, what string, secrets []string) *ProviderError {
	var pe *ProviderError
	if errors.As(err, &pe) {
		return pe
	}
	var re *oauth2.RetrieveError
	if errors.As(err, &re) {
		return retrieveFailure(re, what, secrets)
	}
	var ne net.Error
	switch {
	case errors.Is(err, context.DeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout()):
		return &ProviderError{Code: "timeout", Message: fmt.Sprintf("%s: the provider did not answer within %s", what, s.tokenTimeout)}
	case errors.Is(err, context.Canceled):
		return &ProviderError{Code: "canceled", Message: what + ": the request was canceled"}
	}
	var dnsErr *net.DNSError
	var opErr *net.OpError
	var urlErr *url.Error
	switch {
	case errors.As(err, &dnsErr):
		return &ProviderError{Code: "network", Message: what + ": the provider's host name could not be resolved"}
	case errors.As(err, &opErr):
		return &ProviderError{Code: "network", Message: what + ": could not reach the provider (" + opErr.Op + " failed)"}
	case errors.As(err, &urlErr):
		return &ProviderError{Code: "network", Message: what + ": the request to the provider failed"}
	case strings.Contains(err.Error(), "missing access_token"):
		return &ProviderError{Code: "bad_response", Message: what + ": the provider's answer held no access token"}
	case strings.HasPrefix(err.Error(), "oauth2: cannot parse"):
		return &ProviderError{Code: "bad_response", Message: what + ": the provider's answer could not be read"}
	}
	return &ProviderError{Code: "error", Message: what + ": the request to the provider failed"}
}

// permanentCodes are the OAuth 2.0 error codes after which retrying cannot
// help: the grant or the client is refused.
var permanentCodes = map[string]string{
	"invalid_grant":       "the provider refused the grant",
	"invalid_token":       "the provider refused the token",
	"unauthorized_client": "the provider refused the client",
	"invalid_client":      "the provider refused the client credentials",
	"access_denied":       "the provider denied access",
}

func retrieveFailure(re *oauth2.RetrieveError, what string, secrets []string) *ProviderError {
	status := 0
	if re.Response != nil {
		status = re.Response.StatusCode
	}
	code := errorCode(re.ErrorCode)
	desc := sanitize(re.ErrorDescription, secrets, 200)
	pe := &ProviderError{Code: code}
	switch {
	case code != "" && permanentCodes[code] != "":
		pe.Permanent = true
		pe.Message = fmt.Sprintf("%s: %s (%s)", what, permanentCodes[code], code)
	case code != "":
		pe.Message = fmt.Sprintf("%s: the provider answered %s", what, code)
	case status == http.StatusUnauthorized:
		pe.Code, pe.Permanent = "http_401", true
		pe.Message = what + ": the provider refused the request (401 Unauthorized)"
	case status != 0:
		pe.Code = fmt.Sprintf("http_%d", status)
		pe.Message = fmt.Sprintf("%s: the provider answered %d %s", what, status, http.StatusText(status))
	default:
		pe.Code = "bad_response"
		pe.Message = what + ": the provider's answer could not be read"
	}
	if desc != "" {
		pe.Message += ": " + desc
	}
	return pe
}

// transient reports whether a failure may pass by itself: a timeout, a
// network error, 429 or a 5xx.
func (e *ProviderError) transient() bool {
	switch e.Code {
	case "timeout", "network", "canceled", "http_429":
		return true
	}
	return strings.HasPrefix(e.Code, "http_5")
}

// errorCode keeps an OAuth 2.0 error code if it looks like one.
func errorCode(s string) string {
	s = strings.TrimSpace(s)
	if s == "" || len(s) > 64 {
		return ""
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_' || r == '-' || r == '.') {
			return "provider_error"
		}
	}
	return s
}

// sanitize makes provider text fit to store and show: secrets removed,
// control characters and markup brackets dropped, white space collapsed,
// clipped to n runes. Pages escape it again when they render it.
func sanitize(s string, secrets []string, n int) string {
	for _, sec := range secrets {
		if len(sec) >= 4 {
			s = strings.ReplaceAll(s, sec, "[redacted]")
		}
	}
	if !utf8.ValidString(s) {
		s = strings.ToValidUTF8(s, "")
	}
	var b strings.Builder
	space := false
	count := 0
	for _, r := range s {
		switch {
		case unicode.IsSpace(r):
			space = b.Len() > 0
			continue
		case unicode.IsControl(r), r == '<', r == '>', !unicode.IsPrint(r):
			continue
		}
		if count >= n {
			b.WriteString("…")
			break
		}
		if space {
			b.WriteByte(' ')
			space = false
			count++
		}
		b.WriteRune(r)
		count++
	}
	return b.String()
}
