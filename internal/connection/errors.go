package connection

import (
	"errors"
	"fmt"
	"strings"
)

// Errors the API layer maps to GraphQL error codes.
var (
	// ErrNotFound: the object does not exist or is not the viewer's.
	ErrNotFound = errors.New("not found")
	// ErrValidation: the input is invalid; a *ValidationError says where.
	ErrValidation = errors.New("validation failed")
	// ErrConflict: the change clashes with stored data.
	ErrConflict = errors.New("conflict")
)

// FieldError is a problem with one input of a mutation.
type FieldError struct {
	// Field is the path of the input at fault, such as ["values", "apiKey"].
	Field []string
	// Code is a stable machine-readable reason, such as REQUIRED.
	Code string
	// Message is for people; it never quotes a secret value.
	Message string
}

// Field error codes.
const (
	CodeRequired       = "REQUIRED"
	CodeUnknownInput   = "UNKNOWN_INPUT"
	CodeInvalidValue   = "INVALID_VALUE"
	CodeTooLong        = "TOO_LONG"
	CodeTooMany        = "TOO_MANY"
	CodeReadOnly       = "READ_ONLY"
	CodePluginRejected = "PLUGIN_REJECTED"
	CodeTestFailed     = "TEST_FAILED"
	CodeUnknownType    = "UNKNOWN_TYPE"
	CodeNotFound       = "NOT_FOUND"
	CodeTaken          = "TAKEN"
	CodeInUse          = "IN_USE"
	CodeNotSupported   = "NOT_SUPPORTED"
	// CodeTokenRequestFailed: the provider refused the token request.
	CodeTokenRequestFailed = "TOKEN_REQUEST_FAILED"
)

// ValidationError carries the field errors of a rejected mutation; nothing
// was stored. It wraps ErrValidation (or ErrConflict for TAKEN and IN_USE).
type ValidationError struct {
	Fields []FieldError
}

func (e *ValidationError) Error() string {
	msgs := make([]string, 0, len(e.Fields))
	for _, f := range e.Fields {
		if len(f.Field) > 0 {
			msgs = append(msgs, strings.Join(f.Field, ".")+": "+f.Message)
		} else {
			msgs = append(msgs, f.Message)
		}
	}
	return "invalid input: " + strings.Join(msgs, "; ")
}

// Unwrap lets errors.Is see ErrValidation or ErrConflict.
func (e *ValidationError) Unwrap() error {
	for _, f := range e.Fields {
		if f.Code == CodeTaken || f.Code == CodeInUse {
			return ErrConflict
		}
	}
	return ErrValidation
}

func invalid(fields ...FieldError) error { return &ValidationError{Fields: fields} }

func fieldErr(code, msg string, path ...string) FieldError {
	return FieldError{Field: path, Code: code, Message: msg}
}

func notFound(what string, id int) error {
	return fmt.Errorf("%s %d: %w", what, id, ErrNotFound)
}
