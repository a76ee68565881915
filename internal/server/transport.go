package server

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"

	"github.com/99designs/gqlgen/graphql"
	"github.com/99designs/gqlgen/graphql/handler/transport"
	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/gqlerror"
)

// CodeBadRequest is the extensions.code of a request refused before its
// operation runs because it is not a GraphQL-over-HTTP request plugboard
// serves: an unsupported method or content type, a body that is not one
// JSON object, variables that do not decode, a mutation over GET or a
// subscription over HTTP.
const CodeBadRequest = "BAD_REQUEST"

// Close codes of graphql-transport-ws for a refused connection_init; a
// standard client does not reconnect after them.
const (
	wsCloseUnauthorized = 4401
	wsCloseForbidden    = 4403
	// wsCloseTryAgain (1013, Try Again Later) is for a token that could
	// not be checked: clients retry with a back-off.
	wsCloseTryAgain = 1013
)

// refuseWebsocket ends a websocket's connection_init with err, closing the
// socket with code and reason.
func refuseWebsocket(ctx context.Context, code int, reason string, err error) (context.Context, *transport.InitPayload, error) {
	ctx = transport.WithWebsocketCloseCode(ctx, code)
	ctx = transport.AppendCloseReason(ctx, reason)
	return ctx, nil, err
}

// bufferBody reads a request body of at most MaxBodyBytes into memory,
// whether its length is declared or it comes chunked; a larger one is
// refused with 413. It reports false when it has answered the request.
func bufferBody(w http.ResponseWriter, r *http.Request) (*http.Request, bool) {
	tooLarge := fmt.Sprintf("the request body is larger than %d bytes", MaxBodyBytes)
	if r.ContentLength > MaxBodyBytes {
		writeGraphQLError(w, http.StatusRequestEntityTooLarge, CodeQueryTooLarge, tooLarge)
		return r, false
	}
	if r.Body == nil || r.Body == http.NoBody {
		return r, true
	}
	b, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxBodyBytes))
	var mbe *http.MaxBytesError
	switch {
	case errors.As(err, &mbe):
		writeGraphQLError(w, http.StatusRequestEntityTooLarge, CodeQueryTooLarge, tooLarge)
		return r, false
	case err != nil:
		writeGraphQLError(w, http.StatusBadRequest, CodeBadRequest, "the request body could not be read")
		return r, false
	}
	r.Body = io.NopCloser(bytes.NewReader(b))
	r.ContentLength = int64(len(b))
	return r, true
}

// httpTransport is gqlgen's GET or POST transport with plugboard's checks
// of the request before it, and refusals of operations the method does not
// carry (mutations over GET, subscriptions over HTTP), all with a code.
type httpTransport struct {
	graphql.Transport
	get bool
}

func (t httpTransport) Do(w http.ResponseWriter, r *http.Request, exec graphql.GraphExecutor) {
	var problem string
	if t.get {
		problem = checkQueryString(r.URL.RawQuery)
	} else {
		b, _ := io.ReadAll(r.Body) // buffered by bufferBody
		problem = checkJSONBody(b)
		r.Body = io.NopCloser(bytes.NewReader(b))
	}
	if problem != "" {
		writeGraphQLError(w, http.StatusBadRequest, CodeBadRequest, problem)
		return
	}
	sw := &statusOverride{ResponseWriter: w}
	t.Transport.Do(sw, r, methodRules{GraphExecutor: exec, get: t.get, w: sw})
}

// checkJSONBody returns what is wrong with a POST body, or "": it must be
// exactly one JSON object whose members have the types GraphQL-over-HTTP
// gives them.
func checkJSONBody(b []byte) string {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var req struct {
		Query         *string        `json:"query"`
		OperationName *string        `json:"operationName"`
		Variables     map[string]any `json:"variables"`
		Extensions    map[string]any `json:"extensions"`
	}
	if err := dec.Decode(&req); err != nil {
		var te *json.UnmarshalTypeError
		switch {
		case errors.As(err, &te) && te.Field == "":
			return "the body must be one JSON object (batches are not accepted)"
		case errors.As(err, &te):
			want := "a JSON object"
			if te.Field == "query" || te.Field == "operationName" {
				want = "a string"
			}
			return fmt.Sprintf("%s must be %s", te.Field, want)
		}
		return "the body is not valid JSON: " + err.Error()
	}
	if _, err := dec.Token(); err != io.EOF {
		return "the body must hold one JSON object and nothing after it"
	}
	return ""
}

// checkQueryString returns what is wrong with a GET request's query
// string, or "".
func checkQueryString(raw string) string {
	q, err := url.ParseQuery(raw)
	if err != nil {
		return "the query string does not parse"
	}
	for _, name := range []string{"variables", "extensions"} {
		s := q.Get(name)
		if s == "" {
			continue
		}
		dec := json.NewDecoder(bytes.NewReader([]byte(s)))
		var m map[string]any
		if err := dec.Decode(&m); err != nil {
			return name + " must be a JSON object"
		}
		if _, err := dec.Token(); err != io.EOF {
			return name + " must hold one JSON object and nothing after it"
		}
	}
	return ""
}

// methodRules refuses, once the operation is known, what its HTTP method
// does not carry: a subscription (served over the websocket) and, over
// GET, a mutation. It sets the response status through w.
type methodRules struct {
	graphql.GraphExecutor
	get bool
	w   *statusOverride
}

func (m methodRules) CreateOperationContext(ctx context.Context, params *graphql.RawParams) (*graphql.OperationContext, gqlerror.List) {
	oc, errs := m.GraphExecutor.CreateOperationContext(ctx, params)
	if errs != nil || oc == nil || oc.Operation == nil {
		return oc, errs
	}
	switch {
	case oc.Operation.Operation == ast.Subscription:
		m.w.status = http.StatusBadRequest
		return oc, gqlerror.List{badRequest("subscriptions are served over the websocket at /graphql (graphql-transport-ws), not over plain HTTP")}
	case m.get && oc.Operation.Operation == ast.Mutation:
		m.w.status = http.StatusMethodNotAllowed
		m.w.Header().Set("Allow", "POST")
		return oc, gqlerror.List{badRequest("a mutation must be sent by POST")}
	}
	return oc, nil
}

func badRequest(msg string) *gqlerror.Error {
	return &gqlerror.Error{Message: msg, Extensions: map[string]any{"code": CodeBadRequest}}
}

// statusOverride writes status, when set, in place of the one gqlgen picks.
type statusOverride struct {
	http.ResponseWriter
	status int
}

func (s *statusOverride) WriteHeader(code int) {
	if s.status != 0 {
		code = s.status
	}
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusOverride) Unwrap() http.ResponseWriter { return s.ResponseWriter }

// unsupported answers, with a code, every request no other transport
// takes: a method other than GET, POST and OPTIONS, a POST body that is
// not JSON, an upgrade to something other than a websocket.
type unsupported struct{}

func (unsupported) Supports(*http.Request) bool { return true }

func (unsupported) Do(w http.ResponseWriter, r *http.Request, _ graphql.GraphExecutor) {
	switch r.Method {
	case http.MethodPost:
		writeGraphQLError(w, http.StatusUnsupportedMediaType, CodeBadRequest,
			"POST a JSON body (Content-Type: application/json)")
	case http.MethodGet:
		writeGraphQLError(w, http.StatusBadRequest, CodeBadRequest,
			"only websocket upgrades (graphql-transport-ws) are served at /graphql")
	default:
		w.Header().Set("Allow", "GET, POST, OPTIONS")
		writeGraphQLError(w, http.StatusMethodNotAllowed, CodeBadRequest,
			fmt.Sprintf("%s is not served at /graphql: use POST, GET or a websocket", r.Method))
	}
}
