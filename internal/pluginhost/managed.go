package pluginhost

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	goplugin "github.com/hashicorp/go-plugin"
	"google.golang.org/grpc"

	"github.com/plugboard/plugboard/plugins/sdk"
)

// watchInterval is how often a supervisor checks that its process lives.
// Calls notice a death sooner: the gRPC connection drops at once.
const watchInterval = 150 * time.Millisecond

// pinger is the bare health check the SDK's client adapter offers.
type pinger interface {
	Ping(ctx context.Context) error
}

// instance is one running plugin process.
type instance struct {
	client   *goplugin.Client
	provider sdk.Provider
	pinger   pinger
	pid      int
	protocol int
	started  time.Time

	// dead is cancelled once the host considers the process gone, which
	// aborts the calls still waiting on it.
	dead     context.Context
	markDead context.CancelFunc
	// hung is set by a call that hit the host's deadline.
	hung atomic.Bool
}

// managed is one plugin binary and, while it runs, its supervisor.
type managed struct {
	h      *Host
	name   string
	path   string
	sha256 string
	pinned bool
	log    *slog.Logger

	// typeKeys are the type keys this plugin owns; guarded by h.mu.
	typeKeys []string

	mu   sync.Mutex
	info PluginInfo
	inst *instance // set only while LOADED
	// secretInputs holds, per type key, the inputs declared secret.
	secretInputs map[string]map[string]bool
	// throughHost holds the type keys that test through the host.
	throughHost map[string]bool
	running     bool // a supervisor runs and has not been told to stop
	done        chan struct{}

	wake     chan struct{}
	stop     chan struct{}
	stopOnce sync.Once
}

func newManaged(h *Host, t target) *managed {
	return &managed{
		h:      h,
		name:   t.name,
		path:   t.path,
		sha256: t.sha256,
		pinned: t.pinned,
		log:    h.cfg.Logger.With("plugin", t.name),
		info: PluginInfo{
			Name:   t.name,
			SHA256: t.sha256,
			Path:   t.path,
		},
		wake: make(chan struct{}, 1),
		stop: make(chan struct{}),
	}
}

func (m *managed) snapshot() PluginInfo {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.info
}

func (m *managed) supervised() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.running
}

// current returns the running instance, or nil with the plugin's status.
func (m *managed) current() (*instance, PluginInfo) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.inst, m.info
}

// nudge asks the supervisor to look at the process now.
func (m *managed) nudge() {
	select {
	case m.wake <- struct{}{}:
	default:
	}
}

// launch starts the process, dispenses the provider and runs Describe. On
// error nothing is left running.
func (m *managed) launch(ctx context.Context) (*instance, *sdk.Description, error) {
	if err := m.h.ctx.Err(); err != nil {
		return nil, nil, errClosed
	}
	sum, err := hex.DecodeString(m.sha256)
	if err != nil {
		return nil, nil, &disableError{msg: "invalid pinned sha256"}
	}
	cmd, client := m.newClient(sum)
	rpc, err := client.Client()
	if err != nil {
		return nil, nil, m.startFailed(cmd, client, err)
	}
	inst, err := dispense(client, rpc)
	if err != nil {
		client.Kill()
		return nil, nil, err
	}
	desc, err := m.describe(ctx, inst)
	if err != nil {
		m.kill(inst)
		return nil, nil, err
	}
	return inst, desc, nil
}

// newClient prepares the plugin's command and its go-plugin client: gRPC
// only, the binary checked against its pinned sha256 sum, mutual TLS.
func (m *managed) newClient(sum []byte) (*exec.Cmd, *goplugin.Client) {
	logger := newHCLogger(m.log)
	cmd := exec.Command(m.path)
	// Let the plugin log at the level the host keeps; the host's own
	// environment (appended by go-plugin) still wins if it sets it.
	cmd.Env = []string{sdk.LogLevelEnv + "=" + strings.ToLower(logger.GetLevel().String())}
	cmd.Env = append(cmd.Env, m.h.cfg.PluginEnv...)
	ownProcessGroup(cmd)
	var dial []grpc.DialOption
	if h := m.h.cfg.GRPCStatsHandler; h != nil {
		dial = append(dial, grpc.WithStatsHandler(h))
	}
	client := goplugin.NewClient(&goplugin.ClientConfig{
		GRPCDialOptions:  dial,
		HandshakeConfig:  sdk.Handshake,
		Plugins:          sdk.PluginSet(),
		Cmd:              cmd,
		SecureConfig:     &goplugin.SecureConfig{Checksum: sum, Hash: sha256.New()},
		AllowedProtocols: []goplugin.Protocol{goplugin.ProtocolGRPC},
		AutoMTLS:         true,
		StartTimeout:     m.h.cfg.StartTimeout,
		Logger:           logger,
		Managed:          false,
	})
	return cmd, client
}

// startFailed ends what a failed start left behind and says why it failed:
// a *disableError when no restart can help.
func (m *managed) startFailed(cmd *exec.Cmd, client *goplugin.Client, err error) error {
	// Client ran cmd.Start in this goroutine, so cmd.Process is safe to
	// read. go-plugin killed the process; end its children too.
	if cmd.Process != nil {
		killProcessGroup(cmd.Process.Pid)
	}
	client.Kill()
	if errors.Is(err, goplugin.ErrChecksumsDoNotMatch) {
		// The file changed after the scan: only a re-pin helps.
		return &disableError{msg: "sha256 mismatch at launch; re-pin with `plugboard plugins pin --force " + m.name + "` if the new binary is trusted"}
	}
	if msg := err.Error(); strings.Contains(msg, "incompatible API version") || strings.Contains(msg, "unsupported plugin protocol") {
		// go-plugin has no sentinel for these; a restart cannot fix them,
		// a rebuild against the current SDK can.
		return &disableError{msg: fmt.Sprintf("protocol mismatch (host speaks plugboard protocol %d over gRPC): %s", sdk.ProtocolVersion, msg)}
	}
	return fmt.Errorf("start: %w", err)
}

// dispense takes the provider from a started plugin and wraps the process
// in an instance. The caller kills client on error.
func dispense(client *goplugin.Client, rpc goplugin.ClientProtocol) (*instance, error) {
	raw, err := rpc.Dispense(sdk.PluginName)
	if err != nil {
		return nil, fmt.Errorf("dispense: %w", err)
	}
	provider, ok := raw.(sdk.Provider)
	if !ok {
		return nil, &disableError{msg: fmt.Sprintf("dispensed %T, which is not an sdk.Provider", raw)}
	}
	p, ok := raw.(pinger)
	if !ok {
		p = protocolPinger{rpc}
	}
	dead, markDead := context.WithCancel(context.Background())
	inst := &instance{
		client:   client,
		provider: provider,
		pinger:   p,
		protocol: client.NegotiatedVersion(),
		started:  time.Now(),
		dead:     dead,
		markDead: markDead,
	}
	if rc := client.ReattachConfig(); rc != nil {
		inst.pid = rc.Pid
	}
	return inst, nil
}

// describe runs the plugin's Describe within the call timeout.
func (m *managed) describe(ctx context.Context, inst *instance) (*sdk.Description, error) {
	var desc *sdk.Description
	err := m.h.call(ctx, m, inst, m.h.cfg.CallTimeout, "describe", nil, func(ctx context.Context) error {
		var err error
		desc, err = inst.provider.Describe(ctx)
		return err
	})
	if err == nil && desc == nil {
		err = errors.New("describe returned no description")
	}
	return desc, err
}

// finish completes a start attempt: on success it claims the declared
// types, hands them to OnDescribe and reports LOADED; on failure it records
// the error as the plugin's status.
func (m *managed) finish(ctx context.Context, inst *instance, desc *sdk.Description, err error) error {
	if err == nil {
		err = m.activate(ctx, inst, desc)
	}
	if err != nil {
		m.failed(err)
	}
	return err
}

func (m *managed) activate(ctx context.Context, inst *instance, desc *sdk.Description) error {
	if err := acceptDescription(desc); err != nil {
		m.kill(inst)
		return err
	}
	if err := m.h.claimTypes(m, desc); err != nil {
		m.kill(inst)
		return err
	}
	info := m.snapshot()
	info.Key, info.Version, info.ProtocolVersion = desc.Key, desc.Version, inst.protocol
	info.Status, info.LastError = StatusLoaded, ""
	if hook := m.h.cfg.OnDescribe; hook != nil {
		if err := hook(ctx, info, desc); err != nil {
			m.kill(inst)
			return fmt.Errorf("store declarations: %w", err)
		}
	}
	m.mu.Lock()
	m.info.Key, m.info.Version, m.info.ProtocolVersion = info.Key, info.Version, info.ProtocolVersion
	m.info.Status, m.info.LastError = StatusLoaded, ""
	m.inst = inst
	m.secretInputs = secretInputs(desc)
	m.throughHost = throughHostTypes(desc)
	info = m.info
	m.mu.Unlock()
	m.log.Info("plugin loaded", "key", desc.Key, "version", desc.Version, "types", len(desc.ConnectionTypes), "pid", inst.pid, "restarts", info.Restarts)
	m.h.notifyStatus(info)
	return nil
}

// failed records a failed start: DISABLED when retrying cannot help,
// CRASHED otherwise.
func (m *managed) failed(err error) {
	if errors.Is(err, errClosed) {
		return
	}
	status := StatusCrashed
	var dis *disableError
	if errors.As(err, &dis) {
		status = StatusDisabled
	}
	m.setStatus(status, err.Error())
	if status == StatusDisabled {
		m.log.Warn(fmt.Sprintf("plugin %s disabled: %s", m.name, err.Error()))
	} else {
		m.log.Warn("plugin failed to start", "error", err.Error())
	}
}

// setStatus records a status and calls OnStatus if it changed.
func (m *managed) setStatus(s Status, lastError string) {
	m.mu.Lock()
	changed := m.info.Status != s || m.info.LastError != lastError
	m.info.Status, m.info.LastError = s, lastError
	if s != StatusLoaded {
		m.inst = nil
	}
	info := m.info
	m.mu.Unlock()
	if changed {
		m.h.notifyStatus(info)
	}
}

// supervise starts the supervisor goroutine. inst is the running
// instance, or nil after a failed first attempt (failures > 0).
func (m *managed) supervise(inst *instance, failures int) {
	m.mu.Lock()
	m.running = true
	m.done = make(chan struct{})
	m.mu.Unlock()
	go m.run(inst, failures)
}

func (m *managed) run(inst *instance, failures int) {
	defer close(m.done)
	defer func() {
		// A plugin disabled here is started again by the next Reload.
		m.mu.Lock()
		m.running = false
		m.mu.Unlock()
	}()
	for {
		if inst == nil {
			delay := m.h.backoff(failures)
			t := time.NewTimer(delay)
			select {
			case <-m.stop:
				t.Stop()
				return
			case <-t.C:
			}
			m.mu.Lock()
			m.info.Restarts++
			m.mu.Unlock()
			i, desc, err := m.launch(m.h.ctx)
			if err := m.finish(m.h.ctx, i, desc, err); err != nil {
				var dis *disableError
				if errors.As(err, &dis) || errors.Is(err, errClosed) {
					return
				}
				failures++
				m.log.Info("plugin restart scheduled", "in", m.h.backoff(failures).String())
				continue
			}
			inst = i
		}

		reason := m.watch(inst)
		if reason == "" { // told to stop
			m.mu.Lock()
			if m.inst == inst {
				m.inst = nil
			}
			m.mu.Unlock()
			inst.markDead()
			m.kill(inst)
			return
		}
		if time.Since(inst.started) >= m.h.cfg.RestartResetAfter {
			failures = 0
		}
		failures++
		inst.markDead()
		m.setStatus(StatusCrashed, reason)
		m.kill(inst)
		m.log.Warn("plugin crashed; restarting", "reason", reason, "in", m.h.backoff(failures).String())
		inst = nil
	}
}

// watch blocks until inst dies or hangs (returning why) or the supervisor
// is told to stop (returning "").
func (m *managed) watch(inst *instance) string {
	tick := time.NewTicker(watchInterval)
	defer tick.Stop()
	for {
		if inst.hung.Load() {
			return "plugin hung: a call exceeded its deadline; killed"
		}
		if inst.client.Exited() {
			return "process exited"
		}
		select {
		case <-m.stop:
			return ""
		case <-m.wake:
		case <-tick.C:
		}
	}
}

// killGrace is how long go-plugin's graceful shutdown (which itself falls
// back to SIGKILL after 2s) may take before the whole process group is
// killed.
const killGrace = 3 * time.Second

// kill ends inst's process and waits for go-plugin to clean up. A hung
// process gets SIGKILL at once rather than a graceful shutdown that would
// wait for it.
func (m *managed) kill(inst *instance) {
	inst.markDead()
	if inst.hung.Load() && !inst.client.Exited() {
		killProcessGroup(inst.pid)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		inst.client.Kill()
	}()
	t := time.NewTimer(killGrace)
	defer t.Stop()
	select {
	case <-done:
	case <-t.C:
		// Something (a child holding the plugin's stderr, say) keeps
		// go-plugin waiting.
		m.log.Warn("plugin did not stop in time; killing its process group")
		killProcessGroup(inst.pid)
		<-done
	}
}

// shutdown stops the supervisor (which kills the process) and waits for it.
func (m *managed) shutdown() {
	m.stopOnce.Do(func() { close(m.stop) })
	m.mu.Lock()
	inst, done := m.inst, m.done
	m.inst = nil
	m.running = false
	m.mu.Unlock()
	if inst != nil {
		inst.markDead()
	}
	if done != nil {
		<-done
	}
}

// protocolPinger falls back to go-plugin's own health check when the
// dispensed client has no Ping.
type protocolPinger struct{ rpc goplugin.ClientProtocol }

func (p protocolPinger) Ping(ctx context.Context) error {
	errc := make(chan error, 1)
	go func() { errc <- p.rpc.Ping() }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

func secretInputs(d *sdk.Description) map[string]map[string]bool {
	out := make(map[string]map[string]bool, len(d.ConnectionTypes))
	for _, ct := range d.ConnectionTypes {
		keys := map[string]bool{}
		for _, in := range ct.Inputs {
			if in.Secret || in.Type == sdk.InputPassword {
				keys[in.Key] = true
			}
		}
		out[ct.Key] = keys
	}
	return out
}
