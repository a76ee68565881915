package sdk

import "strings"

// checkHTTP checks a type's HTTP spec: the base URL template names inputs,
// the injection style names the inputs it needs, the allowed hosts are
// names or "*." suffixes.
func (c *checker) checkHTTP(ct *ConnectionType) {
	s := ct.HTTP
	if s == nil {
		return
	}
	if s.BaseURL == "" {
		c.add("HTTP base URL is empty")
	} else if c.checkSpecTemplate(ct, "HTTP base URL", s.BaseURL) {
		c.checkSpecURL(ct, "HTTP base URL", s.BaseURL)
	}
	if s.BaseURLOverrideInput != "" {
		c.needInput(ct, "HTTP base URL override input", s.BaseURLOverrideInput)
	}
	for _, h := range s.AllowedHosts {
		name := strings.TrimPrefix(h, "*.")
		if name == "" || strings.ContainsAny(name, "*/:@ ") {
			c.add("HTTP allowed host %q is not a host name or *.suffix", h)
		}
	}
	oauth := ct.OAuth2 != nil
	switch s.Inject {
	case InjectBearer:
		if !oauth {
			c.needInput(ct, "HTTP bearer input", s.Input)
		}
	case InjectHeader:
		if s.Header == "" {
			c.add("HTTP header injection names no header")
		}
		if !oauth || s.Input != "" {
			c.needInput(ct, "HTTP header input", s.Input)
		}
	case InjectBasic:
		c.needInput(ct, "HTTP basic username input", s.UsernameInput)
		c.needInput(ct, "HTTP basic password input", s.PasswordInput)
	case InjectQuery:
		if s.QueryParam == "" {
			c.add("HTTP query injection names no parameter")
		}
		c.needInput(ct, "HTTP query input", s.Input)
	default:
		c.add("unknown HTTP inject style %q", s.Inject)
	}
}

// needInput reports a spec field that names no input of the type.
func (c *checker) needInput(ct *ConnectionType, field, key string) {
	if key == "" || ct.Input(key) == nil {
		c.add("%s %q names no input of the type", field, key)
	}
}
