package sdk

import (
	"context"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/go-plugin"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/grpc"

	pb "github.com/plugboard/plugboard/plugins/sdk/internal/proto"
)

// Handshake is the go-plugin handshake shared by the host and every plugin.
// The magic cookie only tells a binary that it was started by a plugboard
// host (it is not a security measure); the protocol version must match
// exactly.
var Handshake = plugin.HandshakeConfig{
	ProtocolVersion:  ProtocolVersion,
	MagicCookieKey:   "PLUGBOARD_PLUGIN",
	MagicCookieValue: "b3c1f0a2e5d94c7fb18e6a0d2f4c9e73-plugboard-provider",
}

// PluginName is the name the provider is registered under in the plugin
// set: a host dispenses it with rpcClient.Dispense(sdk.PluginName).
const PluginName = "provider"

// PluginSet returns the plugin set a host passes as ClientConfig.Plugins.
// It holds the gRPC provider plugin only; set ClientConfig.AllowedProtocols
// to []plugin.Protocol{plugin.ProtocolGRPC} as well. The value dispensed
// under PluginName implements both Provider and Pinger.
func PluginSet() plugin.PluginSet {
	return plugin.PluginSet{PluginName: &ProviderPlugin{}}
}

// Pinger is implemented by the Provider a host dispenses. Ping makes one
// bare unary gRPC call over the plugin's connection (the standard health
// check go-plugin serves in every plugin) without touching the provider:
// a liveness probe and a baseline for the cost of a call.
type Pinger interface {
	Ping(ctx context.Context) error
}

// ProviderPlugin is the go-plugin glue for a Provider over gRPC. Hosts use
// PluginSet; with Impl set it serves a provider, which Serve does for plugin
// authors (and tests may do in-process with plugin.TestPluginGRPCConn).
type ProviderPlugin struct {
	plugin.NetRPCUnsupportedPlugin
	// Impl is the provider to serve; nil on the host side.
	Impl Provider
	// Logger, if set, receives the plugin-side log of recovered panics.
	Logger hclog.Logger

	// tracer, set by Serve when the host traces, makes the spans of
	// Validate and Test.
	tracer trace.Tracer
}

var _ plugin.GRPCPlugin = (*ProviderPlugin)(nil)

// GRPCServer registers the provider on the plugin's gRPC server.
func (p *ProviderPlugin) GRPCServer(broker *plugin.GRPCBroker, s *grpc.Server) error {
	pb.RegisterProviderServer(s, &grpcServer{impl: p.Impl, logger: p.Logger, tracer: p.tracer, broker: broker})
	return nil
}

// GRPCClient returns the host-side Provider (also a Pinger) over conn. A
// Test whose TestRequest.HTTP is set serves that client to the plugin over
// broker for the length of the call (HostHTTP).
func (p *ProviderPlugin) GRPCClient(_ context.Context, broker *plugin.GRPCBroker, conn *grpc.ClientConn) (interface{}, error) {
	return newGRPCClient(conn, broker), nil
}
