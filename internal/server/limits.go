package server

import (
	"context"
	"fmt"

	"github.com/99designs/gqlgen/graphql"
	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/gqlerror"
)

// Limits on one GraphQL operation. A wizard's deepest query nests about 8
// levels and uses no aliases; these leave room and stop abuse.
const (
	// MaxQueryDepth bounds how deeply selections nest, fragments expanded.
	MaxQueryDepth = 15
	// MaxAliases bounds the aliased fields of one operation, so one request
	// cannot ask for the same expensive field hundreds of times.
	MaxAliases = 30
	// MaxComplexity bounds gqlgen's complexity score (about one per field).
	MaxComplexity = 5000
	// MaxPageSize bounds the first and last arguments of every list.
	MaxPageSize = 1000
)

// CodeQueryTooLarge is the extensions.code of an operation over a limit.
const CodeQueryTooLarge = "QUERY_TOO_LARGE"

// queryLimits refuses operations nested too deeply or with too many aliases,
// before any resolver runs.
type queryLimits struct {
	maxDepth, maxAliases int
}

var (
	_ graphql.HandlerExtension        = queryLimits{}
	_ graphql.OperationContextMutator = queryLimits{}
)

func (queryLimits) ExtensionName() string                   { return "QueryLimits" }
func (queryLimits) Validate(graphql.ExecutableSchema) error { return nil }

// MutateOperationContext measures the operation.
func (l queryLimits) MutateOperationContext(ctx context.Context, oc *graphql.OperationContext) *gqlerror.Error {
	if oc.Operation == nil {
		return nil
	}
	depth, aliases := measure(oc.Operation.SelectionSet, 1, map[string]bool{})
	if n := largestPage(oc.Operation.SelectionSet, oc.Variables, map[string]bool{}); n > MaxPageSize {
		return tooLarge(fmt.Sprintf("a list asks for %d items; the limit is %d a page", n, MaxPageSize))
	}
	switch {
	case depth > l.maxDepth:
		return tooLarge(fmt.Sprintf("the operation nests %d levels deep; the limit is %d", depth, l.maxDepth))
	case aliases > l.maxAliases:
		return tooLarge(fmt.Sprintf("the operation has %d aliases; the limit is %d", aliases, l.maxAliases))
	}
	return nil
}

func tooLarge(msg string) *gqlerror.Error {
	return &gqlerror.Error{Message: msg, Extensions: map[string]any{"code": CodeQueryTooLarge}}
}

// measure returns the depth and the alias count of a selection set,
// expanding fragments (validation has already refused fragment cycles;
// seen guards against them anyway).
func measure(set ast.SelectionSet, level int, seen map[string]bool) (depth, aliases int) {
	depth = level - 1
	for _, sel := range set {
		var d, a int
		switch s := sel.(type) {
		case *ast.Field:
			if s.Alias != "" && s.Alias != s.Name {
				a++
			}
			if len(s.SelectionSet) == 0 {
				d = level
			} else {
				var sub int
				d, sub = measure(s.SelectionSet, level+1, seen)
				a += sub
			}
		case *ast.InlineFragment:
			d, a = measure(s.SelectionSet, level, seen)
		case *ast.FragmentSpread:
			if s.Definition == nil || seen[s.Name] {
				continue
			}
			seen[s.Name] = true
			d, a = measure(s.Definition.SelectionSet, level, seen)
			delete(seen, s.Name)
		}
		depth = max(depth, d)
		aliases += a
	}
	return depth, aliases
}

// largestPage returns the largest first or last argument in a selection
// set, variables resolved.
func largestPage(set ast.SelectionSet, vars map[string]any, seen map[string]bool) int64 {
	var most int64
	for _, sel := range set {
		switch s := sel.(type) {
		case *ast.Field:
			for _, arg := range s.Arguments {
				if arg.Name != "first" && arg.Name != "last" || arg.Value == nil {
					continue
				}
				v, err := arg.Value.Value(vars)
				if err != nil {
					continue
				}
				switch n := v.(type) {
				case int64:
					most = max(most, n)
				case int:
					most = max(most, int64(n))
				case float64:
					most = max(most, int64(n))
				}
			}
			most = max(most, largestPage(s.SelectionSet, vars, seen))
		case *ast.InlineFragment:
			most = max(most, largestPage(s.SelectionSet, vars, seen))
		case *ast.FragmentSpread:
			if s.Definition == nil || seen[s.Name] {
				continue
			}
			seen[s.Name] = true
			most = max(most, largestPage(s.Definition.SelectionSet, vars, seen))
			delete(seen, s.Name)
		}
	}
	return most
}
