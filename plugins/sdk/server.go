package sdk

import (
	"context"
	"errors"
	"fmt"
	"runtime/debug"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/go-plugin"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	pb "github.com/plugboard/plugboard/plugins/sdk/internal/proto"
)

// grpcServer adapts a Provider to the generated gRPC service. It runs in the
// plugin process.
type grpcServer struct {
	pb.UnimplementedProviderServer
	impl   Provider
	logger hclog.Logger
	// tracer, if set, makes a span of every Validate and Test.
	tracer trace.Tracer
	// broker reaches the host's HostHTTP of a Test through the host.
	broker *plugin.GRPCBroker
}

func (s *grpcServer) Describe(ctx context.Context, _ *pb.DescribeRequest) (resp *pb.DescribeResponse, err error) {
	defer s.recoverPanic("Describe", &err)
	d, err := s.impl.Describe(ctx)
	if err != nil {
		return nil, toStatus(err)
	}
	resp, err = descriptionToProto(d)
	if err != nil {
		return nil, status.Errorf(codes.Internal, "plugin returned an invalid description: %v", err)
	}
	return resp, nil
}

func (s *grpcServer) Validate(ctx context.Context, req *pb.ValidateRequest) (resp *pb.ValidateResponse, err error) {
	ctx, end := startSpan(ctx, s.tracer, "Validate", req.GetTypeKey())
	defer func() { end(err) }()
	defer s.recoverPanic("Validate", &err)
	r, err := s.impl.Validate(ctx, &ValidateRequest{
		TypeKey:         req.GetTypeKey(),
		Values:          nonNil(req.GetValues()),
		SecretsWithheld: req.GetSecretsWithheld(),
	})
	if err != nil {
		return nil, toStatus(err)
	}
	if r == nil {
		return nil, status.Error(codes.Internal, "plugin returned no Validate response")
	}
	ds, err := diagnosticsToProto(r.Diagnostics)
	if err != nil {
		return nil, status.Errorf(codes.Internal, "plugin returned an invalid Validate response: %v", err)
	}
	return &pb.ValidateResponse{Diagnostics: ds}, nil
}

func (s *grpcServer) Test(ctx context.Context, req *pb.TestRequest) (resp *pb.TestResponse, err error) {
	ctx, end := startSpan(ctx, s.tracer, "Test", req.GetTypeKey())
	defer func() { end(err) }()
	defer s.recoverPanic("Test", &err)
	call := &TestRequest{
		TypeKey: req.GetTypeKey(),
		Values:  nonNil(req.GetValues()),
		Token:   tokenFromProto(req.GetToken()),
	}
	if id := req.GetHostHttpBrokerId(); id != 0 {
		client, closeConn, err := dialHostHTTP(s.broker, id)
		if err != nil {
			return nil, status.Error(codes.Unavailable, err.Error())
		}
		defer closeConn()
		call.HTTP = client
	}
	r, err := s.impl.Test(ctx, call)
	if err != nil {
		return nil, toStatus(err)
	}
	if r == nil {
		return nil, status.Error(codes.Internal, "plugin returned no Test response")
	}
	return &pb.TestResponse{Ok: r.OK, Message: r.Message}, nil
}

// recoverPanic turns a panic in the provider into a codes.Internal error so
// that one bad call does not take the plugin down. Neither the error nor the
// log carries the panic value, which may hold request values (secrets): only
// its type and the stack.
func (s *grpcServer) recoverPanic(method string, err *error) {
	v := recover()
	if v == nil {
		return
	}
	if s.logger != nil {
		s.logger.Error("plugin panicked", "method", method, "panic_type", fmt.Sprintf("%T", v), "stack", string(debug.Stack()))
	}
	*err = status.Errorf(codes.Internal, "plugin panicked in %s: recovered a panic of type %T (see the plugin log for the stack)", method, v)
}

// toStatus gives a provider's error a gRPC status the host can act on. An
// error that already carries a status keeps it.
func toStatus(err error) error {
	if _, ok := status.FromError(err); ok {
		return err
	}
	switch {
	case errors.Is(err, ErrUnknownType):
		return status.Error(codes.NotFound, err.Error())
	case errors.Is(err, context.DeadlineExceeded):
		return status.Error(codes.DeadlineExceeded, err.Error())
	case errors.Is(err, context.Canceled):
		return status.Error(codes.Canceled, err.Error())
	}
	return status.Error(codes.Unknown, err.Error())
}

func nonNil(m map[string]string) map[string]string {
	if m == nil {
		return map[string]string{}
	}
	return m
}
