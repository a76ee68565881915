// Package benchtest is a bare gqlgen schema for benchmarks: one field,
// Query.payload, returning a static string. The connectionTypes benchmark
// in internal/server serves it beside plugboard to measure what plugboard
// adds on top of gqlgen and net/http. Nothing outside benchmarks uses it.
//
// generated.go and models_gen.go are generated from schema.graphqls; see
// gqlgen.yml for the command.
package benchtest

import (
	"strings"

	"github.com/99designs/gqlgen/graphql"
)

// Envelope is the response to `{ payload }` without the payload string:
// the payload of a response of n bytes has n - len(Envelope) bytes.
const Envelope = `{"data":{"payload":""}}`

// NewSchema returns the executable schema whose payload makes the response
// to `{ payload }` exactly size bytes long (at least len(Envelope)). The
// payload is plain ASCII that JSON does not escape.
func NewSchema(size int) graphql.ExecutableSchema {
	n := max(size-len(Envelope), 0)
	return NewExecutableSchema(Config{Resolvers: &Resolver{Payload: strings.Repeat("x", n)}})
}
