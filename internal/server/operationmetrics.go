package server

import (
	"context"
	"sync"
	"time"

	"github.com/99designs/gqlgen/graphql"
	"github.com/vektah/gqlparser/v2/ast"

	"github.com/plugboard/plugboard/internal/auth"
)

// Label values of the GraphQL histogram for operations without a name of
// their own.
const (
	opAnonymous = "anonymous" // an operation without a name
	opOther     = "other"     // a name beyond the bound, or not admitted
	opUnknown   = "unknown"   // the type, when there is no operation
)

// timeOperations is a gqlgen operation middleware that records each
// operation's latency by name and type. A query or mutation is timed until
// its response is ready; a subscription only until it is set up, since its
// responses come whenever events do.
func (m *Metrics) timeOperations(ctx context.Context, next graphql.OperationHandler) graphql.ResponseHandler {
	start := time.Now()
	name, typ := m.operationLabels(ctx)
	responses := next(ctx)
	hist := m.operations.WithLabelValues(name, typ)
	if typ == string(ast.Subscription) {
		hist.Observe(time.Since(start).Seconds())
		return responses
	}
	var once sync.Once
	return func(ctx context.Context) *graphql.Response {
		resp := responses(ctx)
		once.Do(func() { hist.Observe(time.Since(start).Seconds()) })
		return resp
	}
}

// operationLabels names the operation for the histogram. Clients choose
// operation names, so only an authenticated viewer's names are admitted to
// the bounded set; everything else collapses into opOther or opAnonymous.
func (m *Metrics) operationLabels(ctx context.Context) (name, typ string) {
	if !graphql.HasOperationContext(ctx) {
		return opOther, opUnknown
	}
	op := graphql.GetOperationContext(ctx).Operation
	if op == nil {
		return opOther, opUnknown
	}
	if op.Name == "" {
		return opAnonymous, string(op.Operation)
	}
	return m.opNames.label(op.Name, auth.FromContext(ctx) != nil), string(op.Operation)
}

// boundedNames keeps the label values of operation names to at most max.
type boundedNames struct {
	max  int
	mu   sync.Mutex
	seen map[string]bool
}

// label returns name when it is already a label value, or when admit is set
// and the bound leaves room; opOther otherwise.
func (b *boundedNames) label(name string, admit bool) string {
	if len(name) > 64 {
		return opOther
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.seen[name] {
		return name
	}
	if !admit || len(b.seen) >= b.max {
		return opOther
	}
	b.seen[name] = true
	return name
}
