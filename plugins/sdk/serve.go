package sdk

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/go-plugin"
)

// protocolMinor is the minor version of the protocol: additions that old
// hosts ignore. Only the major version (ProtocolVersion) is negotiated; the
// minor one is logged. Minor 1 added ConnectionType.HTTP (the credential
// proxy); minor 2 ConnectionType.TestThroughHost, the host's HostHTTP
// service over the broker and ValidateRequest.SecretsWithheld.
const protocolMinor = 2

// LogLevelEnv names the environment variable that sets the level of the
// default plugin logger (trace, debug, info, warn, error; default info).
const LogLevelEnv = "PLUGBOARD_PLUGIN_LOG_LEVEL"

// ReattachEnv names the environment variable in which WithDebug prints the
// reattach configuration of a plugin started by hand (see
// ParseReattachConfig).
const ReattachEnv = "PLUGBOARD_PLUGIN_REATTACH"

// ServeOption configures Serve.
type ServeOption func(*serveConfig)

type serveConfig struct {
	logger hclog.Logger
	debug  bool
	stderr io.Writer
	stdout io.Writer
	exit   func(int)
}

// WithLogger sets the plugin's logger. The host reads the plugin's stderr
// and parses JSON log lines, so a logger that writes hclog JSON to
// os.Stderr (the default) keeps levels and fields intact.
func WithLogger(l hclog.Logger) ServeOption {
	return func(c *serveConfig) { c.logger = l }
}

// WithDebug serves the plugin in debug mode: started by hand (under a
// debugger, say) rather than by a host. It prints ReattachEnv=<json> on
// stdout for a host to attach with ParseReattachConfig, and serves until
// interrupted.
func WithDebug() ServeOption {
	return func(c *serveConfig) { c.debug = true }
}

// Serve serves p to a plugboard host and returns when the host is done with
// the plugin. It is all a plugin's main needs:
//
//	func main() { sdk.Serve(asana.New()) }
//
// Run by a person rather than by a host, Serve explains that on stderr and
// exits with status 1.
func Serve(p Provider, opts ...ServeOption) {
	cfg := &serveConfig{stderr: os.Stderr, stdout: os.Stdout, exit: os.Exit}
	for _, o := range opts {
		o(cfg)
	}
	name := filepath.Base(os.Args[0])
	if p == nil {
		fmt.Fprintf(cfg.stderr, "%s: plugboard plugin start-up failed: sdk.Serve was given a nil Provider (a bug in the plugin)\n", name)
		cfg.exit(1)
		return
	}
	if !cfg.debug && os.Getenv(Handshake.MagicCookieKey) != Handshake.MagicCookieValue {
		fmt.Fprintf(cfg.stderr, notAHostMessage, name, ProtocolVersion, protocolMinor)
		cfg.exit(1)
		return
	}
	logger := cfg.logger
	if logger == nil {
		logger = hclog.New(&hclog.LoggerOptions{
			Name:       name,
			Level:      hclog.LevelFromString(os.Getenv(LogLevelEnv)),
			Output:     cfg.stderr,
			JSONFormat: true,
		})
	}
	logger.Debug("serving plugboard plugin", "protocol", fmt.Sprintf("%d.%d", ProtocolVersion, protocolMinor))

	tracing := startTracing(os.Getenv(OTLPEndpointEnv), name)
	defer tracing.shutdown()
	sc := &plugin.ServeConfig{
		HandshakeConfig: Handshake,
		Plugins:         plugin.PluginSet{PluginName: &ProviderPlugin{Impl: p, Logger: logger, tracer: tracing.tracer()}},
		GRPCServer:      tracing.grpcServer(),
		Logger:          logger,
	}
	if cfg.debug {
		serveDebug(sc, name, cfg.stdout)
		return
	}
	plugin.Serve(sc)
}

const notAHostMessage = `%s is a plugboard plugin: the plugboard server starts it, it is not meant
to be run by hand. To install it, copy the binary into the server's plugin
directory and pin its SHA-256 checksum (plugboard plugins pin NAME), then reload
the plugins. (plugboard plugin protocol %d.%d)
`

func serveDebug(sc *plugin.ServeConfig, name string, stdout io.Writer) {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	reattach := make(chan *plugin.ReattachConfig, 1)
	closed := make(chan struct{})
	sc.Test = &plugin.ServeTestConfig{Context: ctx, ReattachConfigCh: reattach, CloseCh: closed}
	go plugin.Serve(sc)
	select {
	case rc := <-reattach:
		b, err := json.Marshal(reattachJSON{
			Protocol:        string(rc.Protocol),
			ProtocolVersion: rc.ProtocolVersion,
			Pid:             rc.Pid,
			Network:         rc.Addr.Network(),
			Addr:            rc.Addr.String(),
		})
		if err != nil {
			panic(err) // a struct of strings and ints always marshals
		}
		fmt.Fprintf(stdout, "%s is serving in debug mode; attach a host with:\n%s='%s'\nPress Ctrl-C to stop.\n", name, ReattachEnv, b)
	case <-closed:
		return
	}
	<-closed
}

type reattachJSON struct {
	Protocol        string `json:"protocol"`
	ProtocolVersion int    `json:"protocolVersion"`
	Pid             int    `json:"pid"`
	Network         string `json:"network"`
	Addr            string `json:"addr"`
}

// ParseReattachConfig parses the value WithDebug prints for ReattachEnv into
// a go-plugin ReattachConfig, for a host's ClientConfig.Reattach (instead of
// Cmd). The host then talks to the plugin started by hand and does not kill
// it.
func ParseReattachConfig(s string) (*plugin.ReattachConfig, error) {
	var r reattachJSON
	if err := json.Unmarshal([]byte(s), &r); err != nil {
		return nil, fmt.Errorf("parse %s: %w", ReattachEnv, err)
	}
	if r.Protocol != string(plugin.ProtocolGRPC) {
		return nil, fmt.Errorf("parse %s: protocol %q, want %q", ReattachEnv, r.Protocol, plugin.ProtocolGRPC)
	}
	if r.ProtocolVersion != ProtocolVersion {
		return nil, fmt.Errorf("parse %s: plugin speaks protocol %d, this SDK speaks %d", ReattachEnv, r.ProtocolVersion, ProtocolVersion)
	}
	var addr net.Addr
	var err error
	switch r.Network {
	case "unix":
		addr, err = net.ResolveUnixAddr(r.Network, r.Addr)
	case "tcp":
		addr, err = net.ResolveTCPAddr(r.Network, r.Addr)
	default:
		err = fmt.Errorf("unsupported network %q", r.Network)
	}
	if err != nil {
		return nil, fmt.Errorf("parse %s: %w", ReattachEnv, err)
	}
	return &plugin.ReattachConfig{
		Protocol:        plugin.ProtocolGRPC,
		ProtocolVersion: r.ProtocolVersion,
		Addr:            addr,
		Pid:             r.Pid,
		Test:            true,
	}, nil
}
