package sdk

import (
	"cmp"
	"context"
	"net/url"
	"slices"
)

// Plugin is a plugin declared as a value: its key, its version and its
// connection types, each with the functions that hold what is particular
// to it. *Plugin implements Provider, so main serves it as it is:
//
//	func main() { sdk.Serve(&sdk.Plugin{Key: "acme", Version: "1.0.0", Types: ...}) }
//
// For every call the SDK does what each provider would otherwise repeat:
// it finds the type by its key (an unknown key gets UnknownTypeError),
// resolves the values (ResolveValues: defaults filled, templates rendered),
// runs the declared checks of the inputs (ValidateValues) before the type's
// own, and removes the secret values of the call (secret inputs and the
// token) from every diagnostic, message and error it returns.
type Plugin struct {
	// Key is the plugin key, the prefix of every type key.
	Key     string
	Version string
	Types   []Type
}

// Type is one connection type of a Plugin: its declaration and its own
// checks. Both functions are optional.
type Type struct {
	ConnectionType
	// Validate adds the type's own checks to the declared ones, for what a
	// pattern cannot say or to word a known mistake better. It gets the
	// resolved values, and must not call out. An ERROR it returns for a
	// field replaces the declared checks' diagnostics of that field; other
	// diagnostics are added after them.
	Validate ValidateFunc
	// Test checks the values live. It is called only with resolved values
	// that pass the checks (declared and Validate); req.Values holds them.
	// Without Test, valid values are answered OK.
	Test TestFunc
}

// ValidateFunc is a type's own check of resolved values; see Type.Validate.
type ValidateFunc func(values map[string]string) []Diagnostic

// TestFunc is a type's live test of resolved, valid values; see Type.Test.
type TestFunc func(ctx context.Context, req *TestRequest) (*TestResponse, error)

var _ Provider = (*Plugin)(nil)

// Describe implements Provider: the plugin and the declarations of its
// types.
func (p *Plugin) Describe(context.Context) (*Description, error) {
	d := &Description{Key: p.Key, Version: p.Version, ConnectionTypes: make([]ConnectionType, len(p.Types))}
	for i := range p.Types {
		d.ConnectionTypes[i] = p.Types[i].ConnectionType
	}
	return d, nil
}

// Validate implements Provider: the declared checks of the resolved values,
// then the type's own.
func (p *Plugin) Validate(_ context.Context, req *ValidateRequest) (*ValidateResponse, error) {
	t, err := p.lookup(req.TypeKey)
	if err != nil {
		return nil, err
	}
	values, err := ResolveValues(&t.ConnectionType, req.Values)
	if err != nil {
		return nil, err
	}
	secrets := t.secrets(req.Values, values, nil)
	return &ValidateResponse{Diagnostics: redactDiagnostics(t.check(values, req.SecretsWithheld), secrets)}, nil
}

// Test implements Provider: values that fail the checks are answered not
// OK (InvalidValues) without calling the type's Test.
func (p *Plugin) Test(ctx context.Context, req *TestRequest) (*TestResponse, error) {
	t, err := p.lookup(req.TypeKey)
	if err != nil {
		return nil, err
	}
	values, err := ResolveValues(&t.ConnectionType, req.Values)
	if err != nil {
		return nil, err
	}
	secrets := t.secrets(req.Values, values, req.Token)
	resp := InvalidValues(t.check(values, req.ThroughHost()))
	switch {
	case resp != nil:
	case t.Test == nil:
		resp = &TestResponse{OK: true, Message: "The values are valid; " + t.Label + " has no live test."}
	default:
		call := *req
		call.Values = values
		if resp, err = t.Test(ctx, &call); err != nil {
			return nil, redactError(err, secrets)
		}
	}
	if resp != nil {
		resp.Message = Redact(resp.Message, secrets...)
	}
	return resp, nil
}

// lookup returns the type with the key, or UnknownTypeError.
func (p *Plugin) lookup(typeKey string) (*Type, error) {
	for i := range p.Types {
		if p.Types[i].Key == typeKey {
			return &p.Types[i], nil
		}
	}
	return nil, UnknownTypeError(typeKey)
}

// check returns the diagnostics of resolved values: the declared checks,
// with the type's own merged in. With withheld (the host kept the secret
// values and checks them itself), diagnostics of secret inputs are left
// out: their values are absent on purpose.
func (t *Type) check(values map[string]string, withheld bool) []Diagnostic {
	ds := ValidateValues(&t.ConnectionType, values)
	if t.Validate != nil {
		ds = mergeDiagnostics(ds, t.Validate(values))
	}
	if !withheld {
		return ds
	}
	return slices.DeleteFunc(ds, func(d Diagnostic) bool {
		in := t.Input(d.Field)
		return in != nil && in.Secret
	})
}

// mergeDiagnostics returns declared with the diagnostics of every field
// that own has an ERROR for replaced, in place, by own's ERRORs for that
// field; own's other diagnostics follow, in their order.
func mergeDiagnostics(declared, own []Diagnostic) []Diagnostic {
	replace := map[string][]Diagnostic{}
	for _, d := range own {
		if d.Severity == SeverityError {
			replace[d.Field] = append(replace[d.Field], d)
		}
	}
	out := make([]Diagnostic, 0, len(declared)+len(own))
	placed := map[string]bool{}
	for _, d := range declared {
		ds, ok := replace[d.Field]
		switch {
		case !ok:
			out = append(out, d)
		case !placed[d.Field]:
			out = append(out, ds...)
			placed[d.Field] = true
		}
	}
	for _, d := range own {
		if d.Severity != SeverityError || !placed[d.Field] {
			out = append(out, d)
		}
	}
	return out
}

// secrets returns what must not leave the plugin in a call: the values of
// the secret inputs, as sent and as resolved, and the token, each also
// URL-escaped; longest first, so that no part of a longer secret is left
// when a shorter one is inside it.
func (t *Type) secrets(sent, resolved map[string]string, token *Token) []string {
	var out []string
	add := func(s string) {
		if s != "" {
			out = append(out, s, url.QueryEscape(s), url.PathEscape(s))
		}
	}
	for _, in := range t.Inputs {
		if in.Secret {
			add(sent[in.Key])
			add(resolved[in.Key])
		}
	}
	if token != nil {
		add(token.AccessToken)
		add(token.RefreshToken)
	}
	slices.SortFunc(out, func(a, b string) int { return cmp.Or(cmp.Compare(len(b), len(a)), cmp.Compare(a, b)) })
	return slices.Compact(out)
}

// redactDiagnostics removes secrets from the text of ds.
func redactDiagnostics(ds []Diagnostic, secrets []string) []Diagnostic {
	for i := range ds {
		ds[i].Summary = Redact(ds[i].Summary, secrets...)
		ds[i].Detail = Redact(ds[i].Detail, secrets...)
	}
	return ds
}

// redactedError is an error whose text had secrets removed; it still
// unwraps to the original, so errors.Is and gRPC status codes hold.
type redactedError struct {
	msg string
	err error
}

func (e *redactedError) Error() string { return e.msg }
func (e *redactedError) Unwrap() error { return e.err }

// redactError returns err, or an error of the same chain without secrets
// in its text.
func redactError(err error, secrets []string) error {
	msg := Redact(err.Error(), secrets...)
	if msg == err.Error() {
		return err
	}
	return &redactedError{msg: msg, err: err}
}
