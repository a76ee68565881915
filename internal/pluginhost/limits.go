package pluginhost

import (
	"encoding/json"
	"fmt"
	"net/url"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/plugboard/plugboard/plugins/sdk"
)

// Limits on what a plugin may declare. A Describe result over any of them
// is refused: the plugin is DISABLED with a lastError naming the limit.
const (
	MaxConnectionTypes  = 50
	MaxInputsPerType    = 100
	MaxOptionsPerInput  = 100
	MaxKeyLen           = 100
	MaxLabelLen         = 200
	MaxDescriptionLen   = 2000
	MaxPatternLen       = 1000
	MaxTemplateLen      = 1000
	MaxURLLen           = 2000
	MaxShortTextLen     = 1000 // defaults, examples, placeholders, option values, OAuth2 scopes and params
	MaxExtraParams      = 50   // per OAuth2 extra parameter map
	MaxDescriptionBytes = 1 << 20
)

// acceptDescription checks a plugin's Describe result against the limits
// and sanitizes its display strings in place, before anything stores or
// shows them. An error is a *disableError naming the limit.
func acceptDescription(d *sdk.Description) error {
	if err := checkLimits(d); err != nil {
		return &disableError{msg: "description refused: " + err.Error()}
	}
	sanitizeDescription(d)
	return nil
}

func checkLimits(d *sdk.Description) error {
	if len(d.ConnectionTypes) > MaxConnectionTypes {
		return fmt.Errorf("declares %d connection types, more than the limit of %d", len(d.ConnectionTypes), MaxConnectionTypes)
	}
	if err := maxLen("plugin key", d.Key, MaxKeyLen); err != nil {
		return err
	}
	if err := maxLen("plugin version", d.Version, MaxLabelLen); err != nil {
		return err
	}
	for i := range d.ConnectionTypes {
		if err := checkTypeLimits(&d.ConnectionTypes[i]); err != nil {
			return err
		}
	}
	b, err := json.Marshal(d)
	if err != nil {
		return fmt.Errorf("cannot be encoded: %v", err)
	}
	if len(b) > MaxDescriptionBytes {
		return fmt.Errorf("encodes to %d bytes, more than the limit of %d", len(b), MaxDescriptionBytes)
	}
	return nil
}

// lenLimit is one string a plugin declares and the most bytes it may have.
type lenLimit struct {
	what string
	s    string
	max  int
}

// checkLens returns the first of limits that its string is over, its name
// prefixed by prefix.
func checkLens(prefix string, limits []lenLimit) error {
	for _, l := range limits {
		if err := maxLen(prefix+l.what, l.s, l.max); err != nil {
			return err
		}
	}
	return nil
}

func checkTypeLimits(ct *sdk.ConnectionType) error {
	if err := maxLen("connection type key", ct.Key, MaxKeyLen); err != nil {
		return err
	}
	name := fmt.Sprintf("connection type %q: ", ct.Key)
	if len(ct.Inputs) > MaxInputsPerType {
		return fmt.Errorf("%sdeclares %d inputs, more than the limit of %d", name, len(ct.Inputs), MaxInputsPerType)
	}
	limits := []lenLimit{
		{"label", ct.Label, MaxLabelLen},
		{"description", ct.Description, MaxDescriptionLen},
		{"icon URL", ct.IconURL, MaxURLLen},
	}
	if s := ct.OAuth2; s != nil {
		if err := checkOAuth2Params(name, s); err != nil {
			return err
		}
		limits = append(limits, oauth2Limits(s)...)
	}
	if err := checkLens(name, limits); err != nil {
		return err
	}
	for i := range ct.Inputs {
		if err := checkInputLimits(name, &ct.Inputs[i]); err != nil {
			return err
		}
	}
	return nil
}

// oauth2Limits are the string limits of an OAuth 2.0 declaration.
func oauth2Limits(s *sdk.OAuth2Spec) []lenLimit {
	return []lenLimit{
		{"OAuth2 authorize URL", s.AuthorizeURL, MaxURLLen},
		{"OAuth2 token URL", s.TokenURL, MaxURLLen},
		{"OAuth2 revoke URL", s.RevokeURL, MaxURLLen},
		{"OAuth2 scopes", s.Scopes, MaxShortTextLen},
		{"OAuth2 scope separator", s.ScopeSeparator, MaxKeyLen},
		{"OAuth2 client id input", s.ClientIDInput, MaxKeyLen},
		{"OAuth2 client secret input", s.ClientSecretInput, MaxKeyLen},
	}
}

// checkOAuth2Params checks the size of the extra authorize and token
// parameter maps of an OAuth 2.0 declaration, and of each entry.
func checkOAuth2Params(name string, s *sdk.OAuth2Spec) error {
	for _, m := range []struct {
		what   string
		params map[string]string
	}{{"OAuth2 extra authorize params", s.ExtraAuthorizeParams}, {"OAuth2 extra token params", s.ExtraTokenParams}} {
		if len(m.params) > MaxExtraParams {
			return fmt.Errorf("%s%s: %d entries, more than the limit of %d", name, m.what, len(m.params), MaxExtraParams)
		}
		for k, v := range m.params {
			if err := maxLen(name+m.what+" name", k, MaxKeyLen); err != nil {
				return err
			}
			if err := maxLen(name+m.what+" value", v, MaxShortTextLen); err != nil {
				return err
			}
		}
	}
	return nil
}

// checkInputLimits checks one input of the connection type named by name.
func checkInputLimits(name string, in *sdk.Input) error {
	if err := maxLen(name+"input key", in.Key, MaxKeyLen); err != nil {
		return err
	}
	iname := fmt.Sprintf("%sinput %q: ", name, in.Key)
	if len(in.Options) > MaxOptionsPerInput {
		return fmt.Errorf("%sdeclares %d options, more than the limit of %d", iname, len(in.Options), MaxOptionsPerInput)
	}
	err := checkLens(iname, []lenLimit{
		{"label", in.Label, MaxLabelLen},
		{"description", in.Description, MaxDescriptionLen},
		{"pattern", in.Pattern, MaxPatternLen},
		{"patternMessage", in.PatternMessage, MaxDescriptionLen},
		{"template", in.Template, MaxTemplateLen},
		{"default", in.Default, MaxShortTextLen},
		{"example", in.Example, MaxShortTextLen},
		{"placeholder", in.Placeholder, MaxShortTextLen},
	})
	if err != nil {
		return err
	}
	for _, o := range in.Options {
		err := checkLens(iname, []lenLimit{
			{"option value", o.Value, MaxShortTextLen},
			{"option label", o.Label, MaxLabelLen},
		})
		if err != nil {
			return err
		}
	}
	return nil
}

// maxLen names the limit s is over, if any. It never quotes s.
func maxLen(what, s string, limit int) error {
	if len(s) > limit {
		return fmt.Errorf("%s is %d bytes long, more than the limit of %d", what, len(s), limit)
	}
	return nil
}

// sanitizeDescription cleans the strings a config wizard shows (labels,
// descriptions, placeholders, examples, option labels) and drops icon URLs
// that are not https and SVG icons SafeSVG refuses. Keys, values, patterns and templates are left as
// they are: they are checked, not shown as prose.
func sanitizeDescription(d *sdk.Description) {
	for i := range d.ConnectionTypes {
		ct := &d.ConnectionTypes[i]
		ct.Label = SanitizeDisplay(ct.Label)
		ct.Description = SanitizeDisplay(ct.Description)
		if !httpsURL(ct.IconURL) {
			ct.IconURL = ""
		}
		if len(ct.IconSVG) > 0 && !SafeSVG(ct.IconSVG) {
			ct.IconSVG = nil
		}
		for j := range ct.Inputs {
			in := &ct.Inputs[j]
			in.Label = SanitizeDisplay(in.Label)
			in.Description = SanitizeDisplay(in.Description)
			in.Placeholder = SanitizeDisplay(in.Placeholder)
			in.Example = SanitizeDisplay(in.Example)
			for k := range in.Options {
				in.Options[k].Label = SanitizeDisplay(in.Options[k].Label)
			}
		}
	}
}

// SanitizeDisplay returns s without invalid UTF-8, control characters other
// than "\n" and "\t", and bidirectional override and isolate characters
// (U+202A–U+202E, U+2066–U+2069), which can make text read differently
// from what it is.
func SanitizeDisplay(s string) string {
	clean := true
	for _, r := range s {
		if dropRune(r) {
			clean = false
			break
		}
	}
	if clean && utf8.ValidString(s) {
		return s
	}
	var b strings.Builder
	b.Grow(len(s))
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		i += size
		if r == utf8.RuneError && size <= 1 {
			continue // invalid UTF-8
		}
		if dropRune(r) {
			continue
		}
		b.WriteRune(r)
	}
	return b.String()
}

func dropRune(r rune) bool {
	switch {
	case r == '\n' || r == '\t':
		return false
	case unicode.IsControl(r):
		return true
	case r >= 0x202A && r <= 0x202E, r >= 0x2066 && r <= 0x2069:
		return true
	}
	return false
}

// httpsURL reports whether s is empty or an absolute https URL with a host.
func httpsURL(s string) bool {
	if s == "" {
		return true
	}
	u, err := url.Parse(s)
	return err == nil && u.Scheme == "https" && u.Host != ""
}
