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

// WizardTTL bounds how long a cached configWizard answer is served. A
// write on this replica, a credential status change on any replica and a
// catalog change here drop cached answers at once (their generation
// changes); the TTL bounds how long any other change made on another
// replica (a save there, say) takes to show here.
const WizardTTL = time.Second

// wizardCacheSize bounds the number of cached answers (least recently
// used first out).
const wizardCacheSize = 4096

// uncachedFields are fields whose answers no generation follows: audit
// events and API tokens are written without a bump (on every runtime read
// and token check). An answer selecting one anywhere is never cached.
var uncachedFields = map[string]bool{"auditEvents": true, "apiTokens": true}

// wizardCache keeps whole configWizard answers, as the bytes sent, per
// viewer, request and generation (wizardfront.go serves them).
type wizardCache struct {
	gens    *Generations
	now     func() time.Time
	entries *lru.LRU[*wizardEntry]

	// flights are the answers being computed, by key: concurrent misses
	// of one key and generation wait for one computation instead of each
	// running its own (50 clients all missing when an answer's TTL ends).
	mu      sync.Mutex
	flights map[string]*wizardFlight
}

// wizardFlight is one answer being computed; entry is set, when the answer
// may be kept, before done is closed.
type wizardFlight struct {
	gen   Generation
	done  chan struct{}
	entry *wizardEntry
}

// wizardEntry is one cached answer.
type wizardEntry struct {
	gen         Generation
	at          time.Time
	contentType string
	body        []byte
}

func newWizardCache(gens *Generations) *wizardCache {
	return &wizardCache{gens: gens, now: time.Now, entries: lru.New[*wizardEntry](wizardCacheSize),
		flights: map[string]*wizardFlight{}}
}

// join returns the computation of key at gen under way, or starts one
// (lead true): the leader must call land.
func (c *wizardCache) join(key string, gen Generation) (f *wizardFlight, lead bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if f := c.flights[key]; f != nil && f.gen == gen {
		return f, false
	}
	f = &wizardFlight{gen: gen, done: make(chan struct{})}
	c.flights[key] = f
	return f, true
}

// land ends the leader's computation f of key with e (nil: not kept),
// keeping e in the cache.
func (c *wizardCache) land(ctx context.Context, key string, f *wizardFlight, e *wizardEntry) {
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

// wizardKey is the key of a request's answer: everything of the viewer the
// answer may depend on (role, organization, customer, user), the response
// type asked for, and the exact body (query text, variables, operation
// name, extensions).
func wizardKey(v *auth.Viewer, accept string, body []byte) string {
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
// younger than WizardTTL.
func (c *wizardCache) get(ctx context.Context, key string, gen Generation) (*wizardEntry, bool) {
	e, ok := c.entries.Get(ctx, key)
	if !ok || e.gen != gen || c.now().Sub(e.at) >= WizardTTL {
		return nil, false
	}
	return e, true
}

func (c *wizardCache) put(ctx context.Context, key string, e *wizardEntry) {
	e.at = c.now()
	c.entries.Add(ctx, key, e)
}

// wizardFill is what a request missing the cache carries to the GraphQL
// handler: cacheable is set when its operation may be cached and answered
// without errors.
type wizardFill struct {
	cacheable bool
}

type wizardFillKey struct{}

func withWizardFill(ctx context.Context, f *wizardFill) context.Context {
	return context.WithValue(ctx, wizardFillKey{}, f)
}

// wizardMarker is the GraphQL handler extension that tells the front
// whether an answer may be kept.
type wizardMarker struct{}

var (
	_ graphql.HandlerExtension     = wizardMarker{}
	_ graphql.OperationInterceptor = wizardMarker{}
)

// ExtensionName implements graphql.HandlerExtension.
func (wizardMarker) ExtensionName() string { return "WizardCache" }

// Validate implements graphql.HandlerExtension.
func (wizardMarker) Validate(graphql.ExecutableSchema) error { return nil }

// InterceptOperation marks the request's fill cacheable when the operation
// is a configWizard query selecting nothing uncached and its one response
// has no error.
func (wizardMarker) InterceptOperation(ctx context.Context, next graphql.OperationHandler) graphql.ResponseHandler {
	fill, _ := ctx.Value(wizardFillKey{}).(*wizardFill)
	if fill == nil || !wizardOnly(graphql.GetOperationContext(ctx)) {
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

// wizardOnly reports whether an operation is a query of configWizard alone
// (and __typename), written plainly at the root, that selects no uncached
// field anywhere.
func wizardOnly(oc *graphql.OperationContext) bool {
	if oc == nil || oc.Operation == nil || oc.Operation.Operation != ast.Query || len(oc.Operation.SelectionSet) == 0 {
		return false
	}
	wizard := false
	for _, sel := range oc.Operation.SelectionSet {
		f, ok := sel.(*ast.Field)
		if !ok || len(f.Directives) > 0 || (f.Name != "configWizard" && f.Name != "__typename") {
			return false
		}
		wizard = wizard || f.Name == "configWizard"
	}
	return wizard && cacheableSelection(oc.Operation.SelectionSet, 0)
}

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
