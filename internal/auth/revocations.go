package auth

import (
	"context"
	"sync"
	"time"
)

// Kinds of revocation told to every replica.
const (
	RevokedAPIToken   = "api_token"
	RevokedSigningKey = "signing_key"
)

// Revocations carries revocations between the replicas that share a
// database, so that each drops what its caches remember at once.
type Revocations interface {
	// Revoked tells every replica, this one included, that the API token
	// or signing key id of the organization was revoked. It is called
	// after the revocation is committed.
	Revoked(ctx context.Context, kind string, orgID, id int) error
	// Trusted reports whether remembered tokens may be served: false while
	// this replica could be missing revocations made elsewhere.
	Trusted() bool
}

// tokenCache remembers checked tokens by hash. Every forget bumps gen, so a
// check that began before a revocation cannot store its answer after it.
type tokenCache struct {
	mu      sync.Mutex
	entries map[string]cachedViewer // token hash → viewer
	gen     uint64
}

type cachedViewer struct {
	viewer  Viewer
	expires time.Time
}

// get returns the viewer remembered for hash, unless it expired.
func (c *tokenCache) get(hash string, now time.Time) (*Viewer, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.entries[hash]
	if !ok || !now.Before(e.expires) {
		return nil, false
	}
	v := e.viewer
	return &v, true
}

// generation is to be read before a check, and given to put after it.
func (c *tokenCache) generation() uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.gen
}

// put remembers v for hash until until, unless something was forgotten
// since gen was read.
func (c *tokenCache) put(hash string, v *Viewer, until time.Time, gen uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.gen != gen {
		return
	}
	if c.entries == nil || len(c.entries) >= maxCachedTokens {
		c.entries = map[string]cachedViewer{}
	}
	c.entries[hash] = cachedViewer{viewer: *v, expires: until}
}

// forget drops the entries of API token id (every entry when id is 0).
func (c *tokenCache) forget(tokenID int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gen++
	if tokenID == 0 {
		c.entries = nil
		return
	}
	for h, e := range c.entries {
		if e.viewer.TokenID == tokenID {
			delete(c.entries, h)
		}
	}
}

// trusted reports whether r lets remembered tokens be served.
func trusted(r Revocations) bool { return r == nil || r.Trusted() }

// tell passes a committed revocation to r, when there is one. A failure
// is reported by r; the revocation stands, and other replicas stop
// serving the revoked token within CacheTTL at worst.
func tell(ctx context.Context, r Revocations, kind string, orgID, id int) {
	if r != nil {
		_ = r.Revoked(ctx, kind, orgID, id)
	}
}
