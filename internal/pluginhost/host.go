// Package pluginhost discovers, pins, launches and supervises plugboard
// plugins, and caches what they declare.
//
// Each plugin is a separate binary in one directory, launched with
// hashicorp/go-plugin over gRPC only if its SHA-256 matches the lock file
// written by Pin. Describe runs once per successful (re)start and its result
// goes to Config.OnDescribe, so read paths never call a plugin. Validate,
// Test and Ping are routed by connection type key (or plugin name) and each
// gets its own deadline. A supervisor goroutine per plugin restarts a plugin
// that exits or hangs, with exponential backoff; one failing plugin never
// affects the others.
package pluginhost

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"sort"
	"sync"
	"time"

	"google.golang.org/grpc/stats"

	"github.com/plugboard/plugboard/plugins/sdk"
)

// Status is the state of one plugin, as in the Plugin entity.
type Status string

// Plugin statuses.
const (
	// StatusLoaded: the plugin runs and its declarations are current.
	StatusLoaded Status = "LOADED"
	// StatusCrashed: the plugin failed to start, exited or hung; the host
	// restarts it with backoff.
	StatusCrashed Status = "CRASHED"
	// StatusDisabled: the host will not run the plugin (not pinned, hash
	// mismatch, missing, conflicting declarations) until a Reload finds it
	// fixed.
	StatusDisabled Status = "DISABLED"
)

// PluginInfo describes one plugin known to the host.
type PluginInfo struct {
	// Name is the binary's file name.
	Name string
	// Key and Version come from the plugin's last successful Describe.
	Key     string
	Version string
	// SHA256 is the hex hash of the binary (the pinned one when it is
	// missing).
	SHA256          string
	ProtocolVersion int
	Status          Status
	// LastError says why the plugin is not LOADED; it never holds request
	// values.
	LastError string
	Path      string
	// Restarts counts restart attempts since the host loaded this binary.
	Restarts int
}

// Config configures a Host. Zero durations take the documented defaults.
type Config struct {
	// Dir is the plugin directory. Empty means no plugins.
	Dir string
	// LockPath is the lock file; empty means DefaultLockPath(Dir).
	LockPath string
	// Logger receives the host's logs and, tagged with the plugin name,
	// every line plugins write to stderr. Nil means slog.Default().
	Logger *slog.Logger

	// StartTimeout bounds a plugin's start-up handshake (default 10s).
	StartTimeout time.Duration
	// CallTimeout bounds Describe, Validate and Ping (default 5s).
	CallTimeout time.Duration
	// TestTimeout bounds Test, a live check against the outside service
	// (default 30s).
	TestTimeout time.Duration

	// RestartBackoffMin and RestartBackoffMax bound the delay before a
	// restart (defaults 200ms and 30s); the delay doubles with every
	// failure in a row.
	RestartBackoffMin time.Duration
	RestartBackoffMax time.Duration
	// RestartResetAfter is how long a plugin must stay up for its backoff
	// to start again from RestartBackoffMin (default 1m).
	RestartResetAfter time.Duration

	// OnDescribe receives a plugin's declarations after each successful
	// (re)start, before the plugin is reported LOADED; the server stores
	// ConnectionType rows there. An error counts as a failed start.
	OnDescribe func(ctx context.Context, p PluginInfo, d *sdk.Description) error
	// OnStatus is called after a plugin's status or last error changes.
	OnStatus func(ctx context.Context, p PluginInfo)
	// ObserveCall, if set, is told the duration and outcome of every call
	// to a plugin (method: describe, validate, test or ping); the server
	// turns it into a latency histogram.
	ObserveCall func(plugin, method string, d time.Duration, err error)

	// GRPCStatsHandler, if set, sees every call to a plugin (the tracing
	// of the calls: otelgrpc's client handler, which puts the trace
	// context in the gRPC metadata). Nil wraps nothing.
	GRPCStatsHandler stats.Handler
	// PluginEnv is extra environment for plugin processes, such as the
	// OTLP endpoint they export their spans to (sdk.OTLPEndpointEnv).
	PluginEnv []string
}

func (c Config) withDefaults() Config {
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&c.StartTimeout, 10*time.Second)
	def(&c.CallTimeout, 5*time.Second)
	def(&c.TestTimeout, 30*time.Second)
	def(&c.RestartBackoffMin, 200*time.Millisecond)
	def(&c.RestartBackoffMax, 30*time.Second)
	def(&c.RestartResetAfter, time.Minute)
	if c.RestartBackoffMax < c.RestartBackoffMin {
		c.RestartBackoffMax = c.RestartBackoffMin
	}
	if c.LockPath == "" && c.Dir != "" {
		c.LockPath = DefaultLockPath(c.Dir)
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.ObserveCall == nil {
		c.ObserveCall = func(string, string, time.Duration, error) {}
	}
	return c
}

// Host runs the plugins of one directory. Its methods are safe for
// concurrent use.
type Host struct {
	cfg Config
	log *slog.Logger

	// ctx lives until Close; supervisors and hooks run under it.
	ctx    context.Context
	cancel context.CancelFunc

	// opMu serialises Start, Reload and Close.
	opMu sync.Mutex

	mu      sync.RWMutex
	started bool
	closed  bool
	plugins map[string]*managed // by binary name
	types   map[string]*managed // by connection type key
}

// New returns a Host for cfg. It starts nothing until Start.
func New(cfg Config) *Host {
	cfg = cfg.withDefaults()
	ctx, cancel := context.WithCancel(context.Background())
	return &Host{
		cfg:     cfg,
		log:     cfg.Logger,
		ctx:     ctx,
		cancel:  cancel,
		plugins: map[string]*managed{},
		types:   map[string]*managed{},
	}
}

// errClosed is returned by Start and Reload after Close.
var errClosed = errors.New("pluginhost: host is closed")

// Start launches every pinned plugin of the directory and waits until each
// has been tried once. A plugin that fails is reported through its status
// (and restarted with backoff when that may help); Start itself only fails
// when the directory or the lock file cannot be read.
func (h *Host) Start(ctx context.Context) error {
	h.opMu.Lock()
	defer h.opMu.Unlock()
	h.mu.RLock()
	closed, started := h.closed, h.started
	h.mu.RUnlock()
	if closed {
		return errClosed
	}
	if started {
		return errors.New("pluginhost: already started; use Reload")
	}
	return h.syncAndStart(ctx)
}

// Reload re-reads the lock file and the directory: it starts new and
// changed plugins, stops removed ones and keeps unchanged running ones (a
// DISABLED plugin that is now acceptable is started again).
func (h *Host) Reload(ctx context.Context) error {
	h.opMu.Lock()
	defer h.opMu.Unlock()
	h.mu.RLock()
	closed := h.closed
	h.mu.RUnlock()
	if closed {
		return errClosed
	}
	return h.syncAndStart(ctx)
}

// Close kills every plugin process and stops the supervisors. It is
// idempotent; calls after Close fail with ErrUnavailable.
func (h *Host) Close() error {
	h.opMu.Lock()
	defer h.opMu.Unlock()
	h.mu.Lock()
	if h.closed {
		h.mu.Unlock()
		return nil
	}
	h.closed = true
	all := make([]*managed, 0, len(h.plugins))
	for _, m := range h.plugins {
		all = append(all, m)
	}
	h.mu.Unlock()

	h.cancel()
	var wg sync.WaitGroup
	for _, m := range all {
		wg.Add(1)
		go func() {
			defer wg.Done()
			m.shutdown()
		}()
	}
	wg.Wait()
	return nil
}

// Ready reports whether Start has run and every pinned plugin is LOADED.
func (h *Host) Ready() bool {
	h.mu.RLock()
	defer h.mu.RUnlock()
	if !h.started || h.closed {
		return false
	}
	for _, m := range h.plugins {
		if m.pinned && m.snapshot().Status != StatusLoaded {
			return false
		}
	}
	return true
}

// Plugins returns every plugin the host knows of, sorted by name.
func (h *Host) Plugins() []PluginInfo {
	h.mu.RLock()
	out := make([]PluginInfo, 0, len(h.plugins))
	for _, m := range h.plugins {
		out = append(out, m.snapshot())
	}
	h.mu.RUnlock()
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// Plugin returns one plugin's info by binary name.
func (h *Host) Plugin(name string) (PluginInfo, bool) {
	h.mu.RLock()
	m := h.plugins[name]
	h.mu.RUnlock()
	if m == nil {
		return PluginInfo{}, false
	}
	return m.snapshot(), true
}

// Types maps every declared connection type key to the name of the plugin
// that declared it. Types of a CRASHED plugin stay listed: their calls fail
// with ErrUnavailable until it is back.
func (h *Host) Types() map[string]string {
	h.mu.RLock()
	defer h.mu.RUnlock()
	out := make(map[string]string, len(h.types))
	for k, m := range h.types {
		out[k] = m.name
	}
	return out
}

// target is what the directory and the lock say about one plugin name.
type target struct {
	name    string
	path    string
	sha256  string // of the file, or the pin when missing
	pinned  bool
	refusal string // why it must not run; empty when it may
}

// sync brings the running set in line with the lock file and directory.
func (h *Host) sync(ctx context.Context) error {
	if h.cfg.Dir == "" {
		return nil
	}
	targets, err := h.scan()
	if err != nil {
		return err
	}
	current := h.running()
	// Stop what goes away or changes first, so its types are free for the
	// plugins started below.
	keep := h.stopChanged(current, targets)
	launch := h.refuseOrQueue(current, targets, keep)
	h.activate(ctx, launch, launchAll(ctx, launch))
	return nil
}

// running returns a copy of the managed plugins by name.
func (h *Host) running() map[string]*managed {
	h.mu.RLock()
	defer h.mu.RUnlock()
	current := make(map[string]*managed, len(h.plugins))
	for n, m := range h.plugins {
		current[n] = m
	}
	return current
}

// stopChanged shuts down every plugin of current whose target is gone,
// refused or changed, forgets the removed ones, and returns the names of
// the plugins kept as they are.
func (h *Host) stopChanged(current map[string]*managed, targets map[string]target) map[string]bool {
	keep := map[string]bool{}
	for name, m := range current {
		t, ok := targets[name]
		if ok && t.refusal == "" && m.supervised() && m.path == t.path && m.sha256 == t.sha256 {
			keep[name] = true // unchanged and running (or being restarted)
			continue
		}
		m.shutdown()
		h.releaseTypes(m)
		if !ok {
			h.forget(name, m)
		}
	}
	return keep
}

// forget drops a plugin removed from the directory and the lock file.
func (h *Host) forget(name string, m *managed) {
	h.mu.Lock()
	delete(h.plugins, name)
	h.mu.Unlock()
	info := m.snapshot()
	info.Status, info.LastError = StatusDisabled, "removed from the plugin directory and the lock file"
	h.log.Info("plugin removed", "plugin", name)
	h.notifyStatus(info)
}

// refuseOrQueue walks the targets not kept in name order: a refused one is
// recorded DISABLED, the others are returned to be launched.
func (h *Host) refuseOrQueue(current map[string]*managed, targets map[string]target, keep map[string]bool) []*managed {
	names := make([]string, 0, len(targets))
	for n := range targets {
		names = append(names, n)
	}
	sort.Strings(names)
	var launch []*managed
	for _, name := range names {
		if keep[name] {
			continue
		}
		t := targets[name]
		m := newManaged(h, t)
		if t.refusal != "" {
			h.refuse(m, t, current[name])
			continue
		}
		launch = append(launch, m)
	}
	return launch
}

// refuse records m DISABLED for t's refusal, notifying only when that is
// news compared with old, the plugin it replaces (nil if none).
func (h *Host) refuse(m *managed, t target, old *managed) {
	h.log.Warn(fmt.Sprintf("plugin %s refused: %s", t.name, t.refusal), "plugin", t.name, "path", t.path)
	m.info.Status, m.info.LastError = StatusDisabled, t.refusal
	h.mu.Lock()
	h.plugins[t.name] = m
	h.mu.Unlock()
	if old == nil || old.snapshot().Status != StatusDisabled || old.snapshot().LastError != t.refusal {
		h.notifyStatus(m.snapshot())
	}
}

// launchResult is the outcome of one plugin's start-up and Describe.
type launchResult struct {
	inst *instance
	desc *sdk.Description
	err  error
}

// launchAll starts the plugins in parallel (start-up and Describe
// dominate) and returns their outcomes in the same order.
func launchAll(ctx context.Context, launch []*managed) []launchResult {
	results := make([]launchResult, len(launch))
	var wg sync.WaitGroup
	for i, m := range launch {
		wg.Add(1)
		go func() {
			defer wg.Done()
			inst, desc, err := m.launch(ctx)
			results[i] = launchResult{inst, desc, err}
		}()
	}
	wg.Wait()
	return results
}

// activate registers the launched plugins in name order, so type-key
// conflicts resolve the same way every time, and supervises each one not
// disabled.
func (h *Host) activate(ctx context.Context, launch []*managed, results []launchResult) {
	for i, m := range launch {
		h.mu.Lock()
		h.plugins[m.name] = m
		h.mu.Unlock()
		r := results[i]
		err := m.finish(ctx, r.inst, r.desc, r.err)
		var dis *disableError
		if errors.As(err, &dis) {
			continue // stays DISABLED, no supervisor
		}
		inst := r.inst
		failures := 0
		if err != nil {
			inst, failures = nil, 1
		}
		m.supervise(inst, failures)
	}
}

// scan reads the lock and the directory into targets by name.
func (h *Host) scan() (map[string]target, error) {
	lock, err := ReadLock(h.cfg.LockPath)
	if errors.Is(err, fs.ErrNotExist) {
		h.log.Warn("no plugin lock file; no plugin will be launched until `plugboard plugins pin NAME...` writes one", "lock", h.cfg.LockPath)
		lock, err = &Lock{Version: LockVersion, Plugins: map[string]LockEntry{}}, nil
	}
	if err != nil {
		return nil, err
	}
	bins, err := scanDir(h.cfg.Dir, h.cfg.LockPath)
	if err != nil {
		return nil, err
	}
	targets := make(map[string]target, len(bins)+len(lock.Plugins))
	for _, b := range bins {
		t := target{name: b.name, path: b.path, sha256: b.sha256}
		pin, ok := lock.Plugins[b.name]
		switch {
		case !ok:
			t.refusal = "binary not pinned; run `plugboard plugins pin " + b.name + "`"
		case pin.SHA256 != b.sha256:
			t.pinned = true
			t.refusal = fmt.Sprintf("sha256 mismatch: pinned %s, found %s; re-pin with `plugboard plugins pin --force %s` if the new binary is trusted", short(pin.SHA256), short(b.sha256), b.name)
		default:
			t.pinned = true
		}
		targets[b.name] = t
	}
	for name, pin := range lock.Plugins {
		if _, ok := targets[name]; ok {
			continue
		}
		targets[name] = target{name: name, sha256: pin.SHA256, pinned: true, refusal: "pinned but missing from the plugin directory"}
	}
	return targets, nil
}

func short(sum string) string {
	if len(sum) > 12 {
		return sum[:12]
	}
	return sum
}

// claimTypes registers m's declared type keys, or reports the first key
// another plugin already owns (or that m declares twice).
func (h *Host) claimTypes(m *managed, d *sdk.Description) error {
	seen := make(map[string]bool, len(d.ConnectionTypes))
	for _, ct := range d.ConnectionTypes {
		if ct.Key == "" {
			return &disableError{msg: "declares a connection type without a key"}
		}
		if seen[ct.Key] {
			return &disableError{msg: fmt.Sprintf("declares connection type %q twice", ct.Key)}
		}
		seen[ct.Key] = true
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return errClosed
	}
	for _, ct := range d.ConnectionTypes {
		if owner := h.types[ct.Key]; owner != nil && owner != m && owner.name != m.name {
			return &disableError{msg: fmt.Sprintf("connection type %q is already declared by plugin %q", ct.Key, owner.name)}
		}
	}
	for _, k := range m.typeKeys {
		if h.types[k] == m && !seen[k] {
			delete(h.types, k)
		}
	}
	m.typeKeys = m.typeKeys[:0]
	for _, ct := range d.ConnectionTypes {
		h.types[ct.Key] = m
		m.typeKeys = append(m.typeKeys, ct.Key)
	}
	return nil
}

// releaseTypes forgets the type keys m owns.
func (h *Host) releaseTypes(m *managed) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, k := range m.typeKeys {
		if h.types[k] == m {
			delete(h.types, k)
		}
	}
	m.typeKeys = nil
}

func (h *Host) notifyStatus(p PluginInfo) {
	if h.cfg.OnStatus == nil || h.ctx.Err() != nil {
		return
	}
	h.cfg.OnStatus(h.ctx, p)
}

// backoff is the delay before the next start after failures in a row.
func (h *Host) backoff(failures int) time.Duration {
	d := h.cfg.RestartBackoffMin
	for i := 1; i < failures && d < h.cfg.RestartBackoffMax; i++ {
		d *= 2
	}
	return min(d, h.cfg.RestartBackoffMax)
}

// disableError marks a start failure that a restart cannot fix.
type disableError struct{ msg string }

func (e *disableError) Error() string { return e.msg }

// syncAndStart syncs the plugins with the lock file and the directory and
// marks the host started.
func (h *Host) syncAndStart(ctx context.Context) error {
	if err := h.sync(ctx); err != nil {
		return err
	}
	h.mu.Lock()
	h.started = true
	h.mu.Unlock()
	return nil
}
