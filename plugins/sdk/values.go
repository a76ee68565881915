package sdk

import (
	"encoding/json"
	"fmt"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
)

// ErrorDiag returns an ERROR diagnostic about the input field (empty for the
// connection as a whole). The summary is shown to the person filling the
// form: say what is wrong and how to fix it, never echo the value.
func ErrorDiag(field, summary string) Diagnostic {
	return Diagnostic{Field: field, Severity: SeverityError, Summary: summary}
}

// WarningDiag returns a WARNING diagnostic: shown, but the values are still
// valid.
func WarningDiag(field, summary string) Diagnostic {
	return Diagnostic{Field: field, Severity: SeverityWarning, Summary: summary}
}

// WithDetail returns a copy of d with its Detail set.
func (d Diagnostic) WithDetail(detail string) Diagnostic {
	d.Detail = detail
	return d
}

// HasErrors reports whether any diagnostic is an ERROR.
func HasErrors(ds []Diagnostic) bool {
	for _, d := range ds {
		if d.Severity == SeverityError {
			return true
		}
	}
	return false
}

// UnknownTypeError returns the error a Provider gives for a type key it does
// not declare; it wraps ErrUnknownType.
func UnknownTypeError(typeKey string) error {
	return fmt.Errorf("%w %q", ErrUnknownType, typeKey)
}

// Type returns the connection type with the key, or nil.
func (d *Description) Type(key string) *ConnectionType {
	for i := range d.ConnectionTypes {
		if d.ConnectionTypes[i].Key == key {
			return &d.ConnectionTypes[i]
		}
	}
	return nil
}

// Input returns the input with the key, or nil.
func (ct *ConnectionType) Input(key string) *Input {
	for i := range ct.Inputs {
		if ct.Inputs[i].Key == key {
			return &ct.Inputs[i]
		}
	}
	return nil
}

// name is how messages call an input.
func (in *Input) name() string {
	if in.Label != "" {
		return in.Label
	}
	return in.Key
}

// CompilePattern compiles an Input.Pattern so that it must match the whole
// value, as the host and ValidateValues apply it. Compiled patterns are
// kept, as a type declares few and they are checked on every call.
func CompilePattern(pattern string) (*regexp.Regexp, error) {
	if re, ok := patterns.Load(pattern); ok {
		return re.(*regexp.Regexp), nil
	}
	re, err := regexp.Compile(`^(?:` + pattern + `)$`)
	if err != nil {
		return nil, err
	}
	if patternCount.Add(1) <= maxCachedPatterns {
		patterns.Store(pattern, re)
	}
	return re, nil
}

// maxCachedPatterns bounds the pattern cache, in case a caller compiles
// patterns that are not a plugin's fixed declarations.
const maxCachedPatterns = 1024

var (
	patterns     sync.Map // pattern → *regexp.Regexp
	patternCount atomic.Int64
)

// ResolveValues returns the values a provider should work with: a copy of
// values in which every input of ct is present, an empty or missing value
// is replaced by the input's default, and every TEMPLATE input holds its
// template rendered from the other resolved values. Keys that ct does not
// declare are kept. It fails only if a template of ct is malformed (which
// ValidateDescription reports).
func ResolveValues(ct *ConnectionType, values map[string]string) (map[string]string, error) {
	out := make(map[string]string, len(values)+len(ct.Inputs))
	for k, v := range values {
		out[k] = v
	}
	for _, in := range ct.Inputs {
		if out[in.Key] == "" {
			out[in.Key] = in.Default
		}
	}
	for _, in := range ct.Inputs {
		if in.Type != InputTemplate {
			continue
		}
		v, err := RenderTemplate(in.Template, out)
		if err != nil {
			return nil, fmt.Errorf("input %q: %w", in.Key, err)
		}
		out[in.Key] = v
	}
	return out, nil
}

// ValidateValues checks values against the declarations of ct's inputs:
// required inputs have a value (or a default), values match the input's
// pattern and type (PICKLIST options, NUMBER, BOOLEAN "true"/"false",
// absolute URL, JSON, list collections). It returns one ERROR diagnostic per
// bad input, never quoting a value nor showing a pattern: a value that does
// not match its input's pattern gets the input's PatternMessage, or
// "<Label> is not in the expected format.". TEMPLATE inputs are computed, so they
// are not checked; keys ct does not declare are ignored. A provider's
// Validate typically starts with it and adds its own checks.
func ValidateValues(ct *ConnectionType, values map[string]string) []Diagnostic {
	var ds []Diagnostic
	for i := range ct.Inputs {
		in := &ct.Inputs[i]
		if in.Type == InputTemplate {
			continue
		}
		v := values[in.Key]
		if v == "" {
			v = in.Default
		}
		if v == "" {
			if in.Required {
				ds = append(ds, ErrorDiag(in.Key, in.name()+" is required."))
			}
			continue
		}
		if problem, pattern := checkValue(in, v); pattern && in.PatternMessage != "" {
			ds = append(ds, ErrorDiag(in.Key, in.PatternMessage))
		} else if problem != "" {
			ds = append(ds, ErrorDiag(in.Key, in.name()+" "+problem))
		}
	}
	return ds
}

// checkValue returns what is wrong with a non-empty value of in, or "". The
// text completes a sentence that starts with the input's name, and never
// quotes the value or the pattern; pattern says the problem is a value (or
// an item) that does not match the input's pattern.
func checkValue(in *Input, v string) (problem string, pattern bool) {
	switch in.Collection {
	case CollectionValueList:
		var items []string
		if err := json.Unmarshal([]byte(v), &items); err != nil {
			return "must be a JSON array of strings.", false
		}
		for _, item := range items {
			if p, pat := checkOne(in, item); p != "" {
				return "has an invalid item: each item " + p, pat
			}
		}
		return "", false
	case CollectionKeyValueList:
		var items []struct {
			Key   *string `json:"key"`
			Value *string `json:"value"`
		}
		if err := json.Unmarshal([]byte(v), &items); err != nil {
			return `must be a JSON array of {"key": ..., "value": ...} objects.`, false
		}
		for _, item := range items {
			if item.Key == nil || *item.Key == "" || item.Value == nil {
				return `must have a non-empty "key" and a "value" in every item.`, false
			}
			if p, pat := checkOne(in, *item.Value); p != "" {
				return "has an invalid item: each value " + p, pat
			}
		}
		return "", false
	}
	return checkOne(in, v)
}

func checkOne(in *Input, v string) (problem string, pattern bool) {
	if in.Pattern != "" {
		re, err := CompilePattern(in.Pattern)
		if err != nil {
			return "cannot be checked: the plugin declares an invalid pattern.", false
		}
		if !re.MatchString(v) {
			return "is not in the expected format.", true
		}
	}
	return checkType(in, v), false
}

// checkType is checkOne's part for the input's type.
func checkType(in *Input, v string) string {
	switch in.Type {
	case InputPicklist:
		var values []string
		for _, o := range in.Options {
			if o.Value == v {
				return ""
			}
			values = append(values, o.Value)
		}
		return "must be one of: " + strings.Join(values, ", ") + "."
	case InputNumber:
		if _, err := strconv.ParseFloat(v, 64); err != nil {
			return "must be a number."
		}
	case InputBoolean:
		if v != "true" && v != "false" {
			return `must be "true" or "false".`
		}
	case InputURL:
		u, err := url.Parse(v)
		if err != nil || !u.IsAbs() || u.Host == "" {
			return "must be an absolute URL such as https://example.com/path."
		}
	case InputJSON:
		if !json.Valid([]byte(v)) {
			return "must be valid JSON."
		}
	}
	return ""
}
