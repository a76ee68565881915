package pluginhost

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sort"
	"strings"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/plugboard/plugboard/plugins/sdk"
)

// Errors of plugin calls. They are wrapped with the plugin's name and the
// operation; test them with errors.Is.
var (
	// ErrUnknownType: no loaded plugin declared the connection type.
	ErrUnknownType = errors.New("unknown connection type")
	// ErrUnknownPlugin: no plugin of that name is known.
	ErrUnknownPlugin = errors.New("unknown plugin")
	// ErrUnavailable: the plugin is not loaded (crashed, restarting,
	// disabled) or its process died during the call.
	ErrUnavailable = errors.New("plugin unavailable")
	// ErrTimeout: the call hit its deadline. When the host's own deadline
	// fired, the plugin is considered hung and is killed and restarted.
	ErrTimeout = errors.New("plugin call timed out")
	// ErrPluginFailed: the plugin answered with an error (or panicked); the
	// message is the plugin's, with request values removed.
	ErrPluginFailed = errors.New("plugin call failed")
)

// Validate asks the plugin that declared typeKey to check values.
func (h *Host) Validate(ctx context.Context, typeKey string, values map[string]string) (*sdk.ValidateResponse, error) {
	m, err := h.route(typeKey)
	if err != nil {
		return nil, err
	}
	var resp *sdk.ValidateResponse
	sent, withheld := m.withheld(typeKey, values)
	req := &sdk.ValidateRequest{TypeKey: typeKey, Values: sent, SecretsWithheld: withheld}
	err = h.callCurrent(ctx, m, h.cfg.CallTimeout, "validate", m.redactor(typeKey, values, nil), func(ctx context.Context, inst *instance) error {
		var err error
		resp, err = inst.provider.Validate(ctx, req)
		return err
	})
	if err != nil {
		return nil, err
	}
	if resp == nil {
		resp = &sdk.ValidateResponse{}
	}
	return resp, nil
}

// Test asks the plugin that declared typeKey to check values (and token, if
// any) live against the outside service. It has its own, longer deadline
// (Config.TestTimeout). A type that tests through the host is sent neither
// the secret values nor the token, and gets no way out: test it with
// TestThroughHost.
func (h *Host) Test(ctx context.Context, typeKey string, values map[string]string, tok *sdk.Token) (*sdk.TestResponse, error) {
	m, err := h.route(typeKey)
	if err != nil {
		return nil, err
	}
	req := &sdk.TestRequest{TypeKey: typeKey, Values: values, Token: tok}
	if sent, withheld := m.withheld(typeKey, values); withheld {
		req = &sdk.TestRequest{TypeKey: typeKey, Values: sent, Token: tokenShape(tok), HTTP: &http.Client{Transport: refusingTransport{}}}
	}
	return h.test(ctx, m, req, m.redactor(typeKey, values, tok))
}

// test runs one Test call of m.
func (h *Host) test(ctx context.Context, m *managed, req *sdk.TestRequest, scrub func(string) string) (*sdk.TestResponse, error) {
	var resp *sdk.TestResponse
	err := h.callCurrent(ctx, m, h.cfg.TestTimeout, "test", scrub, func(ctx context.Context, inst *instance) error {
		var err error
		resp, err = inst.provider.Test(ctx, req)
		return err
	})
	if err != nil {
		return nil, err
	}
	if resp == nil {
		return nil, fmt.Errorf("plugin %q: test: %w: no response", m.name, ErrPluginFailed)
	}
	return resp, nil
}

// Ping runs a bare gRPC health check on the named plugin over its
// go-plugin connection.
func (h *Host) Ping(ctx context.Context, pluginName string) error {
	h.mu.RLock()
	m := h.plugins[pluginName]
	h.mu.RUnlock()
	if m == nil {
		return fmt.Errorf("plugin %q: %w", pluginName, ErrUnknownPlugin)
	}
	return h.callCurrent(ctx, m, h.cfg.CallTimeout, "ping", nil, func(ctx context.Context, inst *instance) error {
		return inst.pinger.Ping(ctx)
	})
}

func (h *Host) route(typeKey string) (*managed, error) {
	h.mu.RLock()
	m := h.types[typeKey]
	h.mu.RUnlock()
	if m == nil {
		return nil, fmt.Errorf("connection type %q: %w", typeKey, ErrUnknownType)
	}
	return m, nil
}

// callCurrent runs fn on m's running instance; it fails at once with
// ErrUnavailable when there is none, so callers never wait for a restart.
func (h *Host) callCurrent(ctx context.Context, m *managed, timeout time.Duration, op string, scrub func(string) string, fn func(context.Context, *instance) error) error {
	inst, info := m.current()
	if inst == nil {
		why := strings.ToLower(string(info.Status))
		if why == "" {
			why = "not started"
		}
		if h.ctx.Err() != nil {
			why = "host closed"
		}
		return fmt.Errorf("plugin %q: %s: %w: %s", m.name, op, ErrUnavailable, why)
	}
	err := h.call(ctx, m, inst, timeout, op, scrub, func(ctx context.Context) error { return fn(ctx, inst) })
	if err != nil {
		return fmt.Errorf("plugin %q: %w", m.name, err)
	}
	return nil
}

// call runs fn against inst under a deadline of min(ctx, timeout) that is
// also cut short when the process dies, and turns its failure into one of
// the package's errors. scrub, if set, removes request values from a
// plugin's error message.
func (h *Host) call(ctx context.Context, m *managed, inst *instance, timeout time.Duration, op string, scrub func(string) string, fn func(context.Context) error) (err error) {
	defer func(start time.Time) { h.cfg.ObserveCall(m.name, op, time.Since(start), err) }(time.Now())
	callCtx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	stop := context.AfterFunc(inst.dead, cancel)
	defer stop()

	// Whose deadline governs this call: the host's, or the caller's when
	// it is the earlier one.
	hostDeadline := true
	if pd, ok := ctx.Deadline(); ok {
		if d, _ := callCtx.Deadline(); !d.Before(pd) {
			hostDeadline = false
		}
	}

	err = fn(callCtx)
	if err == nil {
		return nil
	}
	code := status.Code(err)
	// The plugin's side may report the deadline before our own timer fires.
	deadlineHit := code == codes.DeadlineExceeded || errors.Is(callCtx.Err(), context.DeadlineExceeded)
	switch {
	case inst.dead.Err() != nil || inst.client.Exited():
		m.nudge()
		return fmt.Errorf("%s: %w: process exited", op, ErrUnavailable)
	case deadlineHit && hostDeadline && ctx.Err() == nil:
		// Our deadline, not the caller's: the plugin is stuck. Kill and
		// restart it so the next call finds a working process.
		inst.hung.Store(true)
		m.nudge()
		m.log.Warn("plugin call exceeded its deadline; killing the plugin", "op", op, "timeout", timeout.String())
		return fmt.Errorf("%s: %w after %s", op, ErrTimeout, timeout)
	case deadlineHit:
		return fmt.Errorf("%s: %w: %w", op, ErrTimeout, context.DeadlineExceeded)
	case ctx.Err() != nil:
		return fmt.Errorf("%s: %w", op, ctx.Err())
	case code == codes.Unavailable || code == codes.Canceled:
		// The connection dropped; the process is most likely dying.
		m.nudge()
		m.log.Warn("plugin call failed: connection lost", "op", op, "code", code.String())
		return fmt.Errorf("%s: %w: connection lost", op, ErrUnavailable)
	case code == codes.NotFound:
		// The plugin does not know the type it declared; it may have
		// been replaced by a binary that declares other types.
		return fmt.Errorf("%s: %w: the plugin does not know it", op, ErrUnknownType)
	}
	msg := err.Error()
	if st, ok := status.FromError(err); ok {
		msg = st.Message()
	}
	if scrub != nil {
		msg = scrub(msg)
	}
	m.log.Warn("plugin call failed", "op", op, "code", code.String())
	return fmt.Errorf("%s: %w: %s", op, ErrPluginFailed, msg)
}

// A plugin's error message may echo what it was sent. Before it reaches an
// error, the host removes every value of an input the type declares secret
// (and the token's), and every other value long enough not to be an
// ordinary word; short non-secret values (a mode, a port) stay readable.
const (
	minSecretLen = 4
	minValueLen  = 8
)

// redactor returns a function that scrubs the request's values from a
// message; the work happens only when a call fails.
func (m *managed) redactor(typeKey string, values map[string]string, tok *sdk.Token) func(string) string {
	return func(msg string) string {
		m.mu.Lock()
		secret := m.secretInputs[typeKey]
		m.mu.Unlock()
		return redact(msg, requestSecrets(values, secret, tok))
	}
}

// requestSecrets lists the values to scrub, longest first so that
// overlapping values are removed whole.
func requestSecrets(values map[string]string, secret map[string]bool, tok *sdk.Token) []string {
	var out []string
	add := func(v string, min int) {
		if len(v) >= min {
			out = append(out, v)
		}
	}
	for k, v := range values {
		if secret[k] {
			add(v, minSecretLen)
		} else {
			add(v, minValueLen)
		}
	}
	if tok != nil {
		add(tok.AccessToken, minSecretLen)
		add(tok.RefreshToken, minSecretLen)
		for _, v := range tok.Extra {
			add(v, minSecretLen)
		}
	}
	sort.Slice(out, func(i, j int) bool { return len(out[i]) > len(out[j]) })
	return out
}

func redact(msg string, secrets []string) string {
	for _, s := range secrets {
		msg = strings.ReplaceAll(msg, s, "[redacted]")
	}
	return msg
}
