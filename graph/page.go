package graph

import (
	"context"

	"github.com/99designs/gqlgen/graphql"
	"github.com/vektah/gqlparser/v2/ast"
)

// pageContext returns the context to hand entgql's Paginate: when the
// query selects edges and pageInfo but not totalCount, the field as
// Paginate sees it has no pageInfo, so that it runs no COUNT. pageInfo
// needs none: Paginate fetches first+1 (or last+1) rows and sets
// hasNextPage (hasPreviousPage) from them and the cursors from the edges,
// overwriting what it derived from the count. The answer is resolved from
// the original field, pageInfo included. first: 0 or last: 0 keeps the
// count: Paginate then answers hasNextPage from it alone.
func pageContext(ctx context.Context, first, last *int) context.Context {
	fc := graphql.GetFieldContext(ctx)
	if fc == nil || (first != nil && *first == 0) || (last != nil && *last == 0) {
		return ctx
	}
	fields := graphql.CollectFields(graphql.GetOperationContext(ctx), fc.Field.Selections, nil)
	selected := map[string]bool{}
	for _, f := range fields {
		selected[f.Alias] = true
	}
	if selected["totalCount"] || !selected["edges"] || !selected["pageInfo"] {
		return ctx
	}
	sel := make(ast.SelectionSet, 0, len(fields))
	for _, f := range fields {
		if f.Alias != "pageInfo" {
			af := *f.Field
			af.SelectionSet = f.Selections // every occurrence's selections, fragments merged
			sel = append(sel, &af)
		}
	}
	page := *fc
	page.Field.Selections = sel // a copy's: fc's stay whole
	ctx = graphql.WithFieldContext(ctx, &page)
	page.Parent = fc.Parent // the same place in the answer as fc
	return ctx
}
