package sdk

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sync"

	"github.com/hashicorp/go-plugin"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	pb "github.com/plugboard/plugboard/plugins/sdk/internal/proto"
)

// This file holds testing through the host (protocol minor 2): a type that
// sets ConnectionType.TestThroughHost gets, in its Test, an HTTP client whose
// requests go to the host over go-plugin's broker. The host injects the
// credential, checks where the request goes and sends it on; the plugin
// never receives the secret values.

// MaxHostHTTPBody is the largest request or response body that passes
// between a plugin and the host in a test through the host.
const MaxHostHTTPBody = 1 << 20

// ErrHostHTTPBodyTruncated is returned when a body that passes through the
// host is larger than MaxHostHTTPBody: by the client's Do for a request
// body, and by the response body's Read, after the first MaxHostHTTPBody
// bytes, for a response body.
var ErrHostHTTPBodyTruncated = errors.New("body larger than sdk.MaxHostHTTPBody (1 MiB) through the host")

// HostError is the error a request through the host fails with when the
// host did not send it or got no response: the host's words, such as
// "plugboard refused the address 169.254.169.254 of api.example.com: a cloud
// metadata address". It never holds a secret value.
type HostError struct {
	Message string
}

func (e *HostError) Error() string { return e.Message }

// hostTransport is the plugin's side: an http.RoundTripper that sends each
// request to the host's HostHTTP service.
type hostTransport struct {
	client pb.HostHTTPClient
}

func (t *hostTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	body, err := readBody(req.Body)
	if err != nil {
		return nil, err
	}
	if len(body) > MaxHostHTTPBody {
		return nil, fmt.Errorf("request body: %w", ErrHostHTTPBodyTruncated)
	}
	resp, err := t.client.RoundTrip(req.Context(), &pb.HTTPRequest{
		Method:  req.Method,
		Url:     req.URL.String(),
		Headers: headersToProto(req.Header),
		Body:    body,
	})
	if err != nil {
		if st, ok := status.FromError(err); ok {
			if err := req.Context().Err(); err != nil {
				return nil, err
			}
			return nil, &HostError{Message: st.Message()}
		}
		return nil, err
	}
	var rest io.Reader
	if resp.GetBodyTruncated() {
		rest = errReader{ErrHostHTTPBodyTruncated}
	}
	return &http.Response{
		Status:        fmt.Sprintf("%d %s", resp.GetStatusCode(), http.StatusText(int(resp.GetStatusCode()))),
		StatusCode:    int(resp.GetStatusCode()),
		Proto:         "HTTP/1.1",
		ProtoMajor:    1,
		ProtoMinor:    1,
		Header:        headersFromProto(resp.GetHeaders()),
		Body:          io.NopCloser(readerWithTail(resp.GetBody(), rest)),
		ContentLength: -1,
		Request:       req,
	}, nil
}

func readBody(r io.ReadCloser) ([]byte, error) {
	if r == nil || r == http.NoBody {
		return nil, nil
	}
	defer r.Close()
	return io.ReadAll(io.LimitReader(r, MaxHostHTTPBody+1))
}

func readerWithTail(body []byte, tail io.Reader) io.Reader {
	if tail == nil {
		return bytes.NewReader(body)
	}
	return io.MultiReader(bytes.NewReader(body), tail)
}

type errReader struct{ err error }

func (r errReader) Read([]byte) (int, error) { return 0, r.err }

// hostHTTPServer is the host's side: it sends each request of the plugin
// with the client the host gave the Test (TestRequest.HTTP).
type hostHTTPServer struct {
	pb.UnimplementedHostHTTPServer
	client *http.Client
}

func (s *hostHTTPServer) RoundTrip(ctx context.Context, in *pb.HTTPRequest) (*pb.HTTPResponse, error) {
	if len(in.GetBody()) > MaxHostHTTPBody {
		return nil, status.Error(codes.InvalidArgument, ErrHostHTTPBodyTruncated.Error())
	}
	req, err := http.NewRequestWithContext(ctx, in.GetMethod(), in.GetUrl(), bytes.NewReader(in.GetBody()))
	if err != nil {
		return nil, status.Errorf(codes.InvalidArgument, "the request is not usable: %v", withoutURL(err))
	}
	req.Header = headersFromProto(in.GetHeaders())
	resp, err := s.client.Do(req)
	if err != nil {
		return nil, status.Error(codes.Unavailable, withoutURL(err).Error())
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, MaxHostHTTPBody+1))
	if err != nil {
		return nil, status.Errorf(codes.Unavailable, "reading the answer: %v", withoutURL(err))
	}
	truncated := len(body) > MaxHostHTTPBody
	if truncated {
		body = body[:MaxHostHTTPBody]
	}
	return &pb.HTTPResponse{
		StatusCode:    int32(resp.StatusCode),
		Headers:       headersToProto(resp.Header),
		Body:          body,
		BodyTruncated: truncated,
	}, nil
}

// withoutURL drops the URL a *url.Error quotes: after the host's injection
// it may carry a credential (a query parameter).
func withoutURL(err error) error {
	var urlErr *url.Error
	if errors.As(err, &urlErr) {
		return urlErr.Err
	}
	return err
}

func headersToProto(h http.Header) []*pb.HTTPHeader {
	out := make([]*pb.HTTPHeader, 0, len(h))
	for k, vs := range h {
		out = append(out, &pb.HTTPHeader{Name: k, Values: vs})
	}
	return out
}

func headersFromProto(hs []*pb.HTTPHeader) http.Header {
	h := make(http.Header, len(hs))
	for _, f := range hs {
		for _, v := range f.GetValues() {
			h.Add(f.GetName(), v)
		}
	}
	return h
}

// hostHTTPService is one HostHTTP server on the broker, for the length of
// one Test call.
type hostHTTPService struct {
	mu      sync.Mutex
	server  *grpc.Server
	stopped bool
}

// serveHostHTTP serves HostHTTP on a new broker id with client and returns
// the id and the function that stops the server.
func serveHostHTTP(broker *plugin.GRPCBroker, client *http.Client) (uint32, func()) {
	svc := &hostHTTPService{}
	id := broker.NextId()
	go broker.AcceptAndServe(id, func(opts []grpc.ServerOption) *grpc.Server {
		s := grpc.NewServer(opts...)
		pb.RegisterHostHTTPServer(s, &hostHTTPServer{client: client})
		svc.mu.Lock()
		defer svc.mu.Unlock()
		if svc.stopped {
			s.Stop() // Serve then returns at once
		}
		svc.server = s
		return s
	})
	return id, svc.stop
}

func (svc *hostHTTPService) stop() {
	svc.mu.Lock()
	defer svc.mu.Unlock()
	svc.stopped = true
	if svc.server != nil {
		svc.server.Stop()
	}
}

// dialHostHTTP connects to the host's HostHTTP server of one Test call and
// returns the client a Test uses, and the function that closes it.
func dialHostHTTP(broker *plugin.GRPCBroker, id uint32) (*http.Client, func(), error) {
	if broker == nil {
		return nil, nil, errors.New("the host offers HTTP through the host, but this plugin was served without a broker")
	}
	conn, err := broker.Dial(id)
	if err != nil {
		return nil, nil, fmt.Errorf("connecting to the host's HTTP service: %w", err)
	}
	client := &http.Client{
		Transport: &hostTransport{client: pb.NewHostHTTPClient(conn)},
		// The host never follows redirects; neither does the plugin's
		// client, so a redirect's target is the plugin's to judge.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	return client, func() { _ = conn.Close() }, nil
}
