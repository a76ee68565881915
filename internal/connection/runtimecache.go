package connection

import (
	"context"
	"sync"
	"time"

	"github.com/plugboard/plugboard/ent"
	"github.com/plugboard/plugboard/internal/auth"
)

// RuntimeRowsTTL bounds how long the runtime read and the credential proxy
// serve a credential's row (and its connection's) from memory. A change
// committed in this process is seen at once (Changes); a change committed
// on another replica is told through the event bus (PostgreSQL
// LISTEN/NOTIFY), and the TTL is only the backstop when a notification is
// lost.
const RuntimeRowsTTL = time.Second

// runtimeRowsMax bounds the entries kept; past it an arbitrary entry makes
// room.
const runtimeRowsMax = 8192

// Changes tells when an organization's rows changed, so what is cached of
// them can be checked on every read.
type Changes interface {
	// Stamp returns the state of organization orgID's rows now: a value
	// that differs after every committed write of its rows (or of rows of
	// no known organization). ok is false while changes committed on
	// other replicas may go unheard: nothing is served from memory then.
	Stamp(orgID int) (stamp uint64, ok bool)
}

// runtimeRows keeps the credential rows the runtime read and the proxy
// load, each with its connection and the connection's type in its edges.
// The rows are as stored: secrets and the token stay sealed and are opened
// on every read. Entries are shared: nobody may change one (rows hands out
// copies).
type runtimeRows struct {
	mu sync.Mutex
	m  map[int]runtimeEntry
}

type runtimeEntry struct {
	cred  *ent.Credential
	org   int
	stamp uint64
	at    time.Time
}

// get returns a copy of credential id as cached for organization org at
// stamp, or nil.
func (c *runtimeRows) get(org, id int, stamp uint64, now time.Time) *ent.Credential {
	c.mu.Lock()
	e, ok := c.m[id]
	c.mu.Unlock()
	if !ok || e.org != org || e.cred.OrganizationID != org || e.stamp != stamp || now.Sub(e.at) >= RuntimeRowsTTL {
		return nil
	}
	cp := *e.cred
	return &cp
}

func (c *runtimeRows) put(org int, cred *ent.Credential, stamp uint64, now time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil {
		c.m = make(map[int]runtimeEntry)
	}
	if _, ok := c.m[cred.ID]; !ok && len(c.m) >= runtimeRowsMax {
		for id := range c.m {
			delete(c.m, id)
			break
		}
	}
	c.m[cred.ID] = runtimeEntry{cred: cred, org: org, stamp: stamp, at: now}
}

// runtimeCredential loads credential id of the viewer's organization with
// its connection and type, for the runtime read and the proxy: from memory
// while no write of the organization was committed since (Changes) and
// for at most RuntimeRowsTTL, from the store otherwise. The tenant is
// checked either way: a cached row is served only to a RUNTIME viewer of
// the row's own organization, as the tenant filter serves the store's.
func (s *Service) runtimeCredential(ctx context.Context, id int) (*ent.Credential, error) {
	v := auth.FromContext(ctx)
	var stamp uint64
	cacheable := s.Changes != nil && v != nil && v.Role == auth.RoleRuntime && v.OrganizationID != 0
	if cacheable {
		// Taken before the rows are read: a write committed meanwhile
		// changes it, so rows read before that write are never served
		// under the stamp after it.
		stamp, cacheable = s.Changes.Stamp(v.OrganizationID)
	}
	now := time.Now()
	if cacheable {
		if c := s.rows.get(v.OrganizationID, id, stamp, now); c != nil {
			return c, nil
		}
	}
	c, err := s.DB.Credential.Get(ctx, id)
	if err != nil {
		return nil, notFound("credential", id)
	}
	if err := s.runtimeConnection(ctx, c); err != nil {
		s.log().Error("runtime read: loading the connection", "credential", c.ID, "err", err)
		return nil, errRuntimeInternal
	}
	if cacheable && c.OrganizationID == v.OrganizationID {
		s.rows.put(v.OrganizationID, c, stamp, now)
		cp := *c
		c = &cp
	}
	return c, nil
}
