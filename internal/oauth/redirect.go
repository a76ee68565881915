package oauth

import (
	"fmt"
	"net"
	"net/url"
	"strings"
)

// checkRedirect returns raw parsed if it is an absolute http(s) URL under
// one of the allow-list's prefixes. A prefix matches on scheme, host and
// port exactly and on whole path segments: "https://app.example.com/oauth"
// allows https://app.example.com/oauth and /oauth/done but neither
// /oauthx nor https://app.example.com.evil.com/oauth.
func checkRedirect(allowlist []string, raw string) (*url.URL, error) {
	u, err := parseRedirect(raw)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrRedirectNotAllowed, err)
	}
	for _, p := range allowlist {
		prefix, err := parseRedirect(strings.TrimSpace(p))
		if err != nil {
			continue
		}
		if underPrefix(u, prefix) {
			return u, nil
		}
	}
	return nil, fmt.Errorf("%w (%s://%s)", ErrRedirectNotAllowed, u.Scheme, u.Host)
}

// parseRedirect parses an absolute http(s) URL that browsers read the same
// way we do: no user info, no backslashes, no dot segments, no encoded
// slashes or dots in the path.
func parseRedirect(raw string) (*url.URL, error) {
	if raw == "" || len(raw) > 2048 {
		return nil, fmt.Errorf("not a usable URL")
	}
	if strings.ContainsAny(raw, "\\\t\r\n ") {
		return nil, fmt.Errorf("the URL holds white space or a backslash")
	}
	u, err := url.Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("not a URL")
	}
	u.Scheme = strings.ToLower(u.Scheme)
	if u.Scheme != "https" && u.Scheme != "http" {
		return nil, fmt.Errorf("not an http(s) URL")
	}
	if u.Host == "" || u.Opaque != "" {
		return nil, fmt.Errorf("not an absolute URL")
	}
	if u.User != nil {
		return nil, fmt.Errorf("the URL holds user info")
	}
	ep := strings.ToLower(u.EscapedPath())
	if strings.Contains(ep, "%2f") || strings.Contains(ep, "%2e") || strings.Contains(ep, "%5c") {
		return nil, fmt.Errorf("the URL's path holds an encoded slash or dot")
	}
	for _, seg := range strings.Split(u.Path, "/") {
		if seg == "." || seg == ".." {
			return nil, fmt.Errorf("the URL's path holds a dot segment")
		}
	}
	return u, nil
}

func underPrefix(u, prefix *url.URL) bool {
	if u.Scheme != prefix.Scheme || hostPort(u) != hostPort(prefix) {
		return false
	}
	pp := prefix.Path
	if pp == "" || pp == "/" {
		return true
	}
	if strings.HasSuffix(pp, "/") {
		return strings.HasPrefix(u.Path, pp)
	}
	return u.Path == pp || strings.HasPrefix(u.Path, pp+"/")
}

// hostPort is the URL's lower-case host with its port made explicit.
func hostPort(u *url.URL) string {
	host, port := strings.ToLower(u.Hostname()), u.Port()
	if port == "" {
		port = map[string]string{"https": "443", "http": "80"}[u.Scheme]
	}
	return net.JoinHostPort(host, port)
}

// origin is the origin of a URL, for postMessage.
func origin(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.Scheme == "" || u.Host == "" {
		return "*"
	}
	return strings.ToLower(u.Scheme) + "://" + strings.ToLower(u.Host)
}

// withQuery returns raw with params added to its query.
func withQuery(raw string, params url.Values) string {
	u, err := url.Parse(raw)
	if err != nil {
		return raw
	}
	q := u.Query()
	for k, vs := range params {
		q[k] = vs
	}
	u.RawQuery = q.Encode()
	return u.String()
}
