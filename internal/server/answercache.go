package server

import (
	"context"
	"crypto/sha256"
	"strconv"
	"sync"
	"time"

	"github.com/99designs/gqlgen/graphql"
	"github.com/99designs/gqlgen/graphql/handler/lru"
	"github.com/vektah/gqlparser/v2/ast"

	"github.com/plugboard/plugboard/internal/auth"
)

// AnswerTTL bounds how long a cached answer is served. A
// write on this replica, a credential status change on any replica and a
// catalog change here drop cached answers at once (their generation
// changes); the TTL bounds how long any other change made on another
// replica (a save there, say) takes to show here.
const AnswerTTL = time.Second

// answerCacheSize bounds the number of cached answers (least recently
// used first out).
const answerCacheSize = 4096

// cachedRoots are the root query fields whose answers may be cached: each
// reads only stored rows of the viewer's organization (as the viewer may
// see them) and the plugin catalog, and nothing relative to the time of
// the request or to a plugin process beyond what the catalog records. Every
// write of those rows bumps the generation (generations.go). node and
// nodes are left out (they reach every type, audit events and tokens
// included), and so is everything else.
var cachedRoots = map[string]bool{
	"configWizard": true,
	"credentials":  true,
	"connections":  true,
	"customers":    true,
	"instances":    true,
	"integrations": true,
}

// uncachedFields are fields whose answers no generation follows: audit
// events and API tokens are written without a bump (on every runtime read
// and token check). An answer selecting one anywhere is never cached. No
// field reachable from cachedRoots is computed relative to the time of the
// request (tokenExpiresAt, lastTestedAt and the like are stored times).
var uncachedFields = map[string]bool{"auditEvents": true, "apiTokens": true}

// answerCache keeps whole answers of queries of cachedRoots, as the bytes
// sent, per viewer, request and generation (answerfront.go serves them).
type answerCache struct {
	gens    *Generations
	now     func() time.Time
	entries *lru.LRU[*answerEntry]

	// flights are the answers being computed, by key: concurrent misses
	// of one key and generation wait for one computation instead of each
	// running its own (50 clients all missing when an answer's TTL ends).
	mu      sync.Mutex
	flights map[string]*answerFlight
}

// answerFlight is one answer being computed; entry is set, when the answer
// may be kept, before done is closed.
type answerFlight struct {
	gen   Generation
	done  chan struct{}
	entry *answerEntry
}

// answerEntry is one cached answer.
type answerEntry struct {
	gen         Generation
	at          time.Time
	contentType string
	body        []byte
}

func newAnswerCache(gens *Generations) *answerCache {
	return &answerCache{gens: gens, now: time.Now, entries: lru.New[*answerEntry](answerCacheSize),
		flights: map[string]*answerFlight{}}
}

// join returns the computation of key at gen under way, or starts one
// (lead true): the leader must call land.
func (c *answerCache) join(key string, gen Generation) (f *answerFlight, lead bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if f := c.flights[key]; f != nil && f.gen == gen {
		return f, false
	}
	f = &answerFlight{gen: gen, done: make(chan struct{})}
	c.flights[key] = f
	return f, true
}

// land ends the leader's computation f of key with e (nil: not kept),
// keeping e in the cache.
func (c *answerCache) land(ctx context.Context, key string, f *answerFlight, e *answerEntry) {
	if e != nil {
		c.put(ctx, key, e)
		f.entry = e
	}
	c.mu.Lock()
	if c.flights[key] == f {
		delete(c.flights, key)
	}
	c.mu.Unlock()
	close(f.done)
}

// answerKey is the key of a request's answer: everything of the viewer the
// answer may depend on (role, organization, customer, user), the response
// type asked for, and the exact body (query text, variables, operation
// name, extensions).
func answerKey(v *auth.Viewer, accept string, body []byte) string {
	h := sha256.New()
	var b []byte
	b = append(b, v.Role...)
	for _, n := range []int{v.OrganizationID, v.CustomerID, v.UserID} {
		b = append(b, 0)
		b = strconv.AppendInt(b, int64(n), 10)
	}
	b = append(b, 0)
	b = append(b, accept...)
	b = append(b, 0)
	h.Write(b)
	h.Write(body)
	var sum [sha256.Size]byte
	return string(h.Sum(sum[:0]))
}

// get returns the answer cached under key at generation gen, if any and
// younger than AnswerTTL.
func (c *answerCache) get(ctx context.Context, key string, gen Generation) (*answerEntry, bool) {
	e, ok := c.entries.Get(ctx, key)
	if !ok || e.gen != gen || c.now().Sub(e.at) >= AnswerTTL {
		return nil, false
	}
	return e, true
}

func (c *answerCache) put(ctx context.Context, key string, e *answerEntry) {
	e.at = c.now()
	c.entries.Add(ctx, key, e)
}

// answerFill is what a request missing the cache carries to the GraphQL
// handler: cacheable is set when its operation may be cached and answered
// without errors.
type answerFill struct {
	cacheable bool
}

type answerFillKey struct{}

func withAnswerFill(ctx context.Context, f *answerFill) context.Context {
	return context.WithValue(ctx, answerFillKey{}, f)
}

// answerMarker is the GraphQL handler extension that tells the front
// whether an answer may be kept.
type answerMarker struct{}

var (
	_ graphql.HandlerExtension     = answerMarker{}
	_ graphql.OperationInterceptor = answerMarker{}
)

// ExtensionName implements graphql.HandlerExtension.
func (answerMarker) ExtensionName() string { return "AnswerCache" }

// Validate implements graphql.HandlerExtension.
func (answerMarker) Validate(graphql.ExecutableSchema) error { return nil }

// InterceptOperation marks the request's fill cacheable when the operation
// is a query of cachedRoots selecting nothing uncached and its one response
// has no error.
func (answerMarker) InterceptOperation(ctx context.Context, next graphql.OperationHandler) graphql.ResponseHandler {
	fill, _ := ctx.Value(answerFillKey{}).(*answerFill)
	if fill == nil || !cachedOperation(graphql.GetOperationContext(ctx)) {
		return next(ctx)
	}
	h := next(ctx)
	first := true
	return func(ctx context.Context) *graphql.Response {
		resp := h(ctx)
		if first && resp != nil && len(resp.Errors) == 0 && len(resp.Data) > 0 {
			fill.cacheable = true
		} else {
			fill.cacheable = false
		}
		first = false
		return resp
	}
}

// cachedOperation reports whether an operation is a query of cachedRoots
// alone (and __typename), written plainly at the root, that selects no
// uncached field anywhere.
func cachedOperation(oc *graphql.OperationContext) bool {
	if !plainQueryOf(oc, cachedRootsAndTypename) {
		return false
	}
	cached := false
	for _, sel := range oc.Operation.SelectionSet {
		cached = cached || cachedRoots[sel.(*ast.Field).Name]
	}
	return cached && cacheableSelection(oc.Operation.SelectionSet, 0)
}

// cachedRootsAndTypename are the root fields a cached query may select.
var cachedRootsAndTypename = func() map[string]bool {
	m := map[string]bool{"__typename": true}
	for k := range cachedRoots {
		m[k] = true
	}
	return m
}()

// cacheableSelection reports whether set selects no uncached field, through
// fragments too.
func cacheableSelection(set ast.SelectionSet, depth int) bool {
	if depth > MaxQueryDepth*2 {
		return false
	}
	for _, sel := range set {
		var sub ast.SelectionSet
		switch s := sel.(type) {
		case *ast.Field:
			if uncachedFields[s.Name] {
				return false
			}
			sub = s.SelectionSet
		case *ast.InlineFragment:
			sub = s.SelectionSet
		case *ast.FragmentSpread:
			if s.Definition == nil {
				return false
			}
			sub = s.Definition.SelectionSet
		default:
			return false
		}
		if !cacheableSelection(sub, depth+1) {
			return false
		}
	}
	return true
}
