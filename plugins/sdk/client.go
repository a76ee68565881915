package sdk

import (
	"context"
	"errors"
	"fmt"

	"github.com/hashicorp/go-plugin"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"

	pb "github.com/plugboard/plugboard/plugins/sdk/internal/proto"
)

// ErrUnknownType is returned by a Provider for a type key it does not
// declare (wrap it to add the key). The host sees an error that matches it
// with errors.Is and has the gRPC code NotFound.
var ErrUnknownType = errors.New("unknown connection type")

// CallError is the error a host gets when a call to a plugin fails. It
// keeps the gRPC status: status.Code(err) works on it (codes.Unavailable
// when the plugin process died, codes.DeadlineExceeded after the caller's
// deadline, codes.Internal when the plugin panicked, codes.NotFound for an
// unknown type key). errors.Is matches ErrUnknownType,
// context.DeadlineExceeded and context.Canceled by code.
type CallError struct {
	// Method is the RPC that failed: "Describe", "Validate", "Test" or "Ping".
	Method string
	status *status.Status
}

func (e *CallError) Error() string {
	return fmt.Sprintf("plugin %s failed (%s): %s", e.Method, e.status.Code(), e.status.Message())
}

// GRPCStatus returns the status the call failed with.
func (e *CallError) GRPCStatus() *status.Status { return e.status }

// Code returns the gRPC code the call failed with.
func (e *CallError) Code() codes.Code { return e.status.Code() }

// Is reports whether the failure means target.
func (e *CallError) Is(target error) bool {
	switch target {
	case ErrUnknownType:
		return e.status.Code() == codes.NotFound
	case context.DeadlineExceeded:
		return e.status.Code() == codes.DeadlineExceeded
	case context.Canceled:
		return e.status.Code() == codes.Canceled
	}
	return false
}

func callError(method string, err error) error {
	return &CallError{Method: method, status: status.Convert(err)}
}

// grpcClient is the host-side Provider: it converts the Go types to the
// wire messages and back.
type grpcClient struct {
	client pb.ProviderClient
	health healthpb.HealthClient
	broker *plugin.GRPCBroker
}

var (
	_ Provider = (*grpcClient)(nil)
	_ Pinger   = (*grpcClient)(nil)
)

func newGRPCClient(conn *grpc.ClientConn, broker *plugin.GRPCBroker) *grpcClient {
	return &grpcClient{client: pb.NewProviderClient(conn), health: healthpb.NewHealthClient(conn), broker: broker}
}

func (c *grpcClient) Describe(ctx context.Context) (*Description, error) {
	resp, err := c.client.Describe(ctx, &pb.DescribeRequest{})
	if err != nil {
		return nil, callError("Describe", err)
	}
	return descriptionFromProto(resp), nil
}

func (c *grpcClient) Validate(ctx context.Context, req *ValidateRequest) (*ValidateResponse, error) {
	resp, err := c.client.Validate(ctx, &pb.ValidateRequest{TypeKey: req.TypeKey, Values: req.Values, SecretsWithheld: req.SecretsWithheld})
	if err != nil {
		return nil, callError("Validate", err)
	}
	return &ValidateResponse{Diagnostics: diagnosticsFromProto(resp.GetDiagnostics())}, nil
}

func (c *grpcClient) Test(ctx context.Context, req *TestRequest) (*TestResponse, error) {
	msg := &pb.TestRequest{
		TypeKey: req.TypeKey,
		Values:  req.Values,
		Token:   tokenToProto(req.Token),
	}
	if req.HTTP != nil {
		if c.broker == nil {
			return nil, &CallError{Method: "Test", status: status.New(codes.FailedPrecondition, "testing through the host needs go-plugin's broker")}
		}
		id, stop := serveHostHTTP(c.broker, req.HTTP)
		defer stop()
		msg.HostHttpBrokerId = id
	}
	resp, err := c.client.Test(ctx, msg)
	if err != nil {
		return nil, callError("Test", err)
	}
	return &TestResponse{OK: resp.GetOk(), Message: resp.GetMessage()}, nil
}

// pingService is the health service name go-plugin marks SERVING in every
// plugin server (plugin.GRPCServiceName).
const pingService = "plugin"

// Ping calls the standard gRPC health check that go-plugin serves.
func (c *grpcClient) Ping(ctx context.Context) error {
	resp, err := c.health.Check(ctx, &healthpb.HealthCheckRequest{Service: pingService})
	if err != nil {
		return callError("Ping", err)
	}
	if s := resp.GetStatus(); s != healthpb.HealthCheckResponse_SERVING {
		return &CallError{Method: "Ping", status: status.Newf(codes.Unavailable, "plugin health is %s", s)}
	}
	return nil
}
