package graph

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	"github.com/99designs/gqlgen/graphql"
	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/gqlerror"

	"github.com/plugboard/plugboard/ent"
	"github.com/plugboard/plugboard/graph/model"
	"github.com/plugboard/plugboard/internal/auth"
	"github.com/plugboard/plugboard/internal/connection"
	"github.com/plugboard/plugboard/internal/globalid"
	"github.com/plugboard/plugboard/internal/oauth"
	"github.com/plugboard/plugboard/internal/onprem"
	"github.com/plugboard/plugboard/internal/pluginhost"
)

// Error codes carried in extensions.code.
const (
	CodeUnauthenticated   = "UNAUTHENTICATED"
	CodeForbidden         = "FORBIDDEN"
	CodeNotFound          = "NOT_FOUND"
	CodeValidationFailed  = "VALIDATION_FAILED"
	CodeConflict          = "CONFLICT"
	CodePluginUnavailable = "PLUGIN_UNAVAILABLE"
	CodeInternal          = "INTERNAL"
	// CodeUpstreamUnavailable: an OAuth 2.0 provider failed in a way that
	// may pass (5xx, timeout, network).
	CodeUpstreamUnavailable = "UPSTREAM_UNAVAILABLE"
	// CodeOnPremAgentDisconnected: the credential goes through a
	// customer's on-prem agent and no agent of its resource is connected.
	CodeOnPremAgentDisconnected = "ON_PREM_AGENT_DISCONNECTED"
)

// agentDisconnectedText is what a caller is told when a bound
// credential's agent is not connected.
const agentDisconnectedText = "The credential goes through the customer's on-prem agent, and the agent is not connected: start it (plugboard agent) next to the service and try again."

// Classify returns the extensions.code of err and a message safe to show.
// Unknown errors become INTERNAL with a generic message, so nothing of the
// store or a secret reaches a client through an error text.
func Classify(err error) (code, message string) {
	var ve *connection.ValidationError
	switch {
	case errors.As(err, &ve):
		if errors.Is(ve, connection.ErrConflict) {
			return CodeConflict, ve.Error()
		}
		return CodeValidationFailed, ve.Error()
	case errors.Is(err, oauth.ErrNotFound), errors.Is(err, auth.ErrNotFound):
		return CodeNotFound, "not found"
	case errors.Is(err, oauth.ErrNotOAuth), errors.Is(err, oauth.ErrMisconfigured), errors.Is(err, oauth.ErrRedirectNotAllowed):
		return CodeValidationFailed, publicText(err)
	case errors.Is(err, oauth.ErrNotConnected), errors.Is(err, oauth.ErrReconnectNeeded):
		return CodeConflict, publicText(err)
	case errors.Is(err, oauth.ErrProvider):
		// A provider's transient failure; the message is sanitized.
		return CodeUpstreamUnavailable, publicText(err)
	case errors.Is(err, onprem.ErrAgentDisconnected):
		return CodeOnPremAgentDisconnected, agentDisconnectedText
	case errors.Is(err, auth.ErrUnauthenticated):
		return CodeUnauthenticated, auth.ErrUnauthenticated.Error()
	case errors.Is(err, auth.ErrForbidden):
		return CodeForbidden, err.Error()
	case errors.Is(err, connection.ErrNotFound), ent.IsNotFound(err), errors.Is(err, globalid.ErrInvalid):
		return CodeNotFound, "not found"
	case errors.Is(err, connection.ErrValidation):
		return CodeValidationFailed, err.Error()
	case errors.Is(err, connection.ErrConflict), ent.IsConstraintError(err):
		return CodeConflict, "the change conflicts with stored data"
	case errors.Is(err, pluginhost.ErrUnavailable), errors.Is(err, pluginhost.ErrTimeout),
		errors.Is(err, pluginhost.ErrUnknownType), errors.Is(err, pluginhost.ErrPluginFailed):
		// The host's messages name the plugin and what happened, never a
		// value of the request.
		return CodePluginUnavailable, err.Error()
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled):
		return CodeInternal, "the request was cancelled or ran out of time"
	}
	return CodeInternal, "internal error"
}

// publicText is err's text for a caller: a credential is named by the
// global id the caller knows, never by its row id.
func publicText(err error) string {
	var ce *oauth.CredentialError
	if errors.As(err, &ce) {
		return "credential " + globalid.Encode(ce.ID) + ": " + ce.Err.Error()
	}
	return err.Error()
}

// NewErrorPresenter returns the presenter that gives every error an
// extensions.code. INTERNAL errors are logged in full (error texts of the
// store and of plugboard never carry input values) and shown generically.
func NewErrorPresenter(logger *slog.Logger) graphql.ErrorPresenterFunc {
	return func(ctx context.Context, err error) *gqlerror.Error {
		out := presentError(ctx, err)
		if out.Extensions["code"] == CodeInternal {
			logger.Error("internal error in a GraphQL request", "path", out.Path.String(), "err", err)
		}
		return out
	}
}

func presentError(ctx context.Context, err error) *gqlerror.Error {
	if out := argumentError(ctx, err); out != nil {
		return out
	}
	var gqlErr *gqlerror.Error
	if errors.As(err, &gqlErr) && gqlErr.Err == nil {
		// Parse and validation errors of the document, made by gqlgen.
		if gqlErr.Extensions == nil || gqlErr.Extensions["code"] == nil {
			gqlErr.Extensions = map[string]any{"code": CodeValidationFailed}
		}
		return gqlErr
	}
	code, msg := Classify(err)
	out := &gqlerror.Error{
		Err:        err,
		Message:    msg,
		Path:       graphql.GetPath(ctx),
		Extensions: map[string]any{"code": code},
	}
	var ve *connection.ValidationError
	if errors.As(err, &ve) {
		out.Extensions["userErrors"] = userErrors(ve)
	}
	return out
}

// InvalidArgument returns the VALIDATION_FAILED error for an argument of a
// field; field is the argument's path, such as ["where", "or", "3"], and
// comes back in extensions.userErrors as a mutation's field errors do.
func InvalidArgument(field []string, code, message string) *gqlerror.Error {
	ve := &connection.ValidationError{Fields: []connection.FieldError{{Field: field, Code: code, Message: message}}}
	return &gqlerror.Error{
		Message:    ve.Error(),
		Extensions: map[string]any{"code": CodeValidationFailed, "userErrors": userErrors(ve)},
	}
}

// argumentError turns gqlgen's failure to read an argument of the field in
// ctx (a cursor that does not decode, a time or enum value of the wrong
// form) into the caller's VALIDATION_FAILED naming the argument, or returns
// nil for any other error. Such a failure is a *gqlerror.Error whose path
// runs past the field's into one of its arguments.
func argumentError(ctx context.Context, err error) *gqlerror.Error {
	var gqlErr *gqlerror.Error
	fc := graphql.GetFieldContext(ctx)
	if !errors.As(err, &gqlErr) || gqlErr.Err == nil || fc == nil || fc.Field.Field == nil || fc.Field.Definition == nil {
		return nil
	}
	if code, _ := Classify(gqlErr.Err); code != CodeInternal {
		return nil // an id that does not decode is NOT_FOUND, as any other
	}
	base := fc.Path()
	if len(gqlErr.Path) <= len(base) || gqlErr.Path[:len(base)].String() != base.String() {
		return nil
	}
	name, ok := gqlErr.Path[len(base)].(ast.PathName)
	arg := fc.Field.Definition.Arguments.ForName(string(name))
	if !ok || arg == nil {
		return nil
	}
	field := make([]string, 0, len(gqlErr.Path)-len(base))
	for _, p := range gqlErr.Path[len(base):] {
		field = append(field, fmt.Sprint(p))
	}
	msg := gqlErr.Err.Error()
	if len(field) == 1 && arg.Type.Name() == "Cursor" {
		msg = "not a cursor this API returned"
	}
	out := InvalidArgument(field, connection.CodeInvalidValue, msg)
	out.Path = base
	out.Locations = gqlErr.Locations
	return out
}

// userErrors converts the field errors of ve for a payload.
func userErrors(ve *connection.ValidationError) []*model.UserError {
	out := make([]*model.UserError, 0, len(ve.Fields))
	for _, f := range ve.Fields {
		field := f.Field
		if field == nil {
			field = []string{}
		}
		out = append(out, &model.UserError{Field: field, Code: f.Code, Message: f.Message})
	}
	return out
}

// fieldErrors splits a mutation's error: field problems become the
// payload's userErrors and also a VALIDATION_FAILED (or CONFLICT) error
// with extensions.code; any other error is returned for the presenter.
func fieldErrors(ctx context.Context, err error) ([]*model.UserError, error) {
	if err == nil {
		return []*model.UserError{}, nil
	}
	var ie *auth.InputError
	if errors.As(err, &ie) {
		err = &connection.ValidationError{Fields: []connection.FieldError{{Field: []string{ie.Field}, Code: ie.Code, Message: ie.Message}}}
	}
	var ve *connection.ValidationError
	if !errors.As(err, &ve) {
		return nil, err
	}
	graphql.AddError(ctx, err)
	return userErrors(ve), nil
}
