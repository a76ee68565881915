package server

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"strconv"

	"github.com/99designs/gqlgen/graphql"
	"github.com/99designs/gqlgen/graphql/handler/extension"
	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/gqlerror"

	"github.com/plugboard/plugboard/graph"
	"github.com/plugboard/plugboard/internal/connection"
)

// Limits on one GraphQL operation. A wizard's deepest query nests about 8
// levels and uses no aliases; these leave room and stop abuse.
const (
	// MaxQueryDepth bounds how deeply selections nest, fragments expanded.
	MaxQueryDepth = 15
	// MaxAliases bounds the aliased fields of one operation, so one request
	// cannot ask for the same expensive field hundreds of times.
	MaxAliases = 30
	// MaxComplexity bounds gqlgen's complexity score: about one per field,
	// a list's fields counted once per item its first or last asks for.
	MaxComplexity = 20000
	// MaxPageSize bounds the first and last arguments of every list.
	MaxPageSize = 1000
	// MaxFilterDepth bounds how deeply the filters of one where argument
	// nest (not, and, or, has...With).
	MaxFilterDepth = 8
	// MaxFilterTerms bounds the filter objects of one where argument.
	MaxFilterTerms = 100
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
	if err := eachField(oc.Operation.SelectionSet, map[string]bool{}, func(f *ast.Field) *gqlerror.Error {
		return checkWhere(f, oc.Variables)
	}); err != nil {
		return err
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
				most = max(most, pageArg(v))
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

// pageArg returns a first or last argument's value as gqlgen hands it over
// (a literal, or a JSON number from the variables), or 0.
func pageArg(v any) int64 {
	switch n := v.(type) {
	case int64:
		return n
	case int:
		return int64(n)
	case *int:
		if n != nil {
			return int64(*n)
		}
	case float64:
		return int64(min(n, math.MaxInt64))
	case json.Number:
		if i, err := n.Int64(); err == nil {
			return i
		}
		if f, err := n.Float64(); err == nil {
			return int64(min(f, math.MaxInt64))
		}
	}
	return 0
}

// eachField calls fn on every field of a selection set, nested ones and
// those of fragments included, until fn returns an error.
func eachField(set ast.SelectionSet, seen map[string]bool, fn func(*ast.Field) *gqlerror.Error) *gqlerror.Error {
	for _, sel := range set {
		var err *gqlerror.Error
		switch s := sel.(type) {
		case *ast.Field:
			if err = fn(s); err == nil {
				err = eachField(s.SelectionSet, seen, fn)
			}
		case *ast.InlineFragment:
			err = eachField(s.SelectionSet, seen, fn)
		case *ast.FragmentSpread:
			if s.Definition == nil || seen[s.Name] {
				continue
			}
			seen[s.Name] = true
			err = eachField(s.Definition.SelectionSet, seen, fn)
			delete(seen, s.Name)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// Codes of a where argument over a bound.
const (
	codeFilterTooDeep = "TOO_DEEP"
	codeFilterTooMany = connection.CodeTooMany
	codeFilterEmpty   = connection.CodeInvalidValue
)

// checkWhere refuses a field's where argument that nests deeper than
// MaxFilterDepth, holds more than MaxFilterTerms filters, or holds an empty
// nested filter (which ent cannot turn into a condition), naming the
// argument; values of the wrong type are left to gqlgen's reading of it.
func checkWhere(f *ast.Field, vars map[string]any) *gqlerror.Error {
	arg := f.Arguments.ForName("where")
	if arg == nil || arg.Value == nil {
		return nil
	}
	v, err := arg.Value.Value(vars)
	if err != nil {
		return nil
	}
	w := filterWalk{}
	if w.walk(v, 1, []string{"where"}); w.code == "" {
		return nil
	}
	out := graph.InvalidArgument(w.at, w.code, w.msg)
	if arg.Position != nil {
		out.Locations = []gqlerror.Location{{Line: arg.Position.Line, Column: arg.Position.Column}}
	}
	return out
}

// filterWalk measures a where value: the first bound it breaks is recorded
// with the path of the filter at fault.
type filterWalk struct {
	terms     int
	code, msg string
	at        []string
}

func (w *filterWalk) walk(v any, depth int, path []string) {
	m, ok := v.(map[string]any)
	if !ok || w.code != "" {
		return
	}
	w.terms++
	switch {
	case depth > MaxFilterDepth:
		w.code, w.msg, w.at = codeFilterTooDeep, fmt.Sprintf("filters nest more than %d levels deep", MaxFilterDepth), path
		return
	case w.terms > MaxFilterTerms:
		w.code, w.msg, w.at = codeFilterTooMany, fmt.Sprintf("a where argument holds at most %d filters", MaxFilterTerms), path
		return
	}
	keys := make([]string, 0, len(m))
	for k, x := range m {
		if x != nil {
			keys = append(keys, k)
		}
	}
	if len(keys) == 0 && depth > 1 {
		w.code, w.msg, w.at = codeFilterEmpty, "an empty filter; give it at least one condition", path
		return
	}
	slices.Sort(keys)
	for _, k := range keys {
		sub := append(slices.Clip(path), k)
		switch x := m[k].(type) {
		case map[string]any:
			w.walk(x, depth+1, sub)
		case []any:
			for i, e := range x {
				w.walk(e, depth+1, append(slices.Clip(sub), strconv.Itoa(i)))
			}
		}
	}
}

// pagedComplexityLimit is gqlgen's fixed complexity limit, computed over
// the schema with pagedSchema's rule for lists.
type pagedComplexityLimit struct{ *extension.ComplexityLimit }

// Validate hands the limit pagedSchema in place of the schema.
func (l pagedComplexityLimit) Validate(es graphql.ExecutableSchema) error {
	return l.ComplexityLimit.Validate(pagedSchema{es})
}

// pagedSchema makes a list field with a first or last argument cost its
// own complexity times that page size, so nested pages multiply; it is
// used only to compute complexity.
type pagedSchema struct{ graphql.ExecutableSchema }

func (s pagedSchema) Complexity(ctx context.Context, typeName, field string, child int, args map[string]any) (int, bool) {
	c, ok := s.ExecutableSchema.Complexity(ctx, typeName, field, child, args)
	n := max(pageArg(args["first"]), pageArg(args["last"]))
	if n <= 1 {
		return c, ok
	}
	if !ok || c < 1 {
		c = child + 1
		if child >= math.MaxInt-1 {
			c = math.MaxInt
		}
	}
	if int64(c) > math.MaxInt64/n {
		return math.MaxInt, true
	}
	return c * int(n), true
}
