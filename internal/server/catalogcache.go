package server

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"time"

	"github.com/99designs/gqlgen/graphql"
	"github.com/99designs/gqlgen/graphql/handler/lru"
	"github.com/vektah/gqlparser/v2/ast"

	"github.com/plugboard/plugboard/internal/connection"
)

// catalogFields are the root fields whose answers depend only on the plugin
// catalog and the viewer's view of it (a customer's user sees no input
// hidden from customers): changed only when a plugin loads, crashes or is
// reloaded.
var catalogFields = map[string]bool{
	"connectionTypes": true,
	"connectionType":  true,
	"plugins":         true,
	"__typename":      true,
}

// CatalogTTL bounds how long a cached catalog answer is served. A local
// catalog change drops cached answers at once; the TTL bounds how long a
// change made by another replica (a plugin crashing there) takes to show.
const CatalogTTL = 2 * time.Second

// catalogCache answers catalog-only queries from memory. Wizards and
// admin screens ask for connection types on every page; the answer is a
// few dozen kilobytes that gqlgen would otherwise rebuild value by value.
type catalogCache struct {
	version func() uint64
	now     func() time.Time
	entries *lru.LRU[*cachedAnswer]
}

type cachedAnswer struct {
	version uint64
	at      time.Time
	data    json.RawMessage
}

var (
	_ graphql.HandlerExtension     = (*catalogCache)(nil)
	_ graphql.OperationInterceptor = (*catalogCache)(nil)
)

func newCatalogCache(version func() uint64) *catalogCache {
	return &catalogCache{version: version, now: time.Now, entries: lru.New[*cachedAnswer](256)}
}

// ExtensionName implements graphql.HandlerExtension.
func (c *catalogCache) ExtensionName() string { return "CatalogCache" }

// Validate implements graphql.HandlerExtension.
func (c *catalogCache) Validate(graphql.ExecutableSchema) error { return nil }

// InterceptOperation serves a cached answer to a catalog-only query of an
// authenticated viewer, and keeps the answers it computes without errors.
func (c *catalogCache) InterceptOperation(ctx context.Context, next graphql.OperationHandler) graphql.ResponseHandler {
	oc := graphql.GetOperationContext(ctx)
	if !catalogOnly(oc) {
		return next(ctx)
	}
	// Unauthenticated callers go on to the resolvers, which refuse them.
	if _, err := connection.Authorize(ctx, connection.ReadCatalog); err != nil {
		return next(ctx)
	}
	// Answers are kept per view: an admin's answer, which holds inputs
	// hidden from customers, is never served to a customer.
	key := cacheKey(oc, connection.CustomerView(ctx))
	version := c.version()
	if e, ok := c.entries.Get(ctx, key); ok && e.version == version && c.now().Sub(e.at) < CatalogTTL {
		served := false
		return func(context.Context) *graphql.Response {
			if served {
				return nil
			}
			served = true
			return &graphql.Response{Data: e.data}
		}
	}
	h := next(ctx)
	first := true
	return func(ctx context.Context) *graphql.Response {
		resp := h(ctx)
		if first && resp != nil && len(resp.Errors) == 0 && len(resp.Data) > 0 {
			data := make(json.RawMessage, len(resp.Data))
			copy(data, resp.Data)
			c.entries.Add(ctx, key, &cachedAnswer{version: version, at: c.now(), data: data})
		}
		first = false
		return resp
	}
}

// catalogOnly reports whether an operation is a query whose root fields are
// all catalog fields, written plainly (no fragments at the root).
func catalogOnly(oc *graphql.OperationContext) bool { return plainQueryOf(oc, catalogFields) }

// plainQueryOf reports whether an operation is a query whose root
// selections are all fields of allowed, written plainly: no fragments and
// no directives at the root.
func plainQueryOf(oc *graphql.OperationContext, allowed map[string]bool) bool {
	if oc == nil || oc.Operation == nil || oc.Operation.Operation != ast.Query || len(oc.Operation.SelectionSet) == 0 {
		return false
	}
	for _, sel := range oc.Operation.SelectionSet {
		f, ok := sel.(*ast.Field)
		if !ok || !allowed[f.Name] || len(f.Directives) > 0 {
			return false
		}
	}
	return true
}

func cacheKey(oc *graphql.OperationContext, customerView bool) string {
	h := sha256.New()
	if customerView {
		h.Write([]byte("customer\x00"))
	} else {
		h.Write([]byte("full\x00"))
	}
	h.Write([]byte(oc.RawQuery))
	h.Write([]byte{0})
	h.Write([]byte(oc.OperationName))
	h.Write([]byte{0})
	vars, _ := json.Marshal(oc.Variables) // map keys are sorted
	h.Write(vars)
	return hex.EncodeToString(h.Sum(nil))
}
